import { open, readFile, stat } from 'node:fs/promises';
import { deriveImages, deriveImagesFromPixels, errorMessage, PREVIEW_MAX_SIDE, type DerivedImage, type DeriveImagesResult, type PerceptualHash } from './derive-images.js';
import { extractEmbeddedImage, readWithExifTool } from './exiftool.js';
import { decodeHeic } from './heic.js';
import { FACTS_HEAD_BYTES, NO_FACTS, readImageFacts, type MediaFacts } from './read-media-facts.js';
import type { MediaFailureReason } from './sharp-runtime.js';
import { isDecodableImageType, isRawImageType, isVideoType, sniffMediaType } from './sniff-media-type.js';
import { posterTime, videoPoster } from './video-poster.js';

/**
 * Everything pixshare learns from a stored file, whatever it is (S12, U1):
 *
 *   photo (JPEG, PNG, WebP, GIF, AVIF, TIFF) ─ facts: ExifReader ─ images: sharp (one decode)
 *   HEIC/HEIF (iPhone)                      ─ facts: ExifReader ─ images: libheif (WebAssembly) → sharp
 *   camera RAW (DNG, CR2, CR3, NEF, ARW…)    ─ facts: ExifTool   ─ images: its embedded preview JPEG → sharp
 *   video (MP4, MOV)                        ─ facts: ExifTool   ─ images: a poster frame by ffmpeg → sharp
 *
 * The facts come from the metadata, never from the decoder, so a file whose pixels are cut
 * short still has its capture time. Never throws for bad input: what does not decode comes
 * back with `images: null` and the reason.
 */

export interface MediaLimits {
  /** Pixels (width × height, from the header) above which nothing is decoded. */
  maxPixels: number;
  /** HEIC files, RAW previews and video frames above this many bytes are not read into memory. */
  maxInputBytes: number;
  /** Per decode or ffmpeg run. */
  timeoutSeconds: number;
  ffmpeg: string | null;
}

export type MediaKind = 'image' | 'video' | 'other';

export interface ProcessedMedia {
  /** From the content (sniffed, refined by ExifTool for TIFF-based RAW), null when unknown. */
  mediaType: string | null;
  kind: MediaKind;
  /** Width and height are as displayed (after orientation or a video's rotation). */
  facts: MediaFacts;
  images: { preview: DerivedImage; thumbnail: DerivedImage; perceptualHash: PerceptualHash } | null;
  failure: { reason: MediaFailureReason; message: string } | null;
}

export async function processMedia(path: string, limits: MediaLimits): Promise<ProcessedMedia> {
  let head: Buffer;
  try {
    head = await readHead(path);
  } catch (error) {
    return { mediaType: null, kind: 'other', facts: NO_FACTS, images: null, failure: { reason: 'read_error', message: errorMessage(error) } };
  }
  let mediaType = sniffMediaType(head);
  if (mediaType && isVideoType(mediaType)) return processVideo(path, mediaType, limits);
  if (mediaType === 'image/tiff' || (mediaType && isRawImageType(mediaType))) {
    // TIFF is also the container of most camera RAW formats; ExifTool tells them apart.
    const exif = await readWithExifTool(path, 'image').catch(() => null);
    if (exif?.mimeType && exif.mimeType !== 'image/tiff') mediaType = exif.mimeType;
    if (mediaType !== 'image/tiff') return processRaw(path, mediaType!, exif, limits);
  }
  const facts = readImageFacts(head);
  if (mediaType === 'image/heic') return processHeic(path, facts, limits);
  if (!isDecodableImageType(mediaType)) {
    const message = mediaType ? `no thumbnails for ${mediaType}` : 'not an image';
    return { mediaType, kind: 'other', facts: NO_FACTS, images: null, failure: { reason: 'unsupported', message } };
  }
  const derived = await deriveImages(path, { limitInputPixels: limits.maxPixels, timeoutSeconds: limits.timeoutSeconds });
  return withImages({ mediaType, kind: 'image', facts }, derived);
}

