import { createHash } from 'node:crypto';
import type fs from 'node:fs/promises';
import { open } from 'node:fs/promises';
import type { ByteRange } from '../protocol/byte-ranges.js';

/** Hashing a file for the check (U1) and its chunks for their Content-Digest, in one pass. */

export async function hashFile(file: string, signal?: AbortSignal): Promise<string> {
  return (await hashFileAndChunks(file, 0, signal)).sha256;
}

/** Digests of planned chunks, by `offset:length`, worked out ahead of sending. */
export type ChunkDigests = Map<string, Uint8Array>;

export const chunkKey = (span: ByteRange) => `${span.offset}:${span.length}`;

/**
 * One pass over the file: its SHA-256 on this thread and, at the same time on the thread
 * pool (WebCrypto), the SHA-256 of each `chunkBytes` slice — the digests the chunk PUTs
 * carry if the file has to be sent. The check cannot go out before the whole-file hash is
 * known, so the second core would otherwise idle; this way sending later only reads and
 * sends. `chunkBytes` 0: the file's hash alone.
 */
export async function hashFileAndChunks(file: string, chunkBytes: number, signal?: AbortSignal): Promise<{ sha256: string; chunks: ChunkDigests }> {
  const hash = createHash('sha256');
  const chunks: ChunkDigests = new Map();
  const block = chunkBytes > 0 ? chunkBytes : 4 * 2 ** 20;
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    // Two buffers: one is read into while the other is still being digested.
    const buffers = [Buffer.allocUnsafe(Math.min(block, Math.max(1, size))), Buffer.allocUnsafe(Math.min(block, Math.max(1, size)))];
    const pending: (Promise<void> | undefined)[] = [undefined, undefined];
    for (let offset = 0, i = 0; offset < size; offset += block, i ^= 1) {
      signal?.throwIfAborted();
      await pending[i];
      const span = { offset, length: Math.min(block, size - offset) };
      const bytes = await readSpan(handle, span, buffers[i]);
      if (chunkBytes > 0) {
        pending[i] = crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>).then((digest) => void chunks.set(chunkKey(span), new Uint8Array(digest)));
      }
      hash.update(bytes);
    }
    await Promise.all(pending);
  } finally {
    await handle.close();
  }
  return { sha256: hash.digest('hex'), chunks };
}

/** Reads `[offset, offset + length)` of a file, into `into` when given (reused between chunks). */
export async function readSpan(handle: fs.FileHandle, span: ByteRange, into?: Buffer): Promise<Buffer> {
  const buffer = into && into.length >= span.length ? into.subarray(0, span.length) : Buffer.allocUnsafe(span.length);
  let done = 0;
  while (done < span.length) {
    const { bytesRead } = await handle.read(buffer, done, span.length - done, span.offset + done);
    if (bytesRead === 0) throw new Error(`file ended before byte ${span.offset + span.length}: it changed while uploading`);
    done += bytesRead;
  }
  return buffer;
}
