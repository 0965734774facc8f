import type { Config, UserLevel } from '../../config.js';
import { AppError } from '../app-error.js';

/**
 * Upload space (S5): the one place that decides whether a file fits a user's library. The check
 * asks it with the usage it read (to refuse early what cannot fit), adding an asset asks it with
 * the usage read under the user-row lock (the exact answer, which also says how much to evict).
 */
export type QuotaVerdict =
  /** It fits as things stand. */
  | { fits: true }
  /** It fits once the user's oldest assets are removed (policy `evict-oldest`): at least `freeBytes` must go. */
  | { fits: false; freeBytes: number }
  /** Refused: too large for the quota at all, or no room under policy `refuse`. */
  | { fits: false; error: AppError };

export class Quota {
  constructor(private readonly config: Pick<Config, 'levels' | 'uploads'>) {}

  /** The user's upload space in bytes. */
  bytesFor(level: UserLevel): number {
    return this.config.levels[level].quotaBytes;
  }

  decide(level: UserLevel, usedBytes: number, size: number): QuotaVerdict {
    const quota = this.bytesFor(level);
    if (usedBytes + size <= quota) return { fits: true };
    if (size > quota || this.config.uploads.quotaPolicy === 'refuse') return { fits: false, error: quotaExceeded(usedBytes, quota, size) };
    return { fits: false, freeBytes: usedBytes + size - quota };
  }

  /**
   * Whether deciding needs the user's usage at all: without it a file can only be refused for being
   * larger than the whole quota, and under `evict-oldest` nothing else is refused.
   */
  needsUsage(level: UserLevel, size: number): boolean {
    return this.config.uploads.quotaPolicy === 'refuse' || size > this.bytesFor(level);
  }
}

/** QUOTA_EXCEEDED with the numbers a client shows: what is used, the quota, what the file needs. */
export function quotaExceeded(usedBytes: number, quotaBytes: number, neededBytes: number): AppError {
  return new AppError('QUOTA_EXCEEDED', `Not enough space: ${neededBytes} bytes needed, ${Math.max(quotaBytes - usedBytes, 0)} of ${quotaBytes} free`, { usedBytes, quotaBytes, neededBytes });
}
