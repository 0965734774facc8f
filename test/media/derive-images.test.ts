import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  deriveImages,
  PREVIEW_MAX_SIDE,
  THUMBNAIL_SIDE,
  type DeriveImagesResult,
  type DerivedImages,
} from '../../src/services/media/derive-images.js';
import { hammingDistance } from '../../src/protocol/perceptual-hash.js';
import { bombPng, ftyp } from './crafted-files.js';
import { photoLikeJpeg, photoLikePixels } from './photo-like.js';

let dir: string;
/** The 12 MP photo most tests share (file path input, like the filesystem driver). */
let photoPath: string;
let photo: Buffer;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'pixshare-media-test-'));
  photo = await photoLikeJpeg({ width: 4000, height: 3000, seed: 1 });
  photoPath = path.join(dir, 'photo.jpg');
  await writeFile(photoPath, photo);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function expectOk(result: DeriveImagesResult): DerivedImages {
  if (!result.ok) throw new Error(`expected success, got ${result.reason}: ${result.message}`);
  return result;
}

/** Decodes an output to check what a browser would get, not what we claim. */
async function inspect(webp: Buffer) {
  const meta = await sharp(webp).metadata();
  return { format: meta.format, width: meta.width, height: meta.height, hasAlpha: meta.hasAlpha };
}

/** RGB of one pixel of an encoded image. */
async function pixelAt(image: Buffer, x: number, y: number): Promise<[number, number, number]> {
  const data = await sharp(image).extract({ left: x, top: y, width: 1, height: 1 }).removeAlpha().raw().toBuffer();
  return [data[0]!, data[1]!, data[2]!];
}

