import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { FailOnOptions, Metadata, ResizeOptions } from 'sharp';
import { computeDHash, type PerceptualHash } from './perceptual-hash.js';
import { classifySharpError, fromRawPixels, sharp, withImageSlot, type MediaFailure, type RawPixels, type Sharp } from './sharp-runtime.js';
import { isDecodableImageType, SNIFF_BYTES, sniffMediaType } from './sniff-media-type.js';

/**
 * Everything pixshare derives from an uploaded photo (S4, S12, U1), from ONE decode:
 *
 *   original ──decode + orient + shrink (JPEG shrink-on-load)──▶ raw sRGB(A) ≤ 1600 px
 *                                                                  ├─▶ preview (WebP)
 *                                                                  └─▶ raw, short side 320
 *                                                                        ├─▶ thumbnail (WebP)
 *                                                                        └─▶ dHash
 *
 * Decoding is the step two separate pipelines would repeat: ~55 ms for a 12 MP JPEG (which
 * libvips can decode at 1/2…1/8 scale), 150–900 ms for PNG, WebP, TIFF or AVIF. The raw
 * intermediate is at most ~10 MB and re-reading it is nearly free; on 2 cores the preview
 * encode (the longest step) runs beside the thumbnail branch.
 */

export type { MediaFailure, MediaFailureReason } from './sharp-runtime.js';
export type { PerceptualHash } from './perceptual-hash.js';

/** Longest side of the preview (the photo page, the share page's lightbox); never enlarged. */
export const PREVIEW_MAX_SIDE = 1600;
/**
 * Thumbnails are squares of this side, centre-cropped ("cover"): the uploader's library,
 * folder covers, the friend's share page and the notification email all show them as a
 * uniform grid, and a 320 px square stays sharp in a 160 CSS px cell on 2× screens. The
 * uncropped view is the preview's job. Images whose short side is under 320 px give a
 * smaller square instead of being enlarged.
 */
export const THUMBNAIL_SIDE = 320;
/**
 * WebP settings: previews ~100–300 KB, thumbnails ~10–25 KB for 12 MP photos. The preview's
 * encode was most of the pipeline's time (libwebp is single-threaded). Measured on a 1600×1200
 * photo (bench/media.ts's breakdown, this 2-core machine): effort 4 (sharp's default) 146 ms,
 * effort 2 61 ms, effort 0 33 ms — at 152, 159 and 158 KiB and 37.0, 36.9 and 36.8 dB PSNR:
 * effort 0 costs the least for the same size and look. (JPEG q75 would take 12 ms, at 203 KiB and
 * 38.1 dB: a quarter more bytes for every preview a friend's phone loads.) Thumbnails are tiny to
 * encode (~10 ms) and served the most, so they keep effort 4.
 */
export const PREVIEW_WEBP = { quality: 80, effort: 0 } as const;
export const THUMBNAIL_WEBP = { quality: 75, effort: 4 } as const;

export interface DeriveImagesLimits {
  /**
   * Refuse images whose header claims more pixels (width × height) than this, before
   * decoding: the decompression-bomb fence. Default 100 MP (config: PIXSHARE_MAX_IMAGE_PIXELS),
   * which bounds an interlaced PNG — libvips must decode those whole — to ~400 MB. Note that
   * 102 MP medium-format cameras exist; raise it for such users.
   */
  limitInputPixels?: number;
  /**
   * Stream and Buffer inputs are held in memory whole (sharp would buffer a stream itself
   * before decoding; we do it, capped); a longer one is refused as `too_large` without
   * reading further. File paths are read lazily by libvips and need no cap. Default 256 MiB.
   */
  maxInputBytes?: number;
  /**
   * libvips' strictness. Default 'truncated': refuse files that end early (a broken copy
   * should be visible as broken, not as a half-grey thumbnail) but accept the minor
   * warnings many phone and camera JPEGs carry. 'warning' is libvips' default and rejects those.
   */
  failOn?: FailOnOptions;
  /** Abandon one image after this many seconds (pathological files). Default 60. */
  timeoutSeconds?: number;
}

