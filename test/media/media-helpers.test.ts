import { randomBytes } from 'node:crypto';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import {
  dHashFromGrey,
  hammingDistance,
  perceptualHashFromBits,
  perceptualHashFromHex,
} from '../../src/protocol/perceptual-hash.js';
import { classifySharpError } from '../../src/services/media/sharp-runtime.js';
import { mediaTypeFromName } from '../../src/protocol/media-types.js';
import { isDecodableImageType, sniffMediaType } from '../../src/services/media/sniff-media-type.js';
import { ftyp } from './crafted-files.js';

const bytes = (...values: number[]) => Buffer.from(values);
const text = (value: string) => Buffer.from(value, 'latin1');

describe('sniffMediaType', () => {
  it.each([
    ['image/jpeg', bytes(0xff, 0xd8, 0xff, 0xe1, 0, 0)],
    ['image/png', bytes(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13)],
    ['image/gif', text('GIF89a\x01\x00')],
    ['image/gif', text('GIF87a\x01\x00')],
    ['image/webp', text('RIFF\x10\x00\x00\x00WEBPVP8 ')],
    ['image/tiff', text('II*\x00\x08\x00\x00\x00')],
    ['image/tiff', text('MM\x00*\x00\x00\x00\x08')],
    ['image/tiff', text('II+\x00\x08\x00\x00\x00')], // BigTIFF
    ['image/avif', ftyp('avif', ['avif', 'mif1', 'miaf'])],
    ['image/avif', ftyp('avis', ['avis', 'msf1'])],
    ['image/avif', ftyp('mif1', ['mif1', 'avif'])],
    ['image/heic', ftyp('heic', ['mif1', 'heic'])],
    ['image/heic', ftyp('heix', ['mif1', 'heix'])],
    ['image/heic', ftyp('mif1', ['mif1', 'heic'])],
    ['image/heic', ftyp('msf1', ['msf1'])],
    ['video/mp4', ftyp('isom', ['isom', 'iso2', 'avc1', 'mp41'])],
    ['video/mp4', ftyp('mp42', ['mp42', 'isom'])],
    ['video/quicktime', ftyp('qt  ', ['qt  '])],
    ['video/mp4', ftyp('zzzz', ['zzzz', 'mp42'])], // unknown major brand, known compatible one
    ['video/quicktime', text('\x00\x00\x00\x08wide\x00\x00\x10\x00mdat')], // QuickTime before ftyp existed
    ['video/quicktime', text('\x00\x00\x0f\x00moov\x00\x00\x00\x6cmvhd')],
    ['image/x-canon-cr3', ftyp('crx ', ['crx ', 'isom'])],
    ['image/x-fujifilm-raf', text('FUJIFILMCCD-RAW 0201FF383501')],
    ['image/x-panasonic-rw2', text('IIU\x00\x18\x00\x00\x00')],
    ['image/x-olympus-orf', text('IIRO\x08\x00\x00\x00')],
  ])('recognises %s', (expected, head) => {
    expect(sniffMediaType(head)).toBe(expected);
  });

  it('returns null for anything else', () => {
    expect(sniffMediaType(Buffer.alloc(0))).toBeNull();
    expect(sniffMediaType(bytes(0xff, 0xd8))).toBeNull(); // too short to be sure
    expect(sniffMediaType(text('<svg xmlns="http://www.w3.org/2000/svg"/>'))).toBeNull();
    expect(sniffMediaType(text('%PDF-1.7\n'))).toBeNull();
    expect(sniffMediaType(text('RIFF\x10\x00\x00\x00WAVEfmt '))).toBeNull();
    expect(sniffMediaType(ftyp('zzzz', ['yyyy']))).toBeNull();
    const random = randomBytes(256);
    random[0] = 0;
    random[4] = 0;
    expect(sniffMediaType(random)).toBeNull();
  });

  it('accepts any Uint8Array view, including one into a larger buffer', () => {
    const backing = Buffer.concat([Buffer.alloc(10, 7), bytes(0xff, 0xd8, 0xff, 0xdb)]);
    expect(sniffMediaType(new Uint8Array(backing.buffer, backing.byteOffset + 10, 4))).toBe('image/jpeg');
  });

  it('decides which types are decoded', () => {
    for (const type of ['image/jpeg', 'image/png', 'image/webp', 'image/gif', 'image/tiff', 'image/avif']) {
      expect(isDecodableImageType(type)).toBe(true);
    }
    for (const type of ['image/heic', 'video/mp4', 'video/quicktime', 'image/x-canon-cr3', null]) expect(isDecodableImageType(type)).toBe(false);
  });
});

