import sharp from 'sharp';
import { dHashOf } from '../protocol/perceptual-hash.js';

/** Images larger than this are not decoded for their perceptual hash (sharp's own default limit). */
const MAX_PIXELS = 268_402_689;

/**
 * The perceptual hash (U1: a 64-bit dHash, 16 hex digits) of an image file or its bytes, turned
 * upright first, with the server's recipe (protocol/perceptual-hash.ts); null when this machine
 * cannot decode it (a format sharp does not read, a damaged file). It finds near-duplicates; the
 * SHA-256 stays the file's identity.
 */
export async function perceptualHashOf(input: string | Buffer): Promise<string | null> {
  try {
    const image = sharp(input, { failOn: 'none', limitInputPixels: MAX_PIXELS }).rotate();
    const { hasAlpha } = await image.metadata();
    return (await dHashOf(image, hasAlpha === true)).hex;
  } catch {
    return null;
  }
}
