import type { ChunkWriter } from './fs-files.js';

/** What this process knows of one upload's staging file. */
export interface Staging {
  writers: Set<ChunkWriter>;
  /** Bytes `[0, frozenTo)` are folded, or being folded, into the running hash: no writer may touch them. */
  frozenTo: number;
  /** The digest thread's running hash covers the staged bytes `[0, hashedTo)`. */
  hashedTo: number;
  /** The folds queued so far, one after another. */
  folding: Promise<void>;
  /** A fold failed or staging was dropped: assembly must not use the running hash. */
  broken: boolean;
  /**
   * The chunk at offset 0 whose digest pass also started the running hash (up to `to`): usable
   * once it was counted (noteReceived) if no other writer has touched `[0, to)` since — a writer
   * starting there drops it. `ready` once its digest matched.
   */
  head?: { to: number; ready: boolean };
}

/**
 * What the filesystem store knows about each upload's staging file: the chunk writes in
 * progress and the running whole-file SHA-256 (see FsBlobStore.noteReceived). A write holds an
 * open handle on the staging file's inode, and assembly renames that very inode to the content
 * address, so assembly first seals these writers: they may not write another byte after the
 * hash is taken. (The fs driver serves one process — one data directory — so this in-memory
 * registry sees every writer.)
 */
export class StagingRegistry {
  private readonly uploads = new Map<string, Staging>();

  get(uploadId: string): Staging | undefined {
    return this.uploads.get(uploadId);
  }

  /** The upload's state, made on first use. */
  open(uploadId: string): Staging {
    let state = this.uploads.get(uploadId);
    if (!state) {
      state = { writers: new Set(), frozenTo: 0, hashedTo: 0, folding: Promise.resolve(), broken: false };
      this.uploads.set(uploadId, state);
    }
    return state;
  }

  /** Nothing written and nothing folded: nothing worth remembering. */
  forgetIfIdle(uploadId: string, state: Staging): void {
    if (state.writers.size === 0 && state.frozenTo === 0 && !state.head) this.forget(uploadId, state);
  }

  /** Forgets this state of the upload (not a newer one made since). */
  forget(uploadId: string, state: Staging): void {
    if (this.uploads.get(uploadId) === state) this.uploads.delete(uploadId);
  }

  /** Stops every in-flight chunk write of the upload and waits for its current write call. */
  async sealWriters(uploadId: string): Promise<void> {
    const writers = [...(this.uploads.get(uploadId)?.writers ?? [])];
    for (const writer of writers) writer.sealed = true;
    await Promise.allSettled(writers.map((writer) => writer.writing));
  }
}
