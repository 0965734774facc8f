import { access, open, type FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { AppError, isAppError } from '../app-error.js';
import { rangeNotSatisfiable, type InclusiveRange } from './blob-store.js';

/** File-system work of the filesystem driver (fs-blob-store.ts): writes at offsets, directory syncs, its errors. */

/** Read buffer per open stream: big enough for throughput, small enough for many downloads. */
const READ_HIGH_WATER_MARK = 256 * 1024;

/**
 * Opens a stored file for reading (the inclusive range of it), or throws `missing()`. Opens before
 * returning, so NOT_FOUND and RANGE_NOT_SATISFIABLE are thrown while the caller can still choose a
 * status code; the stream owns (and closes) the handle.
 */
export async function openForRead(file: string, range: InclusiveRange | undefined, missing: () => AppError): Promise<Readable> {
  let handle: FileHandle;
  try {
    handle = await open(file, 'r');
  } catch (error) {
    if (isMissing(error)) throw missing();
    throw storageError(error);
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw missing(); // a directory (key prefix) opens fine on Linux
    if (range && range.end >= info.size) throw rangeNotSatisfiable(range, info.size);
  } catch (error) {
    await handle.close();
    throw error;
  }
  return handle.createReadStream({ ...(range ?? {}), highWaterMark: READ_HIGH_WATER_MARK });
}

export interface ChunkWriter {
  /** Set by assembly, or by a fold reaching into this writer's range: it may not write again. */
  sealed: boolean;
  /** First byte of the writer's chunk. */
  start: number;
  /** The write call in progress, which assembly waits for. */
  writing: Promise<unknown> | undefined;
}

/**
 * Pieces are gathered up to this size and written with one writev: a 256 MiB upload is ~1,000
 * writes, not ~4,000, while 32 chunk streams at once hold only 8 MiB between them.
 */
const WRITE_BATCH_BYTES = 256 * 1024;

/** Writes every byte of `source` from `position` on; returns how many were written. */
export async function writeAt(handle: FileHandle, source: AsyncIterable<Buffer>, position: number, writer?: ChunkWriter): Promise<number> {
  let written = 0;
  let batch: Buffer[] = [];
  let batched = 0;
  const flush = async () => {
    let buffers = batch;
    let remaining = batched;
    batch = [];
    batched = 0;
    while (remaining > 0) {
      // Checked right before each write: JavaScript runs this check and the start of the
      // write without interruption, so a sealed writer never touches the file again.
      if (writer?.sealed) throw writeRefused();
      const writing = handle.writev(buffers, position + written);
      if (writer) writer.writing = writing;
      const { bytesWritten } = await writing;
      written += bytesWritten;
      remaining -= bytesWritten;
      // A short write (rare: disk full, signals) continues with what is left.
      if (remaining > 0) buffers = [Buffer.concat(buffers).subarray(bytesWritten)];
    }
  };
  for await (const piece of source) {
    batch.push(piece);
    batched += piece.length;
    if (batched >= WRITE_BATCH_BYTES) await flush();
  }
  await flush();
  return written;
}

/** Makes a rename or a new file's directory entry survive a crash (no-op where unsupported). */
export async function syncDirectory(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch (error) {
    if (!hasCode(error, 'EISDIR', 'EINVAL', 'EPERM', 'EBADF')) throw storageError(error);
  } finally {
    await handle?.close();
  }
}

export function digestMismatch(expected: string, actualSha256: string, expectedSize: number, actualSize: number): AppError {
  return new AppError('DIGEST_MISMATCH', 'The assembled file does not match its declared SHA-256 and size', {
    expected,
    actual: actualSha256,
    expectedSize,
    actualSize,
  });
}

/** The digest thread failed (it stopped, or could not read): an operator problem, and a retry may work. */
export function digestFailed(error: unknown): never {
  if (isAppError(error)) throw error;
  throw new AppError('STORAGE_ERROR', `Blob storage failed: could not hash the staged bytes (${(error as Error).message})`);
}

export async function pathExists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch (error) {
    if (isMissing(error)) return false;
    throw storageError(error);
  }
}

export function writeRefused(): AppError {
  return new AppError('CONFLICT', 'These bytes were already received and counted (or the upload assembled) while this chunk was being written; it was not stored');
}

export function notFound(key: string): AppError {
  return new AppError('NOT_FOUND', 'No such blob', { key });
}

/**
 * Files cannot be both a blob and a directory of blobs: with blob `a`, there can be no
 * `a/b` (S3 allows both). Content addresses never collide like this.
 */
export function pathConflict(key: string): AppError {
  return new AppError('CONFLICT', 'The key collides with the path of another blob', { key });
}

export function stagingNotFound(uploadId: string): AppError {
  return new AppError('NOT_FOUND', 'Nothing is staged for this upload', { uploadId });
}

export function hasCode(error: unknown, ...codes: string[]): boolean {
  return typeof error === 'object' && error !== null && codes.includes((error as NodeJS.ErrnoException).code ?? '');
}

export function isMissing(error: unknown): boolean {
  return hasCode(error, 'ENOENT', 'ENOTDIR');
}

/**
 * Domain errors and errors of the caller's own stream pass through; a full disk becomes
 * STORAGE_ERROR (an operator problem a client cannot fix); anything else is a bug and
 * stays as it is, to be masked and logged upstream.
 */
export function storageError(error: unknown): unknown {
  if (hasCode(error, 'ENOSPC', 'EDQUOT', 'EROFS', 'EIO')) {
    return new AppError('STORAGE_ERROR', `Blob storage failed: ${(error as NodeJS.ErrnoException).code}`);
  }
  return error;
}
