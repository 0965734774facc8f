import type { Logger } from '../logger.js';
import type { BlobService } from './blobs.js';
import type { LibraryService } from './library/library-service.js';
import type { UploadService } from './uploads/upload-service.js';

/** The usage counters are checked against the assets this often (and on the first pass after start-up). */
const USAGE_CHECK_MS = 24 * 3600 * 1000;

/**
 * Background sweeps every instance runs on a timer: idle upload sessions (with their
 * staged bytes) and unreferenced blobs past their grace period, each claiming its rows with
 * FOR UPDATE SKIP LOCKED so instances never step on each other and no job server is needed;
 * and once a day (and on the first pass after start-up) the usage counters checked against
 * the assets: one aggregate read, then a repair under the user-row lock for any that differ.
 */
export class Housekeeping {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  /** performance.now() of the last usage check; undefined: not yet since start-up. */
  private usageCheckedAt?: number;

  constructor(
    private readonly deps: {
      uploads: UploadService;
      blobs: BlobService;
      library: LibraryService;
      intervalSeconds: number;
      log: Logger;
    },
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.runOnce(), this.deps.intervalSeconds * 1000);
    this.timer.unref();
  }

  /** One pass of every sweep, draining each in batches. */
  runOnce(): Promise<void> {
    this.running ??= (async () => {
      // Each sweep on its own: one that fails must not hold up the other.
      const sweep = async (name: string, once: () => Promise<number>) => {
        try {
          while ((await once()) > 0);
        } catch (error) {
          this.deps.log.error(`housekeeping: ${name} failed (will retry)`, error);
        }
      };
      try {
        await sweep('expiring idle upload sessions', () => this.deps.uploads.expireIdleSessions());
        await sweep('collecting unreferenced blobs', () => this.deps.blobs.collectGarbage());
        if (this.usageCheckedAt === undefined || performance.now() - this.usageCheckedAt >= USAGE_CHECK_MS) {
          await sweep('checking usage counters', () => this.checkUsage());
        }
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  /** Every user's used_bytes against their assets; a wrong counter is repaired and reported (it means a bug). */
  private async checkUsage(): Promise<number> {
    const started = performance.now();
    const corrected = await this.deps.library.recomputeUsedBytes();
    // Only a check that went through counts: a failed one is tried again at the next pass.
    this.usageCheckedAt = started;
    for (const { userId, was, now } of corrected) {
      this.deps.log.error(`housekeeping: user ${userId} had used_bytes ${was}, their assets hold ${now}; repaired`);
    }
    return 0;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}