describe('deriveImages: outputs', () => {
  it('makes a 1600 px preview, a 320 px square thumbnail and metadata from a 12 MP JPEG file', async () => {
    const result = expectOk(await deriveImages(photoPath));

    expect(result.preview).toMatchObject({ width: 1600, height: 1200, mediaType: 'image/webp' });
    expect(await inspect(result.preview.data)).toEqual({ format: 'webp', width: 1600, height: 1200, hasAlpha: false });
    expect(result.preview.data.length).toBeGreaterThan(20_000);
    expect(result.preview.data.length).toBeLessThan(400_000);

    expect(result.thumbnail).toMatchObject({ width: THUMBNAIL_SIDE, height: THUMBNAIL_SIDE, mediaType: 'image/webp' });
    expect(await inspect(result.thumbnail.data)).toMatchObject({ format: 'webp', width: 320, height: 320 });

    expect(result.metadata).toEqual({
      mediaType: 'image/jpeg',
      format: 'jpeg',
      width: 4000,
      height: 3000,
      orientation: null,
      hasAlpha: false,
    });
    expect(result.perceptualHash.hex).toMatch(/^[0-9a-f]{16}$/);
    expect(BigInt.asUintN(64, result.perceptualHash.value).toString(16).padStart(16, '0')).toBe(result.perceptualHash.hex);
  });

  it('applies EXIF orientation 6: a sideways-stored photo comes out portrait, pixels rotated', async () => {
    // Stored 2000×1500 with a red top-left quadrant; orientation 6 means "rotate 90° clockwise
    // to display", which puts that quadrant at the top right.
    const stored = await sharp({ create: { width: 2000, height: 1500, channels: 3, background: '#2040c0' } })
      .composite([{ input: { create: { width: 1000, height: 750, channels: 3, background: '#e01010' } }, left: 0, top: 0 }])
      .jpeg({ quality: 90 })
      .withMetadata({ orientation: 6 })
      .toBuffer();
    expect((await sharp(stored).metadata()).orientation).toBe(6);

    const result = expectOk(await deriveImages(stored));
    expect(result.metadata).toMatchObject({ width: 1500, height: 2000, orientation: 6 });
    expect(result.preview).toMatchObject({ width: 1200, height: 1600 });
    expect(await inspect(result.preview.data)).toMatchObject({ width: 1200, height: 1600 });
    const [r1, , b1] = await pixelAt(result.preview.data, 1150, 50);
    const [r2, , b2] = await pixelAt(result.preview.data, 50, 50);
    expect(r1).toBeGreaterThan(180); // top right: red
    expect(b1).toBeLessThan(80);
    expect(b2).toBeGreaterThan(150); // top left: blue
    expect(r2).toBeLessThan(80);
  });

  it('keeps alpha from a PNG read from a stream, delivered in small chunks', async () => {
    const png = await sharp({ create: { width: 1200, height: 900, channels: 4, background: { r: 10, g: 200, b: 30, alpha: 0.5 } } })
      .png()
      .toBuffer();
    const chunks = [png.subarray(0, 100), png.subarray(100, 300), png.subarray(300)]; // first chunk shorter than the sniff window
    const result = expectOk(await deriveImages(Readable.from(chunks)));
    expect(result.metadata).toMatchObject({ mediaType: 'image/png', format: 'png', width: 1200, height: 900, hasAlpha: true });
    expect(await inspect(result.preview.data)).toEqual({ format: 'webp', width: 1200, height: 900, hasAlpha: true });
    expect(await inspect(result.thumbnail.data)).toMatchObject({ width: 320, height: 320, hasAlpha: true });
  });

  it('reads WebP and AVIF inputs', async () => {
    const pixels = await photoLikePixels({ width: 800, height: 600, seed: 5 });
    const webp = await sharp(pixels.data, { raw: pixels }).webp().toBuffer();
    expect(expectOk(await deriveImages(webp)).metadata).toMatchObject({ mediaType: 'image/webp', format: 'webp', width: 800, height: 600 });

    const avif = await sharp(pixels.data, { raw: pixels }).resize(240, 180).avif({ effort: 0 }).toBuffer();
    const result = expectOk(await deriveImages(avif));
    expect(result.metadata).toMatchObject({ mediaType: 'image/avif', format: 'heif', width: 240, height: 180 });
    expect(result.thumbnail).toMatchObject({ width: 180, height: 180 });
  });

  it('reads GIF and TIFF inputs (the first frame of an animation)', async () => {
    const base = sharp({ create: { width: 300, height: 200, channels: 3, background: '#c08040' } });
    const gif = await base.clone().gif().toBuffer();
    expect(expectOk(await deriveImages(gif)).metadata).toMatchObject({ mediaType: 'image/gif', format: 'gif', width: 300, height: 200 });
    const tiff = await base.clone().tiff().toBuffer();
    expect(expectOk(await deriveImages(tiff)).metadata).toMatchObject({ mediaType: 'image/tiff', format: 'tiff', width: 300, height: 200 });
  });

  it('normalises CMYK and 16-bit greyscale inputs to 8-bit sRGB outputs', async () => {
    const grey16 = await sharp({ create: { width: 640, height: 480, channels: 3, background: '#808080' } })
      .greyscale()
      .png({ palette: false })
      .toColourspace('grey16')
      .toBuffer();
    expect((await sharp(grey16).metadata()).depth).toBe('ushort');
    const cmyk = await sharp({ create: { width: 640, height: 480, channels: 3, background: '#20a060' } }).toColourspace('cmyk').jpeg().toBuffer();
    expect((await sharp(cmyk).metadata()).space).toBe('cmyk');

    for (const input of [grey16, cmyk]) {
      const result = expectOk(await deriveImages(input));
      expect(result.metadata).toMatchObject({ width: 640, height: 480 });
      const preview = await sharp(result.preview.data).metadata();
      expect(preview).toMatchObject({ width: 640, height: 480, space: 'srgb', channels: 3, depth: 'uchar' });
    }
  });

  it('never enlarges: a small image keeps its size and gets a smaller square thumbnail', async () => {
    const small = await sharp({ create: { width: 100, height: 50, channels: 3, background: '#abcdef' } }).jpeg().toBuffer();
    const result = expectOk(await deriveImages(small));
    expect(result.preview).toMatchObject({ width: 100, height: 50 });
    expect(result.thumbnail).toMatchObject({ width: 50, height: 50 });
  });

  it('decodes panoramas large enough for a full-size thumbnail square', async () => {
    const pixels = await photoLikePixels({ width: 8000, height: 800, seed: 9, grain: 0 });
    const pano = await sharp(pixels.data, { raw: pixels }).jpeg({ quality: 80 }).toBuffer();
    const result = expectOk(await deriveImages(pano));
    expect(result.metadata).toMatchObject({ width: 8000, height: 800 });
    expect(result.preview).toMatchObject({ width: PREVIEW_MAX_SIDE, height: 160 });
    expect(result.thumbnail).toMatchObject({ width: 320, height: 320 });
  });
});

