/**
 * A process-wide limit on the file bytes held in memory by chunks on their way: each chunk takes
 * its length from the budget before it is read and gives it back once the server answered. Shared
 * by every upload of a client (the command-line tool's files in flight and each one's parallel
 * chunks), it keeps memory flat however many files and workers there are. Waiters are served in
 * order; a chunk larger than the whole budget waits for all of it.
 */
export class ByteBudget {
  private free: number;
  private readonly waiting: { bytes: number; resolve: () => void }[] = [];

  constructor(readonly total: number) {
    if (!Number.isSafeInteger(total) || total < 1) throw new RangeError('a byte budget must be a whole number above 0');
    this.free = total;
  }

  /** The largest chunk worth planning within this budget: a quarter, so several can be in flight. */
  get chunkCap(): number {
    return Math.max(1, Math.floor(this.total / 4));
  }

  /** Resolves with the release once `bytes` (at most the whole budget) are free. */
  async take(bytes: number): Promise<() => void> {
    const wanted = Math.min(bytes, this.total);
    if (this.waiting.length === 0 && this.free >= wanted) this.free -= wanted;
    else await new Promise<void>((resolve) => this.waiting.push({ bytes: wanted, resolve }));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.free += wanted;
      this.serve();
    };
  }

  /** Bytes taken now (for tests and progress displays). */
  get inUse(): number {
    return this.total - this.free;
  }

  private serve(): void {
    while (this.waiting.length > 0 && this.free >= this.waiting[0]!.bytes) {
      const next = this.waiting.shift()!;
      this.free -= next.bytes;
      next.resolve();
    }
  }
}
