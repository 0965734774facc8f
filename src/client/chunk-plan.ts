import type { ByteRange } from '../protocol/byte-ranges.js';

/** How a file's missing ranges are cut into chunks, and how big those are (U5). */

/**
 * The chunk size a transfer starts with: the caller's choice (8 MiB by default). A large file
 * gets chunks of at most a quarter of one worker's share, so that the received front keeps
 * moving (the server hashes the file as its front arrives in order, and no chunk should lag far
 * behind the others at the end); this never goes below 8 MiB, because every chunk costs a
 * request and its bookkeeping, and a photo of a few megabytes is best sent whole.
 */
const SPREAD_FLOOR = 8 * 2 ** 20;

/** A quarter of one worker's share of the file, in 256 KiB steps. */
export function spreadChunkBytes(size: number, parallel = 4): number {
  return Math.ceil(size / (Math.max(1, parallel) * 4) / 262_144) * 262_144;
}

export function plannedChunkBytes(size: number, options: { initialChunkBytes?: number; parallel?: number } = {}): number {
  return Math.min(options.initialChunkBytes ?? SPREAD_FLOOR, Math.max(SPREAD_FLOOR, spreadChunkBytes(size, options.parallel)));
}

/**
 * Picks chunk sizes from the measured transfer rate (U5): each chunk should take
 * about `targetSeconds`, within the server's limits, so slow links send small chunks
 * (little lost on an interruption) and fast ones large chunks (few round trips).
 * The size moves only when the ideal one is more than twice or less than half of it: small
 * swings of the rate do not matter, and chunks keep the size their digests were worked
 * out for ahead of time.
 */
export class ChunkSizer {
  private rate?: number;
  constructor(
    private readonly limits: { minChunkBytes: number; maxChunkBytes: number },
    private size: number,
    private readonly targetSeconds: number,
  ) {
    this.size = clamp(size, limits.minChunkBytes, limits.maxChunkBytes);
  }

  next(): number {
    return this.size;
  }

  record(bytes: number, seconds: number): void {
    if (seconds <= 0 || bytes < this.limits.minChunkBytes) return;
    const rate = bytes / seconds;
    this.rate = this.rate === undefined ? rate : this.rate * 0.6 + rate * 0.4;
    const unit = 256 * 1024;
    const ideal = clamp(Math.round((this.rate * this.targetSeconds) / unit) * unit, this.limits.minChunkBytes, this.limits.maxChunkBytes);
    if (ideal > 2 * this.size || ideal * 2 < this.size) this.size = ideal;
  }
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(Math.max(value, min), max);
}

/** Splits the missing ranges into chunks sized by the sizer, handed out one at a time. */
export function* plan(missing: ByteRange[], sizer: ChunkSizer): Generator<ByteRange> {
  for (const gap of missing) {
    let offset = gap.offset;
    const end = gap.offset + gap.length;
    while (offset < end) {
      const length = Math.min(sizer.next(), end - offset);
      yield { offset, length };
      offset += length;
    }
  }
}