describe('deriveImages: bad input fails cleanly', () => {
  it('reports a truncated JPEG as corrupt (and decodes it when failOn is "none")', async () => {
    const truncated = photo.subarray(0, Math.floor(photo.length / 2));
    const result = await deriveImages(truncated);
    expect(result).toMatchObject({ ok: false, reason: 'corrupt', mediaType: 'image/jpeg' });
    expect(result.ok === false && result.message).toMatch(/premature end/i);

    expect(expectOk(await deriveImages(truncated, { failOn: 'none' })).preview.width).toBe(1600);
  });

  it('still reads the dimensions and orientation of a JPEG cut short after its header', async () => {
    const camera = await sharp(photo)
      .withMetadata({ orientation: 6 })
      .withExif({
        IFD0: { Make: 'Acme Optical', Model: 'X-100' },
        IFD2: { DateTimeOriginal: '2023:07:14 18:05:09', OffsetTimeOriginal: '+02:00' },
      })
      .jpeg({ quality: 90 })
      .toBuffer();
    for (const keep of [0.9, 0.5, 0.1]) {
      const cut = camera.subarray(0, Math.floor(camera.length * keep));
      const result = await deriveImages(cut);
      expect(result).toMatchObject({ ok: false, reason: 'corrupt', mediaType: 'image/jpeg' });
      // Dimensions after the EXIF orientation (6: stored sideways, shown portrait).
      expect(result.ok === false && result.header).toEqual({ width: 3000, height: 4000, orientation: 6 });
    }
    // Nothing but a signature: no header to tell anything.
    expect(await deriveImages(camera.subarray(0, 4))).not.toHaveProperty('header');
  });

  it('reports a JPEG with garbage after its signature as corrupt', async () => {
    const garbage = Buffer.concat([photo.subarray(0, 4), randomBytes(4000)]);
    expect(await deriveImages(garbage)).toMatchObject({ ok: false, reason: 'corrupt', mediaType: 'image/jpeg' });
  });

  it('refuses a decompression bomb from its header: a 30000×30000 PNG of 110 KB', async () => {
    const bomb = bombPng(30_000, 30_000);
    expect(bomb.length).toBeLessThan(200_000);
    const started = performance.now();
    const result = await deriveImages(bomb);
    expect(result).toMatchObject({ ok: false, reason: 'too_large', mediaType: 'image/png' });
    expect(result.ok === false && result.message).toMatch(/pixel limit/);
    expect(performance.now() - started).toBeLessThan(1000); // header only, nothing decoded

    // From a file too, and with a configured limit lower than sharp's own default.
    const bombPath = path.join(dir, 'bomb.png');
    await writeFile(bombPath, bombPng(12_000, 12_000));
    expect(await deriveImages(bombPath)).toMatchObject({ ok: false, reason: 'too_large' }); // 144 MP > 100 MP default
    expect(await deriveImages(photoPath, { limitInputPixels: 1_000_000 })).toMatchObject({ ok: false, reason: 'too_large' });
  });

  it('does not attempt to decode bytes that are not an image, and stops reading such a stream', async () => {
    const random = randomBytes(64 * 1024);
    random[0] = 0x00; // never a JPEG/PNG/GIF/TIFF signature by accident
    expect(await deriveImages(random)).toMatchObject({ ok: false, reason: 'unsupported', mediaType: null });

    let produced = 0;
    const endless = new Readable({
      read() {
        produced += 64 * 1024;
        this.push(produced > 512 * 1024 * 1024 ? null : Buffer.alloc(64 * 1024, 0x11));
      },
    });
    expect(await deriveImages(endless)).toMatchObject({ ok: false, reason: 'unsupported' });
    expect(produced).toBeLessThan(1024 * 1024);
    expect(endless.destroyed).toBe(true);
  });

  it('recognises videos and HEIC without decoding them', async () => {
    const mp4 = Buffer.concat([ftyp('isom', ['isom', 'mp41']), randomBytes(1000)]);
    expect(await deriveImages(mp4)).toMatchObject({ ok: false, reason: 'unsupported', mediaType: 'video/mp4' });
    const heic = Buffer.concat([ftyp('heic', ['mif1', 'heic']), randomBytes(1000)]);
    expect(await deriveImages(heic)).toMatchObject({ ok: false, reason: 'unsupported', mediaType: 'image/heic' });
  });

  it('caps how much of a stream it buffers', async () => {
    const result = await deriveImages(Readable.from([photo.subarray(0, 1000), photo.subarray(1000)]), { maxInputBytes: 100_000 });
    expect(result).toMatchObject({ ok: false, reason: 'too_large', mediaType: 'image/jpeg' });
  });

  it('reports unreadable inputs as read errors', async () => {
    expect(await deriveImages(path.join(dir, 'missing.jpg'))).toMatchObject({ ok: false, reason: 'read_error' });
    const failing = new Readable({
      read() {
        this.destroy(new Error('connection reset'));
      },
    });
    expect(await deriveImages(failing)).toMatchObject({ ok: false, reason: 'read_error', message: 'connection reset' });
  });
});