const DEFAULT_LIMITS: Required<DeriveImagesLimits> = {
  limitInputPixels: 100_000_000,
  maxInputBytes: 256 * 1024 * 1024,
  failOn: 'truncated',
  timeoutSeconds: 60,
};

/** A file path (filesystem storage: libvips reads it lazily), a Readable (S3) or bytes. */
export type MediaInput = string | Buffer | Readable;

export interface DerivedImage {
  data: Buffer;
  width: number;
  height: number;
  mediaType: 'image/webp';
}

export interface ImageMetadata {
  /** From the leading bytes, e.g. 'image/jpeg'. */
  mediaType: string;
  /** libvips' decoder name, e.g. 'jpeg', 'png', 'heif' (for AVIF). */
  format: string;
  /** Of the original, after EXIF orientation: a portrait photo stored sideways reports portrait. */
  width: number;
  height: number;
  /** EXIF orientation 1–8 as stored, null when absent; the outputs already have it applied. */
  orientation: number | null;
  hasAlpha: boolean;
}

export interface DerivedImages {
  ok: true;
  preview: DerivedImage;
  thumbnail: DerivedImage;
  metadata: ImageMetadata;
  perceptualHash: PerceptualHash;
}

/** What a file's header told even though its pixels did not decode (cut short, damaged). */
export type HeaderFacts = Pick<ImageMetadata, 'width' | 'height' | 'orientation'>;

/**
 * How to turn the decoded image upright: by its own EXIF orientation (the default), or by one
 * given from elsewhere (a RAW file's preview JPEG carries none; the RAW file's own tag says).
 */
export interface DeriveOptions {
  orientation?: number;
}

export type DeriveImagesResult = DerivedImages | (MediaFailure & { header?: HeaderFacts });

/**
 * Decodes the image once and derives preview, thumbnail, metadata and perceptual hash.
 * Never throws for bad input: unknown formats, damaged files, decompression bombs,
 * timeouts and unreadable inputs come back as `{ ok: false, reason, message }`.
 * A Readable is consumed (or destroyed early when its first bytes are not a decodable image).
 * At most a few images are processed at once per process (see withImageSlot); extra calls wait.
 */
export async function deriveImages(input: MediaInput, limits: DeriveImagesLimits = {}, options: DeriveOptions = {}): Promise<DeriveImagesResult> {
  // The slot is taken before a stream is buffered, so waiting callers hold no image in memory.
  return withImageSlot(() => deriveImagesNow(input, { ...DEFAULT_LIMITS, ...limits }, options));
}

/**
 * The same outputs from pixels decoded elsewhere (HEIC by libheif), already upright. The pixels
 * are shrunk to the decode target first, like a JPEG decoded at reduced scale.
 */
export async function deriveImagesFromPixels(pixels: RawPixels, mediaType: string, format: string): Promise<DeriveImagesResult> {
  return withImageSlot(async () => {
    try {
      const header = { width: pixels.width, height: pixels.height, orientation: null };
      const outputs = await deriveOutputs(fromRawPixels(pixels), header, DEFAULT_LIMITS.timeoutSeconds);
      return { ...outputs, metadata: { mediaType, format, hasAlpha: pixels.channels === 2 || pixels.channels === 4, ...header } };
    } catch (error) {
      return classifySharpError(error, mediaType);
    }
  });
}

async function deriveImagesNow(input: MediaInput, settings: Required<DeriveImagesLimits>, options: DeriveOptions): Promise<DeriveImagesResult> {
  const loaded = await loadInput(input, settings.maxInputBytes);
  if (!loaded.ok) return loaded;
  const { source, mediaType } = loaded;
  let header: Metadata | undefined;
  try {
    const image = sharp(source, {
      limitInputPixels: settings.limitInputPixels,
      failOn: settings.failOn,
      sequentialRead: true,
    });
    // Header only (no pixels): dimensions for the decode target, EXIF, and the pixel-limit
    // check, which sharp applies here already.
    header = await image.metadata();
    const facts = headerFacts(header, options.orientation);
    const outputs = await deriveOutputs(orient(image, options.orientation), facts, settings.timeoutSeconds);
    return { ...outputs, metadata: { mediaType, format: header.format, hasAlpha: header.hasAlpha, ...facts } };
  } catch (error) {
    // A file cut short or damaged after its header still has its dimensions.
    const failure = classifySharpError(error, mediaType);
    return header ? { ...failure, header: headerFacts(header, options.orientation) } : failure;
  }
}

