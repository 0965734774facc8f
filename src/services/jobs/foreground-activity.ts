/**
 * Uploads receiving bytes in this process, so that background work sharing its cores can give
 * way to them: a photo's bytes being made safe matters more than its thumbnail, which follows
 * once the uploads pause. Background work waits for a quiet moment, but never longer than
 * `maxWaitMs`, so a backup that runs for hours still gets thumbnails along the way.
 */
export class ForegroundActivity {
  private inFlight = 0;
  private lastEnd = 0;

  /** An upload starts receiving bytes; call the returned function when it has finished. */
  begin(): () => void {
    this.inFlight++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.inFlight--;
      this.lastEnd = Date.now();
    };
  }

  /** Whether nothing has been received for `quietMs`. */
  isQuiet(quietMs: number): boolean {
    return this.inFlight === 0 && Date.now() - this.lastEnd >= quietMs;
  }

  /** Resolves once nothing has been received for `quietMs`, or after `maxWaitMs` at the latest. */
  async quiet(quietMs: number, maxWaitMs: number, signal?: AbortSignal): Promise<void> {
    const deadline = Date.now() + maxWaitMs;
    while (!this.isQuiet(quietMs) && Date.now() < deadline && !signal?.aborted) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(100, Math.max(1, deadline - Date.now()))));
    }
  }
}
