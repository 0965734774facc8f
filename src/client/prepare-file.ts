import { readFile } from 'node:fs/promises';
import { ApiError } from './api-client.js';
import type { ByteBudget } from './byte-budget.js';
import { plannedChunkBytes } from './chunk-plan.js';
import { chunkKey, hashFileAndChunks, type ChunkDigests } from './file-hashing.js';
import type { CheckedFile } from './upload-file.js';
import { mediaTypeFromName } from '../protocol/media-types.js';

/**
 * Files smaller than this are read whole: hashed from memory (on the thread pool, so several hash
 * at once and the event loop stays free) and, if the server lacks them, sent from the same buffer
 * in one chunk — the disk is read once. Larger files are hashed as a stream and read again in
 * chunks when sent.
 */
export const WHOLE_FILE_BELOW = 16 * 2 ** 20;

/** Whether `prepareFile` reads this file whole: small, and at most a quarter of the memory budget. */
export function readsWhole(size: number, memory?: ByteBudget): boolean {
  return size < WHOLE_FILE_BELOW && (!memory || size <= memory.total / 4);
}

/** A file hashed and ready to be checked: what `sendChecked` needs, plus its hash. */
export interface PreparedFile extends CheckedFile {
  sha256: string;
  /** The image's perceptual hash, when asked for and this machine can decode it. */
  perceptualHash?: string | null;
  /** Gives back the memory `bytes` took from the budget (call it once the file is done). */
  release(): void;
}

/**
 * Hashes a file for the check (U1). A small one is read whole, within `memory` (its bytes are
 * held until `release`); its single chunk's digest is the file's. `knownSha256`: the hash a
 * sync list kept for this very file (size and time unchanged), so a large file is not read.
 * `perceptualHash`: an image's perceptual hash too (decoded from the bytes read, or the file).
 */
export async function prepareFile(
  file: { path: string; size: number },
  options: { memory?: ByteBudget; knownSha256?: string | null; perceptualHash?: boolean; signal?: AbortSignal } = {},
): Promise<PreparedFile> {
  const prepared = await hashed(file, options);
  if (options.perceptualHash && mediaTypeFromName(file.path)?.startsWith('image/')) {
    // Loaded when first asked for: sharp (libvips) is a large load for a client that only hashes.
    const { perceptualHashOf } = await import('./perceptual-hash.js');
    prepared.perceptualHash = await perceptualHashOf(prepared.bytes ?? file.path);
  }
  return prepared;
}

async function hashed(file: { path: string; size: number }, options: { memory?: ByteBudget; knownSha256?: string | null; signal?: AbortSignal }): Promise<PreparedFile> {
  if (!readsWhole(file.size, options.memory) || options.knownSha256) {
    if (options.knownSha256) return { path: file.path, size: file.size, sha256: options.knownSha256, release: () => {} };
    const { sha256, chunks } = await hashFileAndChunks(file.path, plannedChunkBytes(file.size), options.signal);
    return { path: file.path, size: file.size, sha256, digests: chunks, release: () => {} };
  }
  const release = (await options.memory?.take(file.size)) ?? (() => {});
  try {
    const bytes = await readFile(file.path, { signal: options.signal });
    if (bytes.length !== file.size) throw new ApiError('FILE_CHANGED', `the file is ${bytes.length} bytes now, ${file.size} when it was listed: it changed`);
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
    const digests: ChunkDigests = new Map([[chunkKey({ offset: 0, length: bytes.length }), digest]]);
    return { path: file.path, size: file.size, sha256: Buffer.from(digest).toString('hex'), bytes, digests, release };
  } catch (error) {
    release();
    throw error;
  }
}
