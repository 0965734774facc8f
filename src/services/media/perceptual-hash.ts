import { dHashOf, type PerceptualHash } from '../../protocol/perceptual-hash.js';
import { fromRawPixels, type RawPixels } from './sharp-runtime.js';

export type { PerceptualHash } from '../../protocol/perceptual-hash.js';

/** The dHash (protocol/perceptual-hash.ts) of already-decoded, upright pixels. */
export function computeDHash(pixels: RawPixels): Promise<PerceptualHash> {
  return dHashOf(fromRawPixels(pixels), pixels.channels === 2 || pixels.channels === 4);
}
