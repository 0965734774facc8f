import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp, { type Exif } from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endExifTool } from '../../src/services/media/exiftool.js';
import { decodeHeic } from '../../src/services/media/heic.js';
import { processMedia, type MediaLimits, type ProcessedMedia } from '../../src/services/media/process-media.js';
import { readImageFacts } from '../../src/services/media/read-media-facts.js';
import { ffmpegPath, videoPoster } from '../../src/services/media/video-poster.js';
import { CAMERA_FIXTURES, CAMERA_JPEGS, cameraJpegCutShort, exifBlock, IPHONE_EXIF, makeVideo, rawWithPreview } from './camera-files.js';
import { makeHeic } from './make-heic.js';
import { photoLikeJpeg } from './photo-like.js';

let dir: string;
const limits: MediaLimits = { maxPixels: 100_000_000, maxInputBytes: 256 * 1024 * 1024, timeoutSeconds: 30, ffmpeg: ffmpegPath() };

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'pixshare-process-media-'));
});

afterAll(async () => {
  await endExifTool();
  await rm(dir, { recursive: true, force: true });
});

let counter = 0;
async function processBytes(bytes: Buffer, options: Partial<MediaLimits> = {}): Promise<ProcessedMedia> {
  const file = path.join(dir, `input-${++counter}`);
  await writeFile(file, bytes);
  return processMedia(file, { ...limits, ...options });
}

/** What a browser gets from an output: format and size. */
async function inspect(webp: Buffer) {
  const { format, width, height } = await sharp(webp).metadata();
  return { format, width, height };
}

describe('capture time and camera from the metadata, not the decoder', () => {
  it.each(CAMERA_JPEGS)('%s cut short in its image data still gives its capture time and camera', async (fixture) => {
    const whole = readImageFacts(await readFile(path.join(CAMERA_FIXTURES, fixture)));
    expect(whole.takenAt?.local).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}/);
    const result = await processBytes(await cameraJpegCutShort(fixture, 0.5));
    expect(result).toMatchObject({ mediaType: 'image/jpeg', kind: 'image', images: null, failure: { reason: 'corrupt' } });
    expect(result.facts.takenAt).toEqual(whole.takenAt);
    expect(result.facts.make).toBe(whole.make);
    expect(result.facts.model).toBe(whole.model);
    // The dimensions are the frame's, from its header (4000×3000, as the camera's orientation shows it), though its pixels end early.
    expect([result.facts.width, result.facts.height]).toEqual((whole.orientation ?? 1) >= 5 ? [3000, 4000] : [4000, 3000]);
  });

  it('reads GPS, the offset and sub-seconds, and falls back from DateTimeOriginal to CreateDate to DateTime', async () => {
    const gps = readImageFacts(await readFile(path.join(CAMERA_FIXTURES, 'GPS.jpg')));
    expect(gps.location).toEqual({ latitude: 54.9896667, longitude: -1.9141667, altitude: null });
    const tiny = (exif: Exif) => sharp({ create: { width: 64, height: 48, channels: 3, background: '#369' } }).withExif(exif).jpeg().toBuffer();
    const full = readImageFacts(await tiny({ IFD0: { Make: 'Acme Optical', Model: 'X-100 Mk II' }, IFD2: { DateTimeOriginal: '2023:07:14 18:05:09', OffsetTimeOriginal: '+02:00', SubSecTimeOriginal: '12' } }));
    expect(full).toMatchObject({ make: 'Acme Optical', model: 'X-100 Mk II', takenAt: { local: '2023-07-14T18:05:09.120', offset: '+02:00', instant: new Date('2023-07-14T16:05:09.120Z'), source: 'DateTimeOriginal' } });
    const created = readImageFacts(await tiny({ IFD0: { DateTime: '2024:02:02 10:00:00' }, IFD2: { DateTimeDigitized: '2021:03:04 05:06:07', OffsetTimeDigitized: '-05:00' } }));
    expect(created.takenAt).toMatchObject({ local: '2021-03-04T05:06:07', instant: new Date('2021-03-04T10:06:07Z'), source: 'CreateDate' });
    expect(readImageFacts(await tiny({ IFD0: { DateTime: '2024:02:02 10:00:00' } })).takenAt).toMatchObject({ local: '2024-02-02T10:00:00', offset: null, instant: null, source: 'DateTime' });
    // A clock never set, an impossible zone, blank fields.
    expect(readImageFacts(await tiny({ IFD2: { DateTimeOriginal: '0000:00:00 00:00:00' } })).takenAt).toBeNull();
    expect(readImageFacts(await tiny({ IFD2: { DateTimeOriginal: '2022:02:28 12:00:00', OffsetTimeOriginal: '+25:00' } })).takenAt).toMatchObject({ offset: null, instant: null });
    expect(readImageFacts(await tiny({ IFD2: { DateTimeOriginal: '    :  :     :  :  ' }, IFD0: { Make: '   ' } }))).toMatchObject({ takenAt: null, make: null });
    expect(readImageFacts(Buffer.from('not an image at all'))).toMatchObject({ takenAt: null, make: null, location: null });
  });
});