/** Camera RAW: the largest embedded JPEG (the camera's own rendering), turned by the RAW file's orientation. */
async function processRaw(path: string, mediaType: string, exif: Awaited<ReturnType<typeof readWithExifTool>> | null, limits: MediaLimits): Promise<ProcessedMedia> {
  const facts = exif?.facts ?? NO_FACTS;
  const base = { mediaType, kind: 'image' as const, facts: upright(facts) };
  if (!exif) return { ...base, images: null, failure: { reason: 'unsupported', message: 'ExifTool could not read this RAW file (is Perl installed?)' } };
  // Tiny ones (a 160 px thumbnail) are not worth a preview; stubs hold a few bytes of nothing.
  const candidates = exif.previews.filter((p) => p.bytes >= 1024 && p.bytes <= limits.maxInputBytes).sort((a, b) => b.bytes - a.bytes);
  for (const candidate of candidates) {
    const jpeg = await extractEmbeddedImage(path, candidate.tag).catch(() => null);
    if (!jpeg || sniffMediaType(jpeg.subarray(0, 256)) !== 'image/jpeg') continue;
    // A preview with an orientation of its own is turned by it; most carry none and follow the RAW file's.
    const own = readImageFacts(jpeg).orientation;
    const derived = await deriveImages(jpeg, { limitInputPixels: limits.maxPixels, timeoutSeconds: limits.timeoutSeconds }, own ? {} : { orientation: facts.orientation ?? 1 });
    if (derived.ok) return withImages(base, derived);
  }
  return { ...base, images: null, failure: { reason: 'unsupported', message: 'this RAW file holds no preview image' } };
}

async function processHeic(path: string, facts: MediaFacts, limits: MediaLimits): Promise<ProcessedMedia> {
  const base = { mediaType: 'image/heic', kind: 'image' as const, facts: upright(facts) };
  const size = (await stat(path)).size;
  if (size > limits.maxInputBytes) return { ...base, images: null, failure: { reason: 'too_large', message: `HEIC files over ${limits.maxInputBytes} bytes are not decoded` } };
  const pixels = await decodeHeic(await readFile(path), { maxPixels: limits.maxPixels, timeoutSeconds: limits.timeoutSeconds });
  if ('ok' in pixels) return { ...base, images: null, failure: { reason: pixels.reason, message: pixels.message } };
  const derived = await deriveImagesFromPixels(pixels, 'image/heic', 'heif');
  return withImages({ ...base, facts: { ...base.facts, width: pixels.width, height: pixels.height } }, derived);
}

async function processVideo(path: string, mediaType: string, limits: MediaLimits): Promise<ProcessedMedia> {
  const exif = await readWithExifTool(path, 'video').catch(() => null);
  const facts = exif?.facts ?? NO_FACTS;
  const base = { mediaType, kind: 'video' as const, facts };
  if (facts.width && facts.height && facts.width * facts.height > limits.maxPixels) {
    return { ...base, images: null, failure: { reason: 'too_large', message: `${facts.width}×${facts.height} exceeds the pixel limit` } };
  }
  const poster = await videoPoster(path, posterTime(facts.durationMs), { ffmpeg: limits.ffmpeg, maxSide: PREVIEW_MAX_SIDE, timeoutSeconds: limits.timeoutSeconds });
  if (!Buffer.isBuffer(poster)) return { ...base, images: null, failure: { reason: poster.reason, message: poster.message } };
  // The frame is upright already (ffmpeg applies the track's rotation).
  const derived = await deriveImages(poster, { limitInputPixels: limits.maxPixels, timeoutSeconds: limits.timeoutSeconds }, { orientation: 1 });
  return withImages(base, derived);
}

function withImages(base: Omit<ProcessedMedia, 'images' | 'failure'>, derived: DeriveImagesResult): ProcessedMedia {
  if (!derived.ok) {
    // A photo cut short still has its dimensions from the header (after its orientation).
    const header = derived.header ? { width: derived.header.width, height: derived.header.height } : { width: null, height: null };
    const facts = base.kind === 'image' && header.width ? { ...base.facts, ...header } : base.kind === 'image' ? upright(base.facts) : base.facts;
    return { ...base, facts, images: null, failure: { reason: derived.reason, message: derived.message } };
  }
  const { preview, thumbnail, perceptualHash, metadata } = derived;
  // The size the metadata gives wins: a video's stream (not its poster, scaled to the preview's
  // size), a RAW file's sensor (not its preview). Decoded photos have the decoder's.
  const facts = base.facts.width && base.mediaType !== null && !isDecodableImageType(base.mediaType) && base.mediaType !== 'image/heic' ? base.facts : { ...base.facts, width: metadata.width, height: metadata.height };
  return { ...base, facts, images: { preview, thumbnail, perceptualHash }, failure: null };
}

/** Stored dimensions turned by the EXIF orientation, for files whose pixels we never decoded. */
function upright(facts: MediaFacts): MediaFacts {
  if (!facts.orientation || facts.orientation < 5) return facts;
  return { ...facts, width: facts.height, height: facts.width };
}

async function readHead(path: string): Promise<Buffer> {
  const file = await open(path, 'r');
  try {
    const { buffer, bytesRead } = await file.read(Buffer.alloc(FACTS_HEAD_BYTES), 0, FACTS_HEAD_BYTES, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await file.close();
  }
}