/** Decode (to the target size, upright, 8-bit sRGB) once, then the three outputs from those pixels. */
async function deriveOutputs(image: Sharp, upright: { width: number; height: number }, timeoutSeconds: number): Promise<Omit<DerivedImages, 'metadata'>> {
  const { data, info } = await image
    .resize(decodeTarget(upright.width, upright.height))
    .toColourspace('srgb') // CMYK, greyscale and 16-bit inputs all become 8-bit sRGB(A)
    .raw({ depth: 'uchar' })
    .timeout({ seconds: Math.max(1, Math.ceil(timeoutSeconds)) })
    .toBuffer({ resolveWithObject: true });
  const pixels: RawPixels = { data, width: info.width, height: info.height, channels: info.channels };
  const [preview, [thumbnail, perceptualHash]] = await Promise.all([
    encodePreview(pixels),
    shrinkForThumbnail(pixels).then((small) => Promise.all([encodeThumbnail(small), computeDHash(small)])),
  ]);
  return { ok: true, preview, thumbnail, perceptualHash };
}

/** EXIF orientations that swap width and height (the 90° turns). */
const SIDEWAYS = new Set([5, 6, 7, 8]);

/** The facts of a header: dimensions after orientation, and the orientation. */
function headerFacts(header: Metadata, orientation: number | undefined): HeaderFacts {
  if (orientation === undefined) {
    return { width: header.autoOrient?.width ?? header.width, height: header.autoOrient?.height ?? header.height, orientation: header.orientation ?? null };
  }
  const sideways = SIDEWAYS.has(orientation);
  return { width: sideways ? header.height : header.width, height: sideways ? header.width : header.height, orientation };
}

/**
 * Turns the image upright: by its own EXIF orientation, or by the one given (1 normal,
 * 2 mirrored, 3 upside down, 4 flipped, 5 transposed, 6 turned 90° clockwise, 7 transversed,
 * 8 turned 90° anticlockwise).
 */
function orient(image: Sharp, orientation: number | undefined): Sharp {
  if (orientation === undefined) return image.autoOrient();
  const turn = { 3: 180, 5: 270, 6: 90, 7: 90, 8: 270 }[orientation]; // sharp mirrors before it turns
  if (turn) image = image.rotate(turn);
  if (orientation === 2 || orientation === 5 || orientation === 7) image = image.flop();
  if (orientation === 4) image = image.flip();
  return image;
}

/**
 * The size to decode to: enough for the preview (longest side 1600) and, for very wide
 * panoramas, enough short side for a full-size thumbnail square. Only one dimension is
 * given so libvips keeps the aspect ratio; JPEG shrink-on-load picks the nearest 1/2,
 * 1/4 or 1/8 scale at or above it.
 */
function decodeTarget(width: number, height: number): ResizeOptions | undefined {
  const long = Math.max(width, height);
  const short = Math.min(width, height);
  const shortNeeded = Math.min(THUMBNAIL_SIDE, short);
  if (long <= PREVIEW_MAX_SIDE) return undefined;
  const landscape = width >= height;
  if ((short * PREVIEW_MAX_SIDE) / long >= shortNeeded) {
    return landscape ? { width: PREVIEW_MAX_SIDE } : { height: PREVIEW_MAX_SIDE };
  }
  return landscape ? { height: shortNeeded } : { width: shortNeeded };
}

async function encodePreview(pixels: RawPixels): Promise<DerivedImage> {
  let pipeline = fromRawPixels(pixels);
  // Only panoramas decoded larger than the preview (see decodeTarget) need a second resize.
  if (Math.max(pixels.width, pixels.height) > PREVIEW_MAX_SIDE) {
    pipeline = pipeline.resize(PREVIEW_MAX_SIDE, PREVIEW_MAX_SIDE, { fit: 'inside' });
  }
  const { data, info } = await pipeline.webp(PREVIEW_WEBP).toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, mediaType: 'image/webp' };
}