describe('HEIC (libheif, WebAssembly)', () => {
  it('makes upright thumbnail and preview from an iPhone-style HEIC turned by irot, with its EXIF facts', async () => {
    const image = await photoLikeJpeg({ width: 1200, height: 800, seed: 11 });
    const exif = await exifBlock(IPHONE_EXIF);
    // Stored landscape, turned 90° clockwise (irot 3 = 270° anticlockwise) to show portrait.
    const heic = await makeHeic({ image, rotation: 3, exif });
    const result = await processBytes(heic);
    expect(result).toMatchObject({ mediaType: 'image/heic', kind: 'image', failure: null });
    expect(result.facts).toMatchObject({ width: 800, height: 1200, make: 'Apple', model: 'iPhone 15', takenAt: { instant: new Date('2024-05-06T05:08:09Z') } });
    expect(await inspect(result.images!.preview.data)).toEqual({ format: 'webp', width: 800, height: 1200 });
    expect(await inspect(result.images!.thumbnail.data)).toEqual({ format: 'webp', width: 320, height: 320 });
    // Turned the right way: the stored image's left column is the preview's top row.
    const upright = await sharp(image).rotate(90).resize(800, 1200).raw().toBuffer({ resolveWithObject: true });
    const preview = await sharp(result.images!.preview.data).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    expect(meanDifference(upright.data, preview.data)).toBeLessThan(12);
    const unturned = await sharp(image).rotate(270).resize(800, 1200).raw().toBuffer();
    expect(meanDifference(unturned, preview.data)).toBeGreaterThan(20);
  }, 60_000);

  it('marks a cut or garbled HEIC failed, refuses one over the pixel limit, and stops one that takes too long', async () => {
    const heic = await makeHeic({ image: await photoLikeJpeg({ width: 640, height: 480, seed: 12 }) });
    // A garbled container (HEVC itself decodes whatever its bytes say, like a damaged JPEG's scan).
    const garbled = Buffer.from(heic);
    garbled.fill(0x55, 40, 240);
    for (const broken of [heic.subarray(0, 600), garbled]) {
      const result = await processBytes(broken);
      expect(result).toMatchObject({ mediaType: 'image/heic', images: null, failure: { reason: 'corrupt' } });
    }
    expect(await processBytes(heic, { maxPixels: 640 * 480 - 1 })).toMatchObject({ images: null, failure: { reason: 'too_large' } });
    expect(await decodeHeic(heic, { maxPixels: 1e8, timeoutSeconds: 0.001 })).toMatchObject({ ok: false, reason: 'timeout' });
  }, 60_000);
});

