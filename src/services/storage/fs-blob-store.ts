import { createHash, randomUUID } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { access, mkdir, open, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { assertValidBlobKey, assertValidChunk, assertValidSha256, assertValidUploadId, assertWellFormedRange, type AssembleOptions, type BlobStat, type BlobStore, type InclusiveRange, type FsBlobStoreSettings, type SignedUrlOptions, type WriteStagedChunkOptions } from './blob-store.js';
import { ChunkVerifier, chunkDigestMismatch } from './chunk-verifier.js';
import { coveredPrefix, type ByteRange } from '../../protocol/byte-ranges.js';
import { DigestWorker } from './digest-worker.js';
import { type ChunkWriter, digestFailed, digestMismatch, hasCode, isMissing, notFound, openForRead, pathConflict, pathExists, stagingNotFound, storageError, syncDirectory, writeAt, writeRefused } from './fs-files.js';
import { StagingRegistry } from './fs-staging-registry.js';
import { signBlobUrl } from './signed-url.js';
import { planAssembly } from './staged-chunks.js';

/**
 * Blobs as files under one root:
 *   objects/<key>       the blobs (keys may contain `/`, which become directories)
 *   staging/<uploadId>  one file per upload; chunks are written at their offset
 *   tmp/                whole-object writes in progress, renamed into objects/ when done
 * All three live on one filesystem so every `rename` is atomic: nobody ever sees a
 * partial object, and assembly is a rename, not a copy.
 */
export class FsBlobStore implements BlobStore {
  readonly driver = 'fs' as const;
  private readonly objectsDir: string;
  private readonly stagingDir: string;
  private readonly tmpDir: string;
  private directoriesReady: Promise<void> | undefined;
  /** Chunk writes in progress and running hashes, per upload (fs-staging-registry.ts). */
  private readonly staging = new StagingRegistry();
  private readonly digests = new DigestWorker();

  constructor(private readonly settings: Omit<FsBlobStoreSettings, 'driver'>) {
    const root = path.resolve(settings.root);
    this.objectsDir = path.join(root, 'objects');
    this.stagingDir = path.join(root, 'staging');
    this.tmpDir = path.join(root, 'tmp');
  }

  async checkReady(): Promise<void> {
    try {
      await this.ensureDirectories();
      for (const dir of [this.objectsDir, this.stagingDir, this.tmpDir]) await access(dir, fsConstants.W_OK);
    } catch (error) {
      this.directoriesReady = undefined;
      throw new Error(`Blob storage directory ${this.settings.root} is not writable: ${(error as Error).message}`);
    }
  }

  /** The content type is not kept: it only matters for downloads, and signed URLs carry it. */
  async put(key: string, body: Readable): Promise<BlobStat> {
    assertValidBlobKey(key);
    await this.ensureDirectories();
    const target = this.objectPath(key);
    const temp = path.join(this.tmpDir, randomUUID());
    let size: number;
    try {
      const file = await open(temp, 'wx');
      try {
        size = await writeAt(file, body, 0);
        await file.sync(); // durable before it becomes visible under its name
      } finally {
        await file.close();
      }
      await mkdir(path.dirname(target), { recursive: true });
      await rename(temp, target);
    } catch (error) {
      await rm(temp, { force: true });
      throw hasCode(error, 'ENOTDIR', 'EEXIST', 'EISDIR') ? pathConflict(key) : storageError(error);
    }
    await syncDirectory(path.dirname(target));
    return { size };
  }

  async get(key: string, range?: InclusiveRange): Promise<Readable> {
    assertValidBlobKey(key);
    if (range) assertWellFormedRange(range);
    return openForRead(this.objectPath(key), range, () => notFound(key));
  }

  async stat(key: string): Promise<BlobStat | null> {
    assertValidBlobKey(key);
    try {
      const info = await stat(this.objectPath(key));
      return info.isFile() ? { size: info.size } : null; // a directory is a key prefix, not a blob
    } catch (error) {
      if (isMissing(error)) return null;
      throw storageError(error);
    }
  }

  async exists(key: string): Promise<boolean> {
    return (await this.stat(key)) !== null;
  }

  localPath(key: string): string {
    assertValidBlobKey(key);
    return this.objectPath(key);
  }

  async delete(key: string): Promise<void> {
    assertValidBlobKey(key);
    try {
      await unlink(this.objectPath(key));
    } catch (error) {
      // EISDIR/EPERM: the key names a directory of other keys, so there is no such blob.
      if (isMissing(error) || hasCode(error, 'EISDIR', 'EPERM')) return;
      throw storageError(error);
    }
  }

  async signedUrl(key: string, opts: SignedUrlOptions): Promise<string> {
    assertValidBlobKey(key);
    const expiresAt = Math.floor(Date.now() / 1000) + Math.max(1, Math.ceil(opts.expiresInSeconds));
    return signBlobUrl(this.settings.publicBaseUrl, this.settings.signingSecret, {
      key,
      expiresAt,
      downloadName: opts.downloadName,
      contentType: opts.contentType,
    });
  }

  async writeStagedChunk(
    uploadId: string,
    offset: number,
    length: number,
    body: Readable,
    opts: WriteStagedChunkOptions = {},
  ): Promise<void> {
    assertValidUploadId(uploadId);
    assertValidChunk(offset, length);
    if (opts.expectedSha256 !== undefined) assertValidSha256(opts.expectedSha256);
    await this.ensureDirectories();

    const file = this.stagingPath(uploadId);
    // Registered before the file is opened, so assembly can never miss a handle.
    const state = this.staging.open(uploadId);
    const writer: ChunkWriter = { sealed: false, writing: undefined, start: offset };
    state.writers.add(writer);
    // A write into the head chunk's bytes makes its hash worthless as the start of the file's.
    if (state.head && offset < state.head.to) state.head = undefined;
    try {
      // Bytes already folded into the running hash are final; only a writer whose
      // reservation lapsed can aim at them, and it is turned away.
      if (offset < state.frozenTo) {
        body.destroy();
        throw writeRefused();
      }
      // No O_APPEND (Linux ignores the position of positional writes under it) and no
      // truncation: chunks arrive in any order and in parallel, each at its own offset.
      // Read-write: the digest thread reads the chunk back through this descriptor.
      let handle: FileHandle;
      let created = true;
      try {
        handle = await open(file, fsConstants.O_RDWR | fsConstants.O_CREAT | fsConstants.O_EXCL);
      } catch (error) {
        if (!hasCode(error, 'EEXIST')) throw storageError(error);
        created = false;
        handle = await open(file, fsConstants.O_RDWR);
      }
      // pipeline reports the AbortError of tearing down the streams rather than why the
      // writing stage failed (sealed, disk full, bad chunk), so keep that reason.
      let writeError: unknown;
      try {
        // The verifier only counts bytes here; the digest is checked on what reached the file.
        await pipeline(body, new ChunkVerifier(length), async (source: AsyncIterable<Buffer>) => {
          try {
            await writeAt(handle, source, offset, writer);
          } catch (error) {
            writeError = error;
            throw error;
          }
        });
        // The caller counts the chunk as received once this resolves: its bytes durable
        // (fdatasync is enough: it also flushes the file size, not timestamps) and, read back
        // through this very handle on the digest thread meanwhile, matching the client's digest.
        const expected = opts.expectedSha256?.toLowerCase();
        // The first chunk, with nobody else writing into its bytes and nothing folded yet: its digest
        // pass is also the start of the whole-file hash (a photo sent in one chunk is hashed once).
        const head = expected !== undefined && offset === 0 && state.frozenTo === 0 && !state.broken && ![...state.writers].some((w) => w !== writer && w.start < length) ? { to: length, ready: false } : undefined;
        if (head) state.head = head;
        // allSettled: the descriptor is closed below, and never while the digest thread still reads it.
        const [synced, checked] = await Promise.allSettled([
          handle.datasync(),
          expected === undefined ? undefined : head ? this.digests.head(uploadId, handle.fd, length) : this.digests.range(handle.fd, offset, offset + length),
        ]);
        if (synced.status === 'rejected') throw synced.reason;
        if (checked.status === 'rejected') digestFailed(checked.reason);
        const digest = checked.status === 'fulfilled' ? checked.value : undefined;
        if (digest && (digest.read !== length || digest.sha256 !== expected)) throw chunkDigestMismatch(expected!, digest.sha256);
        if (head && state.head === head) head.ready = true;
      } catch (error) {
        if (state.head && !state.head.ready) state.head = undefined;
        throw storageError(writeError ?? error);
      } finally {
        await handle.close();
      }
      if (created) await syncDirectory(this.stagingDir);
    } finally {
      state.writers.delete(writer);
      this.staging.forgetIfIdle(uploadId, state);
    }
  }

  /**
   * Folds the received prefix of the upload into a running SHA-256 while later chunks are
   * still arriving, so that assembly only hashes what came last instead of re-reading the
   * whole file at the end. `chunks` are those counted as received (digest matched, bytes
   * durable). From the moment a range is folded its bytes are final: a chunk write aimed
   * at it (only a writer whose reservation lapsed can do that) is refused. Returns at once;
   * the reading runs in the background, one fold after another. Only an optimisation:
   * after a restart, or if a fold fails, assembly hashes everything itself.
   */
  noteReceived(uploadId: string, chunks: readonly ByteRange[]): void {
    assertValidUploadId(uploadId);
    const prefix = coveredPrefix(chunks);
    const state = this.staging.open(uploadId);
    const head = state.head;
    state.head = undefined;
    if (head?.ready && prefix >= head.to && state.frozenTo === 0 && !state.broken) {
      // The head chunk was hashed into the running hash as it was checked, and nobody has written
      // into it since (a writer there would have dropped it): its bytes count as folded, and final.
      state.frozenTo = head.to;
      state.hashedTo = head.to;
    } else if (head?.ready) {
      this.digests.drop(uploadId); // not to be used: folds start from scratch
    }
    if (prefix <= state.frozenTo || state.broken) {
      this.staging.forgetIfIdle(uploadId, state);
      return;
    }
    const from = state.frozenTo;
    state.frozenTo = prefix; // synchronously: no write may start in the range from now on
    for (const writer of state.writers) if (writer.start < prefix) writer.sealed = true;
    const writing = [...state.writers].filter((writer) => writer.sealed).map((writer) => writer.writing);
    state.folding = state.folding
      .then(() => Promise.allSettled(writing))
      .then(async () => {
        if (state.broken || state.hashedTo !== from) throw new Error('fold out of order');
        state.hashedTo = (await this.digests.fold(uploadId, this.stagingPath(uploadId), from, prefix)).hashedTo;
      })
      .catch(() => {
        state.broken = true; // staging dropped or unreadable: assembly starts from scratch
      });
  }

  async readStaged(uploadId: string, range: InclusiveRange): Promise<Readable> {
    assertValidUploadId(uploadId);
    assertWellFormedRange(range);
    return openForRead(this.stagingPath(uploadId), range, () => stagingNotFound(uploadId));
  }

  async assembleStaged(uploadId: string, opts: AssembleOptions): Promise<{ sha256: string; size: number }> {
    assertValidUploadId(uploadId);
    assertValidBlobKey(opts.key);
    assertValidSha256(opts.expectedSha256);
    planAssembly(opts.chunks, opts.size);
    const expected = opts.expectedSha256.toLowerCase();
    const target = this.objectPath(opts.key);
    const staged = this.stagingPath(uploadId);

    if (opts.size === 0) {
      // Nothing can have been staged for an empty file; it is stored like any other blob.
      if (expected !== EMPTY_SHA256) throw digestMismatch(expected, EMPTY_SHA256, 0, 0);
      await this.put(opts.key, Readable.from([]));
      await this.dropStaged(uploadId);
      return { sha256: EMPTY_SHA256, size: 0 };
    }

    // Move the staging file out of reach first: chunk writes that start from now on create
    // a new staging file; those already holding this one are sealed before hashing.
    // A fold still reading the staging file by name finishes first, so its work counts.
    const state = this.staging.get(uploadId);
    await state?.folding;
    const sealed = this.sealedPath(uploadId);
    try {
      await rename(staged, sealed);
    } catch (error) {
      if (!isMissing(error)) throw storageError(error);
      // No staging file, but a sealed one: an assembly that died half-way (a crash). Its bytes
      // are still this upload's, and they are hashed again below like any others.
      if (!(await pathExists(sealed))) throw stagingNotFound(uploadId);
    }
    await this.staging.sealWriters(uploadId);
    // The running hash is used up here, whatever the outcome; later writes start afresh.
    if (state) this.staging.forget(uploadId, state);
    const running = state && !state.broken && state.hashedTo <= opts.size ? state : undefined;

    // Until the bytes are at the content address, any failure puts staging back as it was, so
    // that a retry finds them (and nothing has to be sent again).
    let placed = false;
    try {
      let handle: FileHandle;
      try {
        handle = await open(sealed, 'r+');
      } catch (error) {
        if (isMissing(error)) throw stagingNotFound(uploadId); // dropped meanwhile
        throw storageError(error);
      }
      try {
        // Bytes folded before are final (writers into them were refused), so only the rest is read.
        const { sha256: actual, read } = await this.digests.finish(uploadId, sealed, running?.hashedTo ?? 0, opts.size).catch(digestFailed);
        // `read` falls short when the staging file is shorter than declared (chunks missing).
        if (actual !== expected || read !== opts.size) throw digestMismatch(expected, actual, opts.size, read);
        // A chunk written past the declared size must not become part of the blob.
        if ((await handle.stat()).size > opts.size) {
          await handle.truncate(opts.size);
          await handle.sync();
        }
      } finally {
        await handle.close();
      }
      try {
        await mkdir(path.dirname(target), { recursive: true });
        // Atomic replace: if the same content is already there (two users finishing the same
        // file), readers of the old file keep their handle and everyone else sees the new one.
        await rename(sealed, target);
        placed = true;
      } catch (error) {
        throw hasCode(error, 'ENOTDIR', 'EEXIST', 'EISDIR') ? pathConflict(opts.key) : storageError(error);
      }
    } catch (error) {
      if (!placed) await this.unseal(uploadId).catch(() => {});
      throw error;
    }
    await syncDirectory(path.dirname(target));
    await syncDirectory(this.stagingDir);
    return { sha256: expected, size: opts.size }; // verified equal above
  }

  async dropStaged(uploadId: string): Promise<void> {
    assertValidUploadId(uploadId);
    const state = this.staging.get(uploadId);
    if (state) {
      state.broken = true; // a fold still running must not be trusted by a later assembly
      this.staging.forget(uploadId, state);
      this.digests.drop(uploadId);
    }
    await rm(this.stagingPath(uploadId), { force: true });
    await rm(this.sealedPath(uploadId), { force: true }); // left by a crash mid-assembly
  }

  async close(): Promise<void> {
    // Every operation closes its own file handles; only the digest thread is left.
    await this.digests.close();
  }

  private objectPath(key: string): string {
    return path.join(this.objectsDir, ...key.split('/'));
  }

  private stagingPath(uploadId: string): string {
    return path.join(this.stagingDir, uploadId);
  }

  /** The staging file while it is being assembled; `.` never occurs in upload ids. */
  private sealedPath(uploadId: string): string {
    return path.join(this.stagingDir, `${uploadId}.assembling`);
  }

  /**
   * After a failed assembly, staging goes back as it was. The sealed file holds every counted
   * byte; a staging file a chunk write made meanwhile holds none that counted (nothing is
   * counted while an upload completes), so the sealed one replaces it.
   */
  private async unseal(uploadId: string): Promise<void> {
    try {
      await rename(this.sealedPath(uploadId), this.stagingPath(uploadId));
    } catch (error) {
      if (!hasCode(error, 'ENOENT')) throw storageError(error);
    }
  }

  private ensureDirectories(): Promise<void> {
    this.directoriesReady ??= Promise.all(
      [this.objectsDir, this.stagingDir, this.tmpDir].map((dir) => mkdir(dir, { recursive: true })),
    ).then(() => undefined);
    return this.directoriesReady;
  }
}

const EMPTY_SHA256 = createHash('sha256').digest('hex');
