/**
 * A subscription's messages at a bounded rate: a change marks the stream dirty, and the next
 * message — made when it is sent, from the state as it is then — goes out at once or when the
 * interval since the previous one has passed. Bursts fold into one message; the last change is
 * always sent; a slow consumer holds one pending message, never a queue.
 */
export class LiveStream<M> implements AsyncIterableIterator<M> {
  private dirty = true;
  private lastSent = Number.NEGATIVE_INFINITY;
  private wake: (() => void) | undefined;
  private closed = false;
  private failure: unknown;

  constructor(
    private readonly minIntervalMs: number,
    private readonly produce: () => M,
    private readonly onClose: () => void,
  ) {}

  /** Something changed: a message will follow. */
  changed(): void {
    this.dirty = true;
    this.wake?.();
  }

  /** Ends the stream with an error (its consumer sees it on the next message). */
  fail(error: unknown): void {
    this.failure = error;
    this.wake?.();
  }

  async next(): Promise<IteratorResult<M>> {
    for (;;) {
      if (this.closed) return { value: undefined, done: true };
      if (this.failure !== undefined) {
        const error = this.failure;
        await this.return();
        throw error;
      }
      const wait = this.dirty ? this.lastSent + this.minIntervalMs - performance.now() : Number.POSITIVE_INFINITY;
      if (wait <= 0) {
        this.dirty = false;
        this.lastSent = performance.now();
        return { value: this.produce(), done: false };
      }
      await new Promise<void>((resolve) => {
        const timer = Number.isFinite(wait) ? setTimeout(resolve, wait) : undefined;
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  async return(): Promise<IteratorResult<M>> {
    if (!this.closed) {
      this.closed = true;
      this.wake?.();
      this.onClose();
    }
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
