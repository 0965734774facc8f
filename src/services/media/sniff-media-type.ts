/**
 * What a file is, from its first bytes. Names and client-declared content types lie
 * (or are missing); magic numbers decide whether libvips is even attempted, so a
 * 256 MiB random file or an SVG renamed `.jpg` never reaches a decoder.
 */

/** How many leading bytes `sniffMediaType` looks at; reading more never changes the answer. */
export const SNIFF_BYTES = 256;

/** Types the media module decodes with the bundled libvips (see `isDecodableImageType`). */
const DECODABLE_IMAGE_TYPES: ReadonlySet<string> = new Set([
  'image/jpeg',
  'image/png',
  'image/webp',
  'image/gif',
  'image/tiff',
  'image/avif',
]);

/**
 * Whether sharp (`deriveImages`) decodes this type. HEIC is not among them: sharp's prebuilt
 * libvips has libheif with the AV1 decoder only (no HEVC, for patent reasons), so HEIC goes to
 * libheif's WebAssembly build instead (heic.ts); RAW and video have their own ways (process-media.ts).
 */
export function isDecodableImageType(mediaType: string | null): boolean {
  return mediaType !== null && DECODABLE_IMAGE_TYPES.has(mediaType);
}

/** Camera RAW formats recognised from their own signature (the TIFF-based ones sniff as image/tiff). */
export function isRawImageType(mediaType: string): boolean {
  return mediaType.startsWith('image/x-');
}

export function isVideoType(mediaType: string): boolean {
  return mediaType.startsWith('video/');
}

// ISO-BMFF `ftyp` brands. HEIF's generic brands (mif1/msf1) say "some HEIF": the
// compatible brands then tell AVIF from HEIC; without a hint we say HEIC, the common case.
const AVIF_BRANDS = new Set(['avif', 'avis']);
const HEIC_BRANDS = new Set(['heic', 'heix', 'heim', 'heis', 'hevc', 'hevx', 'hevm', 'hevs']);
const HEIF_GENERIC_BRANDS = new Set(['mif1', 'msf1']);
const QUICKTIME_BRANDS = new Set(['qt  ']);
const MP4_BRANDS = new Set([
  'isom', 'iso2', 'iso3', 'iso4', 'iso5', 'iso6', 'iso8', 'iso9', 'mp41', 'mp42', 'mp71', 'avc1',
  'dash', 'M4V ', 'M4VH', 'M4VP', 'MSNV', 'XAVC', 'mmp4', 'f4v ', '3gp4', '3gp5', '3gp6', '3g2a',
]);

/** The MIME type the leading bytes announce, or null when they match nothing we know. */
export function sniffMediaType(head: Uint8Array): string | null {
  const b = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'image/jpeg';
  if (b.length >= 8 && b.readUInt32BE(0) === 0x89504e47 && b.readUInt32BE(4) === 0x0d0a1a0a) return 'image/png';
  if (b.length >= 6 && (ascii(b, 0, 6) === 'GIF87a' || ascii(b, 0, 6) === 'GIF89a')) return 'image/gif';
  if (b.length >= 12 && ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 12) === 'WEBP') return 'image/webp';
  // RAW formats with signatures of their own: Fujifilm RAF, Panasonic RW2, Olympus ORF.
  if (b.length >= 15 && ascii(b, 0, 15) === 'FUJIFILMCCD-RAW') return 'image/x-fujifilm-raf';
  if (b.length >= 4 && ascii(b, 0, 4) === 'IIU\0') return 'image/x-panasonic-rw2';
  if (b.length >= 4 && ['IIRO', 'IIRS', 'MMOR'].includes(ascii(b, 0, 4))) return 'image/x-olympus-orf';
  if (b.length >= 4) {
    // Classic TIFF (42) and BigTIFF (43), either byte order. Camera RAW files built on
    // TIFF (NEF, DNG, ARW, CR2) land here too; libvips then reads their first IFD.
    const magic = ascii(b, 0, 2);
    const version = magic === 'II' ? b.readUInt16LE(2) : magic === 'MM' ? b.readUInt16BE(2) : 0;
    if (version === 42 || version === 43) return 'image/tiff';
  }
  return sniffIsoBmff(b);
}

/** Boxes an old QuickTime movie (before ftyp existed) starts with. */
const QUICKTIME_FIRST_BOXES = new Set(['moov', 'mdat', 'wide', 'pnot']);

function sniffIsoBmff(b: Buffer): string | null {
  if (b.length >= 8 && QUICKTIME_FIRST_BOXES.has(ascii(b, 4, 8))) return 'video/quicktime';
  if (b.length < 12 || ascii(b, 4, 8) !== 'ftyp') return null;
  const major = ascii(b, 8, 12);
  // The box size bounds the compatible-brand list; a lying size is clamped to what we have.
  const boxEnd = Math.min(b.readUInt32BE(0), b.length);
  const compatible: string[] = [];
  for (let at = 16; at + 4 <= boxEnd; at += 4) compatible.push(ascii(b, at, at + 4));

  if (AVIF_BRANDS.has(major)) return 'image/avif';
  if (major === 'crx ') return 'image/x-canon-cr3';
  if (HEIC_BRANDS.has(major)) return 'image/heic';
  if (HEIF_GENERIC_BRANDS.has(major)) {
    return compatible.some((brand) => AVIF_BRANDS.has(brand)) ? 'image/avif' : 'image/heic';
  }
  if (QUICKTIME_BRANDS.has(major)) return 'video/quicktime';
  if (MP4_BRANDS.has(major)) return 'video/mp4';
  // An unusual major brand with a well-known compatible one (e.g. vendor brands on phones).
  if (compatible.some((brand) => QUICKTIME_BRANDS.has(brand))) return 'video/quicktime';
  if (compatible.some((brand) => MP4_BRANDS.has(brand))) return 'video/mp4';
  return null;
}

function ascii(b: Buffer, start: number, end: number): string {
  return b.toString('latin1', start, end);
}