describe('deriveImages: process-wide limits', () => {
  it('processes at most two images at once; later callers wait before reading their input', async () => {
    const small = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#123456' } }).jpeg().toBuffer();
    // Streams that record when they are first read and deliver only when told to.
    const inputs = [0, 1, 2].map(() => {
      const input = { pulled: false, stream: new Readable({ read: () => void (input.pulled = true) }) };
      return input;
    });
    const deliver = (n: number) => {
      inputs[n]!.stream.push(small);
      inputs[n]!.stream.push(null);
    };
    const results = inputs.map((input) => deriveImages(input.stream));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(inputs.map((input) => input.pulled)).toEqual([true, true, false]);

    deliver(0);
    expect((await results[0]!).ok).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(inputs[2]!.pulled).toBe(true);

    deliver(1);
    deliver(2);
    expect((await Promise.all(results)).map((result) => result.ok)).toEqual([true, true, true]);
  });
});

describe('deriveImages: perceptual hash', () => {
  it('stays within 6 bits for the same photo re-encoded smaller, and differs by more than 20 for another photo', async () => {
    const original = expectOk(await deriveImages(photoPath)).perceptualHash;

    const smaller = await sharp(photo).resize(2000, 1500).jpeg({ quality: 40 }).toBuffer();
    const reencoded = expectOk(await deriveImages(smaller)).perceptualHash;
    expect(hammingDistance(original.value, reencoded.value)).toBeLessThanOrEqual(6);

    for (const seed of [2, 3]) {
      const other = await photoLikeJpeg({ width: 2000, height: 1500, seed });
      const different = expectOk(await deriveImages(other)).perceptualHash;
      expect(hammingDistance(original.value, different.value)).toBeGreaterThan(20);
    }
  });

  it('hashes what the viewer sees: EXIF-rotated and physically rotated copies match', async () => {
    const pixels = await photoLikePixels({ width: 1200, height: 900, seed: 4 });
    const tagged = await sharp(pixels.data, { raw: pixels }).jpeg({ quality: 90 }).withMetadata({ orientation: 6 }).toBuffer();
    const rotated = await sharp(pixels.data, { raw: pixels }).rotate(90).jpeg({ quality: 90 }).toBuffer();
    const a = expectOk(await deriveImages(tagged)).perceptualHash;
    const b = expectOk(await deriveImages(rotated)).perceptualHash;
    expect(hammingDistance(a.value, b.value)).toBeLessThanOrEqual(2);
  });
});
