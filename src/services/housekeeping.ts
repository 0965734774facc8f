import type { BlobService } from './blobs.js';
import type { UploadService } from './uploads/upload-service.js';

/**
 * Background sweeps every instance runs on a timer: idle upload sessions (with their
 * staged bytes) and unreferenced blobs past their grace period. Each sweep claims its
 * rows with FOR UPDATE SKIP LOCKED, so instances never step on each other and no
 * separate job server is needed.
 */
export class Housekeeping {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;

  constructor(
    private readonly deps: {
      uploads: UploadService;
      blobs: BlobService;
      intervalSeconds: number;
      log: { error(message: string, error?: unknown): void };
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
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}
