import type { Sharp } from 'sharp';

/**
 * 64-bit difference hash (dHash): finds the same photo re-encoded, resized or lightly
 * edited (U1, near-duplicates) by Hamming distance. It never replaces the exact SHA-256.
 * One recipe for the server (every image it stores) and a client (that sends it with a check).
 *
 * Recipe: flatten transparency onto white, greyscale, resize to 9×8 ignoring the aspect
 * ratio, then for each of the 8 rows compare the 8 adjacent pairs: bit = 1 when the left
 * pixel is brighter than its right neighbour (ties are 0).
 *
 * Encoding: row-major, the first comparison (row 0, columns 0/1) is the most significant
 * bit. `hex` is those 64 bits as 16 lowercase hex digits, unsigned; `value` is the same
 * bits read as a signed two's-complement 64-bit integer, so it fits PostgreSQL `bigint`
 * (hashes with the top bit set are negative). Both forms carry identical bits and
 * `hammingDistance` accepts either signedness.
 */
export interface PerceptualHash {
  value: bigint;
  hex: string;
}

const COLUMNS = 9;
const ROWS = 8;

/** The recipe on an image already decoded and turned upright (a sharp pipeline over it); `hasAlpha`: it has transparency. */
export async function dHashOf(image: Sharp, hasAlpha: boolean): Promise<PerceptualHash> {
  // Transparent pixels carry arbitrary colour (often black); what a viewer sees is the
  // image over a light background.
  const pipeline = hasAlpha ? image.flatten({ background: '#ffffff' }) : image;
  const { data, info } = await pipeline
    .greyscale()
    .resize(COLUMNS, ROWS, { fit: 'fill' })
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  return dHashFromGrey(data, info.channels);
}

/** dHash bits from 9×8 greyscale samples (`stride` bytes per pixel, first byte used). */
export function dHashFromGrey(samples: Uint8Array, stride = 1): PerceptualHash {
  if (samples.length < COLUMNS * ROWS * stride) throw new Error(`dHash needs ${COLUMNS}×${ROWS} samples`);
  let bits = 0n;
  for (let row = 0; row < ROWS; row++) {
    for (let column = 0; column < COLUMNS - 1; column++) {
      const left = samples[(row * COLUMNS + column) * stride]!;
      const right = samples[(row * COLUMNS + column + 1) * stride]!;
      bits = (bits << 1n) | (left > right ? 1n : 0n);
    }
  }
  return perceptualHashFromBits(bits);
}

/** Normalises any 64-bit pattern (signed or unsigned bigint) to both encodings. */
export function perceptualHashFromBits(bits: bigint): PerceptualHash {
  const unsigned = BigInt.asUintN(64, bits);
  return { value: BigInt.asIntN(64, unsigned), hex: unsigned.toString(16).padStart(16, '0') };
}

/** Parses the 16-hex-digit form (e.g. a hash a client computed); null when malformed. */
export function perceptualHashFromHex(hex: string): PerceptualHash | null {
  if (!/^[0-9a-fA-F]{16}$/.test(hex)) return null;
  return perceptualHashFromBits(BigInt(`0x${hex}`));
}

/** Number of differing bits between two 64-bit hashes (0 = same, 64 = opposite). */
export function hammingDistance(a: bigint, b: bigint): number {
  const x = BigInt.asUintN(64, a ^ b);
  // Two 32-bit halves, each counted with the usual SWAR popcount: no bigint loop per bit.
  return popcount32(Number(x & 0xffffffffn)) + popcount32(Number(x >> 32n));
}

function popcount32(n: number): number {
  n = n - ((n >>> 1) & 0x55555555);
  n = (n & 0x33333333) + ((n >>> 2) & 0x33333333);
  return Math.imul((n + (n >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24; // imul: a plain * would lose bits past 2^53
}