/**
 * The whole frame, shrunk until its short side is the thumbnail's (never enlarged): the
 * thumbnail is its centre crop and the dHash reads it instead of the ~6 MB intermediate,
 * which costs a third of the time.
 */
async function shrinkForThumbnail(pixels: RawPixels): Promise<RawPixels> {
  if (Math.min(pixels.width, pixels.height) <= THUMBNAIL_SIDE) return pixels;
  const { data, info } = await fromRawPixels(pixels)
    .resize(THUMBNAIL_SIDE, THUMBNAIL_SIDE, { fit: 'outside' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

async function encodeThumbnail(pixels: RawPixels): Promise<DerivedImage> {
  const side = Math.min(THUMBNAIL_SIDE, pixels.width, pixels.height);
  const { data, info } = await fromRawPixels(pixels)
    .resize(side, side, { fit: 'cover', position: 'centre' })
    .webp(THUMBNAIL_WEBP)
    .toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, mediaType: 'image/webp' };
}

export type LoadedInput = { ok: true; source: string | Buffer; mediaType: string } | MediaFailure;

/**
 * Reads just enough to sniff the type, and refuses anything we do not decode before
 * libvips sees it. Streams are buffered (capped), because sharp would buffer them anyway.
 */
/** The input sniffed and, for streams and bytes, held (capped): what every media function decodes from. */
export async function loadInput(input: MediaInput, maxInputBytes: number): Promise<LoadedInput> {
  if (typeof input === 'string') return loadFile(input);
  if (Buffer.isBuffer(input)) {
    if (input.length > maxInputBytes) return tooManyBytes(maxInputBytes, sniffMediaType(input.subarray(0, SNIFF_BYTES)));
    return decodable(input, sniffMediaType(input.subarray(0, SNIFF_BYTES)));
  }
  return loadStream(input, maxInputBytes);
}

async function loadFile(path: string): Promise<LoadedInput> {
  let head: Buffer;
  try {
    const file = await open(path, 'r');
    try {
      const { buffer, bytesRead } = await file.read(Buffer.alloc(SNIFF_BYTES), 0, SNIFF_BYTES, 0);
      head = buffer.subarray(0, bytesRead);
    } finally {
      await file.close();
    }
  } catch (error) {
    return { ok: false, reason: 'read_error', message: errorMessage(error), mediaType: null };
  }
  return decodable(path, sniffMediaType(head));
}

async function loadStream(stream: Readable, maxInputBytes: number): Promise<LoadedInput> {
  const parts: Buffer[] = [];
  let total = 0;
  let mediaType: string | null | undefined; // undefined: not sniffed yet
  try {
    // Leaving the loop early (return) destroys the stream, so an S3 GET stops downloading.
    for await (const chunk of stream) {
      const part = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
      parts.push(part);
      total += part.length;
      if (mediaType === undefined && total >= SNIFF_BYTES) {
        mediaType = sniffMediaType(Buffer.concat(parts).subarray(0, SNIFF_BYTES));
        if (!isDecodableImageType(mediaType)) return notDecodable(mediaType);
      }
      if (total > maxInputBytes) return tooManyBytes(maxInputBytes, mediaType ?? null);
    }
  } catch (error) {
    return { ok: false, reason: 'read_error', message: errorMessage(error), mediaType: mediaType ?? null };
  }
  const data = Buffer.concat(parts, total);
  return decodable(data, mediaType ?? sniffMediaType(data));
}

function decodable(source: string | Buffer, mediaType: string | null): LoadedInput {
  return isDecodableImageType(mediaType) ? { ok: true, source, mediaType: mediaType! } : notDecodable(mediaType);
}

function notDecodable(mediaType: string | null): MediaFailure {
  const message = mediaType ? `${mediaType} is not an image format pixshare decodes` : 'Not a recognised image format';
  return { ok: false, reason: 'unsupported', message, mediaType };
}

function tooManyBytes(maxInputBytes: number, mediaType: string | null): MediaFailure {
  return { ok: false, reason: 'too_large', message: `Input is larger than ${maxInputBytes} bytes`, mediaType };
}

/** The message of whatever was thrown. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