describe('videos (ffmpeg shipped in an npm package)', () => {
  it.each([
    ['mp4', 'video/mp4', 'avc1'],
    ['mov', 'video/quicktime', 'hvc1'],
  ] as const)('a short %s gets a poster, its duration, dimensions, codec and creation time', async (container, mediaType, codec) => {
    const video = await makeVideo(dir, { container, width: 640, height: 360, seconds: 2, creationTime: '2024-03-04T05:06:07Z' });
    const result = await processBytes(video);
    expect(result).toMatchObject({ mediaType, kind: 'video', failure: null });
    expect(result.facts).toMatchObject({ width: 640, height: 360, durationMs: 2000, videoCodec: codec, takenAt: { instant: new Date('2024-03-04T05:06:07Z') } });
    expect(await inspect(result.images!.preview.data)).toEqual({ format: 'webp', width: 640, height: 360 });
    expect(await inspect(result.images!.thumbnail.data)).toEqual({ format: 'webp', width: 320, height: 320 });
  }, 60_000);

  it('scales a large video\'s poster in ffmpeg, and marks broken and cut videos failed', async () => {
    const big = await processBytes(await makeVideo(dir, { container: 'mp4', width: 3840, height: 2160, seconds: 1, creationTime: '2024-03-04T05:06:07Z' }));
    expect(big.facts).toMatchObject({ width: 3840, height: 2160 });
    expect(await inspect(big.images!.preview.data)).toMatchObject({ width: 1600, height: 900 });

    const video = await makeVideo(dir, { container: 'mp4', width: 320, height: 240, seconds: 1, creationTime: '2024-03-04T05:06:07Z' });
    const garbled = Buffer.from(video);
    garbled.fill(0x42, 40);
    for (const broken of [video.subarray(0, 2000), garbled]) {
      const result = await processBytes(broken);
      expect(result).toMatchObject({ mediaType: 'video/mp4', kind: 'video', images: null });
      expect(['corrupt', 'unsupported']).toContain(result.failure!.reason);
    }
    // ExifTool's QuickTime sample: metadata of a real camera's movie, no playable frames.
    const stub = await processMedia(path.join(CAMERA_FIXTURES, 'QuickTime.mov'), limits);
    expect(stub).toMatchObject({ mediaType: 'video/quicktime', kind: 'video', images: null, facts: { make: 'PENTAX DIGITAL CAMERA', width: 320, height: 240 } });
  }, 60_000);

  it('kills an ffmpeg run that takes longer than its time limit', async () => {
    const slow = path.join(dir, 'slow-ffmpeg.sh');
    await writeFile(slow, '#!/bin/sh\nsleep 30\n');
    await chmod(slow, 0o755);
    const started = Date.now();
    const result = await videoPoster(path.join(CAMERA_FIXTURES, 'QuickTime.mov'), 0, { ffmpeg: slow, maxSide: 1600, timeoutSeconds: 1 });
    expect(result).toMatchObject({ ok: false, reason: 'timeout' });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(await videoPoster(path.join(CAMERA_FIXTURES, 'QuickTime.mov'), 0, { ffmpeg: null, maxSide: 1600, timeoutSeconds: 1 })).toMatchObject({ ok: false, reason: 'unsupported' });
  });
});

describe('camera RAW (ExifTool)', () => {
  it.each([
    ['DNG.dng', 'image/x-adobe-dng'],
    ['CanonRaw.cr2', 'image/x-canon-cr2'],
    ['Nikon.nef', 'image/x-nikon-nef'],
  ] as const)('%s: thumbnail and preview from its embedded full-size preview, turned by the RAW file\'s orientation', async (fixture, mediaType) => {
    const raw = await rawWithPreview(fixture, dir, { width: 3000, height: 2000, orientation: fixture === 'Nikon.nef' ? undefined : 6 });
    const result = await processBytes(raw);
    expect(result).toMatchObject({ mediaType, kind: 'image', failure: null, facts: { takenAt: { source: 'DateTimeOriginal' } } });
    const sideways = result.facts.orientation === 6;
    expect(await inspect(result.images!.preview.data)).toEqual({ format: 'webp', width: sideways ? 1067 : 1600, height: sideways ? 1600 : 1067 });
  }, 60_000);

  it('keeps the facts of RAW files without a usable preview (CR3, RAF, RW2 samples) and marks them failed', async () => {
    for (const [fixture, mediaType, make] of [
      ['CanonRaw.cr3', 'image/x-canon-cr3', 'Canon'],
      ['Panasonic.rw2', 'image/x-panasonic-rw2', 'Panasonic'],
      ['DNG.dng', 'image/x-adobe-dng', 'Canon'],
    ] as const) {
      const result = await processMedia(path.join(CAMERA_FIXTURES, fixture), limits);
      expect(result).toMatchObject({ mediaType, kind: 'image', facts: { make } });
      expect(result.facts.takenAt).not.toBeNull();
      if (fixture !== 'Panasonic.rw2') expect(result).toMatchObject({ images: null, failure: { reason: 'unsupported' } });
    }
  });
});

describe('anything else', () => {
  it('is stored as it is: not an image, with no facts', async () => {
    expect(await processBytes(Buffer.from('plain text, not a photo\n'))).toMatchObject({ mediaType: null, kind: 'other', images: null, failure: { reason: 'unsupported' } });
    expect(await processMedia(path.join(dir, 'missing-file'), limits)).toMatchObject({ failure: { reason: 'read_error' } });
  });
});

function meanDifference(a: Buffer, b: Buffer): number {
  let sum = 0;
  for (let i = 0; i < Math.min(a.length, b.length); i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / Math.min(a.length, b.length);
}
