import { Worker } from 'node:worker_threads';

interface Pending {
  worker: Worker;
  resolve(result: unknown): void;
  reject(error: Error): void;
}

/**
 * The filesystem store's SHA-256 work on a thread of its own (digest-worker.mjs): checking a
 * written chunk against its digest and keeping each upload's running whole-file hash. Both
 * read what is on disk (the page cache), so the request thread only moves bytes from the
 * socket to the file, and hashing runs on another core meanwhile. Started on first use;
 * if the thread dies, requests in flight fail and the next one starts a new thread (running
 * hashes are lost with it, and assembly then hashes the whole file — see `finish`).
 */
export class DigestWorker {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private closed = false;

  /**
   * SHA-256 (hex) of bytes `[from, to)` of a file, and how many of them there were. `source` is
   * a path, or a descriptor of this process that stays open until the promise settles.
   */
  range(source: string | number, from: number, to: number): Promise<{ sha256: string; read: number }> {
    return this.request('range', { ...(typeof source === 'number' ? { fd: source } : { file: source }), from, to });
  }

  /**
   * Like `range` over `[0, to)` of the descriptor `fd`, and the same pass becomes the running hash
   * of `key` at `to` (see FsBlobStore's head chunk): one read and one hash instead of two.
   */
  head(key: string, fd: number, to: number): Promise<{ sha256: string; read: number }> {
    return this.request('head', { key, fd, to });
  }

  /** Continues the running hash of `key` over `[from, to)` of `file`; `from` must be where it stopped (0 to begin). */
  fold(key: string, file: string, from: number, to: number): Promise<{ hashedTo: number }> {
    return this.request('fold', { key, file, from, to });
  }

  /**
   * The SHA-256 of `[0, to)` of `file`, continuing the running hash of `key` from `from`
   * (0: from scratch), and the bytes there were; the running hash is forgotten either way.
   * If the running hash is not at `from` (its thread was restarted), it starts from scratch.
   */
  async finish(key: string, file: string, from: number, to: number): Promise<{ sha256: string; read: number }> {
    try {
      return await this.request('finish', { key, file, from, to });
    } catch (error) {
      if (from === 0) throw error;
      return this.request('finish', { key, file, from: 0, to });
    }
  }

  /** Forgets the running hash of `key` (nothing to wait for). */
  drop(key: string): void {
    if (this.worker) this.request('drop', { key }).catch(() => {});
  }

  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    this.worker = undefined;
    await worker?.terminate();
  }

  private request<T>(op: string, args: Record<string, unknown>): Promise<T> {
    if (this.closed) return Promise.reject(new Error('The blob store is closed'));
    const worker = this.start();
    const id = ++this.nextId;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { worker, resolve: resolve as (result: unknown) => void, reject });
      worker.ref(); // requests in flight keep the process alive, an idle thread does not
      worker.postMessage({ id, op, ...args });
    });
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    // No inherited loaders (`--import tsx`): the worker is plain JavaScript and starts faster without.
    const worker = new Worker(new URL('./digest-worker.mjs', import.meta.url), { execArgv: [] });
    worker.unref();
    worker.on('message', ({ id, result, error }: { id: number; result?: unknown; error?: { message: string; code?: string } }) => {
      const pending = this.pending.get(id);
      if (!pending) return;
      this.pending.delete(id);
      if (![...this.pending.values()].some((p) => p.worker === worker)) worker.unref();
      if (error) pending.reject(Object.assign(new Error(error.message), error.code ? { code: error.code } : {}));
      else pending.resolve(result);
    });
    const fail = (error: Error) => {
      if (this.worker === worker) this.worker = undefined;
      for (const [id, pending] of this.pending) {
        if (pending.worker !== worker) continue;
        this.pending.delete(id);
        pending.reject(error);
      }
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`The digest thread stopped (exit code ${code})`)));
    this.worker = worker;
    return worker;
  }
}