describe('mediaTypeFromName', () => {
  it('maps extensions, case-insensitively, ignoring directories', () => {
    expect(mediaTypeFromName('IMG_0001.JPG')).toBe('image/jpeg');
    expect(mediaTypeFromName('holiday/beach.jpeg')).toBe('image/jpeg');
    expect(mediaTypeFromName('scan.tif')).toBe('image/tiff');
    expect(mediaTypeFromName('IMG_0002.HEIC')).toBe('image/heic');
    expect(mediaTypeFromName('clip.MOV')).toBe('video/quicktime');
    expect(mediaTypeFromName('clip.mp4')).toBe('video/mp4');
    expect(mediaTypeFromName('a.b\\photo.png')).toBe('image/png');
  });

  it('returns null without a known extension', () => {
    expect(mediaTypeFromName('README')).toBeNull();
    expect(mediaTypeFromName('photo.')).toBeNull();
    expect(mediaTypeFromName('archive.tar.gz')).toBeNull();
    expect(mediaTypeFromName('folder.jpg/file')).toBeNull();
  });
});

describe('perceptual hash encoding', () => {
  it('counts differing bits across the whole 64-bit range', () => {
    expect(hammingDistance(0n, 0n)).toBe(0);
    expect(hammingDistance(0n, -1n)).toBe(64);
    expect(hammingDistance(0b1011n, 0n)).toBe(3);
    expect(hammingDistance(0x8000000000000000n, 0n)).toBe(1);
    expect(hammingDistance(-0x8000000000000000n, 0n)).toBe(1); // the same bit, read signed
    expect(hammingDistance(0xffffffff00000000n, 0x00000000ffffffffn)).toBe(64);
    expect(hammingDistance(0x0123456789abcdefn, 0x0123456789abcdefn)).toBe(0);
    expect(hammingDistance(0x0123456789abcdefn, 0x0123456789abcdeen)).toBe(1);
  });

  it('treats signed and unsigned forms of the same bits as equal', () => {
    const unsigned = 0xfedcba9876543210n;
    const signed = BigInt.asIntN(64, unsigned);
    expect(signed).toBeLessThan(0n);
    expect(hammingDistance(unsigned, signed)).toBe(0);
  });

  it('stores a signed 64-bit value (PostgreSQL bigint) and the unsigned hex of the same bits', () => {
    const high = perceptualHashFromBits(0xfedcba9876543210n);
    expect(high).toEqual({ value: -0x0123456789abcdf0n, hex: 'fedcba9876543210' });
    expect(high.value).toBeGreaterThanOrEqual(-(2n ** 63n));
    const low = perceptualHashFromBits(0x1fn);
    expect(low).toEqual({ value: 31n, hex: '000000000000001f' });
    expect(perceptualHashFromHex('FEDCBA9876543210')).toEqual(high);
    expect(perceptualHashFromHex('xyz')).toBeNull();
    expect(perceptualHashFromHex('0'.repeat(17))).toBeNull();
  });

  it('sets a bit where the left pixel is brighter, first comparison most significant', () => {
    // Row 0 falls left to right (all 8 bits set), every other row rises (no bits set).
    const grey = new Uint8Array(9 * 8);
    for (let row = 0; row < 8; row++) {
      for (let column = 0; column < 9; column++) grey[row * 9 + column] = row === 0 ? 200 - column * 10 : column * 10;
    }
    expect(dHashFromGrey(grey).hex).toBe('ff00000000000000');
    // Equal neighbours give 0 bits; a stride skips the other channels.
    const flatWithAlpha = new Uint8Array(9 * 8 * 2).fill(128);
    expect(dHashFromGrey(flatWithAlpha, 2).value).toBe(0n);
  });
});

describe('classifySharpError', () => {
  // Messages as sharp 0.35 / libvips 8.18 word them (observed, or from sharp's src/common.cc).
  it.each([
    ['Input image exceeds pixel limit', 'too_large'],
    ['Input buffer contains unsupported image format', 'unsupported'],
    ['Input file contains unsupported image format', 'unsupported'],
    ['timeout: 37% complete', 'timeout'],
    ['Input file is missing: /data/blobs/objects/ab/cd', 'read_error'],
    ['VipsJpeg: premature end of JPEG image', 'corrupt'],
    ['Input buffer has corrupt header: VipsJpeg: Bogus DQT index 7', 'corrupt'],
  ])('%s → %s', (message, reason) => {
    expect(classifySharpError(new Error(message), 'image/jpeg')).toMatchObject({ ok: false, reason, mediaType: 'image/jpeg' });
  });

  it('keeps one copy of a warning libvips repeats per scanline', () => {
    const failure = classifySharpError(new Error('VipsJpeg: Bogus DQT index 7\nVipsJpeg: Bogus DQT index 7\nVipsJpeg: Bogus DQT index 7\n'), null);
    expect(failure.message).toBe('VipsJpeg: Bogus DQT index 7');
  });
});
