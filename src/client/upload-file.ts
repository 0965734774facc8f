import { closeSync, openSync, readSync, statSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { ApiError, type ApiClient } from './api-client.js';
import type { ByteBudget } from './byte-budget.js';
import type { ByteRange } from '../protocol/byte-ranges.js';
import { ChunkSizer, plan, plannedChunkBytes, spreadChunkBytes } from './chunk-plan.js';
import { chunkKey, hashFileAndChunks, readSpan, type ChunkDigests } from './file-hashing.js';
import { proofOfPossession } from '../protocol/proof-of-possession.js';
import { isSha256Hex } from '../protocol/sha256.js';

interface UploadState {
  id: string;
  state: 'OPEN' | 'COMPLETING' | 'DONE' | 'FAILED';
  missing: ByteRange[];
  limits: { minChunkBytes: number; maxChunkBytes: number };
}

interface AssetSummary {
  id: string;
  name: string;
  sha256: string;
  size: number;
  /** 'pending' while its thumbnails are made in the background, then 'ready' or 'failed'. */
  thumbnailStatus: string;
}

export interface UploadFileOptions {
  /** Name in the library; defaults to the file's base name. */
  name?: string;
  folder?: string;
  /** Chunks in flight at once. */
  parallel?: number;
  /** First chunk size; later ones follow the measured rate (U5). */
  initialChunkBytes?: number;
  /** Aim for chunks that take about this long at the measured rate. */
  targetChunkSeconds?: number;
  /**
   * Already computed SHA-256 (hex), e.g. from a sync list. Trusted as it is, so pass `hashedFile`
   * with it: a hash of bytes the file no longer has would make the server answer for those bytes
   * ("already in your library") and the new ones would never be backed up.
   */
  sha256?: string;
  /**
   * The file's size and modification time (`stat().mtimeMs`) when `sha256` was worked out. If the
   * file differs now, `sha256` is not used: the file is hashed again.
   */
  hashedFile?: { size: number; mtimeMs: number };
  signal?: AbortSignal;
  /**
   * Shared limit on the bytes chunks hold in memory (across every upload using it); chunks are also
   * planned no larger than a quarter of it. Without it, memory is `parallel` × the chunk size.
   */
  memory?: ByteBudget;
  /** Attempts per chunk after a network failure or a server error (default 3; backoff 0.5 s, 1 s, 2 s…). */
  retries?: number;
  /**
   * After each chunk the server took (`chunkBytes` its length), and as a chunk's bytes leave
   * (`chunkBytes` 0): `sentBytes` counts those too.
   */
  onProgress?(event: { sentBytes: number; receivedBytes: number; size: number; chunkBytes: number }): void;
}

export interface UploadFileResult {
  /** exists: already in the library; instant: claimed with a proof, no bytes sent; uploaded: bytes were sent. */
  outcome: 'exists' | 'instant' | 'uploaded';
  asset: AssetSummary;
  /** Bytes of the file this call sent (only what the server was missing). */
  sentBytes: number;
  uploadId?: string;
  /** Chunk sizes used, in order (they follow the measured rate). */
  chunkSizes: number[];
}

const ASSET = 'id name sha256 size thumbnailStatus';
const UPLOAD = 'id state missing { offset length } limits { minChunkBytes maxChunkBytes }';

/**
 * The check for many files at once — a device rebuilding a lost sync list (U2), or backing up a
 * folder: it asks only for what a sync client needs (`assetId`, not the whole asset).
 */
export const CHECK_UPLOADS = `mutation($files: [CheckFileInput!]!) { checkUploads(files: $files) { sha256 status assetId challenge { id nonce ranges { offset length } } upload { ${UPLOAD} } error { code message } } }`;

export interface CheckAnswer {
  sha256: string;
  status: 'EXISTS' | 'PROOF_REQUIRED' | 'UPLOAD' | 'REFUSED';
  assetId: string | null;
  challenge: { id: string; nonce: string; ranges: ByteRange[] } | null;
  upload: UploadState | null;
  error: { code: string; message: string } | null;
}

/** A file as a check declares it. */
export interface CheckFileInput {
  sha256: string;
  size: number;
  name: string;
  folder?: string | null;
  /** ISO time: the file's time, used when the photo has no capture time of its own. */
  takenAt?: string | null;
  /** The image's perceptual hash (perceptualHashOf), when the client works it out. */
  perceptualHash?: string | null;
}

export async function checkFiles(api: ApiClient, files: CheckFileInput[], signal?: AbortSignal): Promise<CheckAnswer[]> {
  return (await api.graphql<{ checkUploads: CheckAnswer[] }>(CHECK_UPLOADS, { files }, signal)).checkUploads;
}

/**
 * The answer to a proof-of-possession challenge: SHA-256 over the nonce, then each range's bytes
 * in order. A few KiB (PROOF_RANGES × 4 KiB on the server): read synchronously, which costs
 * microseconds, where each asynchronous file operation is a round trip through the thread pool.
 */
function proofOf(file: string, challenge: { nonce: string; ranges: ByteRange[] }, bytes?: Buffer): string {
  if (bytes) {
    const end = Math.max(...challenge.ranges.map((range) => range.offset + range.length));
    if (end > bytes.length) throw new ApiError('FILE_CHANGED', `file ended before byte ${end}: it changed since it was hashed`);
    return proofOfPossession(challenge.nonce, challenge.ranges.map((range) => bytes.subarray(range.offset, range.offset + range.length)));
  }
  const fd = openSync(file, 'r');
  try {
    const pieces = challenge.ranges.map((range) => {
      const buffer = Buffer.allocUnsafe(range.length);
      for (let done = 0; done < range.length; ) {
        const n = readSync(fd, buffer, done, range.length - done, range.offset + done);
        if (n === 0) throw new ApiError('FILE_CHANGED', `file ended before byte ${range.offset + range.length}: it changed since it was hashed`);
        done += n;
      }
      return buffer;
    });
    return proofOfPossession(challenge.nonce, pieces);
  } finally {
    closeSync(fd);
  }
}

/**
 * Backs up one file: check (U3); nothing to do if it is already in the library;
 * an instant upload after a proof of possession if the server has the bytes (U4);
 * otherwise the missing ranges in parallel chunks (U5, U6) until the server answers
 * with the asset (U7). Calling it again after an interruption sends only what is missing.
 */
export async function uploadFile(api: ApiClient, file: string, options: UploadFileOptions = {}): Promise<UploadFileResult> {
  checkOptions(options);
  // One system call, synchronously: cheaper than a round trip through the thread pool.
  const { size, mtime, mtimeMs } = statSync(file);
  const unchanged = !options.hashedFile || (options.hashedFile.size === size && options.hashedFile.mtimeMs === mtimeMs);
  const known = unchanged ? options.sha256 : undefined;
  // Hashing the file anyway: the planned chunks' digests come with it (see hashFileAndChunks).
  const hashed = known ? null : await hashFileAndChunks(file, plannedChunkBytes(size, options), options.signal);
  const sha256 = known ?? hashed!.sha256;
  const input: CheckFileInput = { sha256, size, name: options.name ?? path.basename(file), folder: options.folder ?? null, takenAt: mtime.toISOString() };
  const [answer] = (
    await api.graphql<{ checkUploads: { status: string; asset: AssetSummary | null; challenge: { id: string; nonce: string; ranges: ByteRange[] } | null; upload: UploadState | null; error: { code: string; message: string } | null }[] }>(
      `mutation($files: [CheckFileInput!]!) { checkUploads(files: $files) { status asset { ${ASSET} } challenge { id nonce ranges { offset length } } upload { ${UPLOAD} } error { code message } } }`,
      { files: [input] },
      options.signal,
    )
  ).checkUploads;
  if (!answer) throw new ApiError('BAD_RESPONSE', 'empty check answer');
  if (answer.status === 'EXISTS') return { outcome: 'exists', asset: answer.asset!, sentBytes: 0, chunkSizes: [] };
  if (answer.status === 'REFUSED') throw new ApiError(answer.error!.code, answer.error!.message);
  return sendChecked(api, { path: file, size, digests: hashed?.chunks }, input, answer as Pick<CheckAnswer, 'status' | 'challenge' | 'upload'>, options);
}

/** A file whose check answered PROOF_REQUIRED or UPLOAD, as `sendChecked` needs it. */
export interface CheckedFile {
  path: string;
  /** The size the check declared. */
  size: number;
  /**
   * The whole file, when the caller read it (a small file: hashed from memory and sent from the
   * same buffer, so the disk is read once). Proofs and chunks are then taken from here.
   */
  bytes?: Buffer;
  /** Digests of chunks worked out ahead (by `offset:length`). */
  digests?: ChunkDigests;
}

/**
 * The rest of a backup after the check (for a client that checks many files in one request):
 * an instant upload after a proof of possession (U4), falling back to sending the bytes when
 * the proof is refused; or the missing ranges in parallel chunks (U5, U6) until the server
 * answers with the asset (U7). `input` is the file as it was declared in the check.
 */
export async function sendChecked(api: ApiClient, file: CheckedFile, input: CheckFileInput, answer: Pick<CheckAnswer, 'status' | 'challenge' | 'upload'>, options: UploadFileOptions = {}): Promise<UploadFileResult> {
  let upload = answer.upload;
  if (answer.status === 'PROOF_REQUIRED') {
    const challenge = answer.challenge!;
    try {
      const proof = proofOf(file.path, challenge, file.bytes);
      const { claimUpload } = await api.graphql<{ claimUpload: AssetSummary }>(
        `mutation($id: ID!, $proof: String!) { claimUpload(challengeId: $id, proof: $proof) { ${ASSET} } }`,
        { id: challenge.id, proof },
        options.signal,
      );
      return { outcome: 'instant', asset: claimUpload, sentBytes: 0, chunkSizes: [] };
    } catch (error) {
      // A refused or late proof is not fatal: send the bytes instead.
      if (!(error instanceof ApiError) || !['PROOF_REJECTED', 'CHALLENGE_EXPIRED', 'CHALLENGE_USED', 'NOT_FOUND'].includes(error.code)) throw error;
    }
    upload = (await api.graphql<{ startUpload: UploadState }>(`mutation($file: CheckFileInput!) { startUpload(file: $file) { ${UPLOAD} } }`, { file: input }, options.signal)).startUpload;
  }
  if (!upload) throw new ApiError('BAD_RESPONSE', `a check answer of ${answer.status} without an upload session`);
  // The server's missing ranges are the authority (U6): if it still lacks bytes once every chunk was
  // answered (a range a cut connection left unrecorded), those are sent again — twice at most.
  let sentBefore = 0;
  for (let round = 0; ; round++) {
    try {
      const result = await sendMissing(api, file, upload, options);
      return { ...result, sentBytes: result.sentBytes + sentBefore };
    } catch (error) {
      const missing = error instanceof ApiError && error.code === 'UPLOAD_NOT_OPEN' && Array.isArray(error.details.missing) ? (error.details.missing as ByteRange[]) : [];
      if (missing.length === 0 || round >= 2) throw error;
      sentBefore += upload.missing.reduce((n, r) => n + r.length, 0);
      upload = { ...upload, missing };
    }
  }
}

/** Options a caller got wrong fail at once, with a RangeError naming them. */
function checkOptions(options: UploadFileOptions): void {
  const whole = (name: keyof UploadFileOptions, min: number, max = Number.MAX_SAFE_INTEGER) => {
    const value = options[name];
    if (value !== undefined && (!Number.isSafeInteger(value) || (value as number) < min || (value as number) > max)) throw new RangeError(`${name} must be a whole number from ${min} to ${max}`);
  };
  whole('parallel', 1, 64);
  whole('initialChunkBytes', 1);
  whole('retries', 0, 100);
  const target = options.targetChunkSeconds;
  if (target !== undefined && !(Number.isFinite(target) && target > 0)) throw new RangeError('targetChunkSeconds must be a number of seconds above 0');
  if (options.sha256 !== undefined && !isSha256Hex(options.sha256)) throw new RangeError('sha256 must be 64 hexadecimal characters');
  const hashedFile = options.hashedFile;
  if (hashedFile !== undefined && !(Number.isSafeInteger(hashedFile.size) && hashedFile.size >= 0 && Number.isFinite(hashedFile.mtimeMs))) throw new RangeError('hashedFile must have a whole size and a finite mtimeMs');
}

/** `size`: the file's size as declared in the check (the plan follows the server's missing list). */
async function sendMissing(api: ApiClient, file: CheckedFile, upload: UploadState, options: UploadFileOptions): Promise<UploadFileResult> {
  const { size, digests } = file;
  const parallel = Math.max(1, options.parallel ?? 4);
  // A file held in memory goes whole, in one request, when the server takes chunks that large.
  const planned = file.bytes ? size : plannedChunkBytes(size, options);
  // The sizer may grow chunks up to a quarter of one worker's share (see plannedChunkBytes).
  const spread = spreadChunkBytes(size, parallel);
  // Chunks read from disk are held in memory while on their way: the budget caps them.
  const cap = file.bytes ? Number.MAX_SAFE_INTEGER : (options.memory?.chunkCap ?? Number.MAX_SAFE_INTEGER);
  const limits = { minChunkBytes: upload.limits.minChunkBytes, maxChunkBytes: Math.max(upload.limits.minChunkBytes, Math.min(upload.limits.maxChunkBytes, cap, Math.max(planned, spread))) };
  const sizer = new ChunkSizer(limits, planned, options.targetChunkSeconds ?? 3);
  const chunks = plan(upload.missing, sizer);
  const chunkSizes: number[] = [];
  let sentBytes = 0;
  let asset: AssetSummary | null = null;
  let receivedBytes = size - upload.missing.reduce((n, s) => n + s.length, 0);
  /** Bytes of the chunks in flight that have left, by chunk offset (progress within a chunk). */
  const leaving = new Map<number, number>();
  // A file read whole is sent from memory (its bytes already count against the caller's budget).
  const handle = file.bytes ? null : await fs.open(file.path, 'r');
  // The first worker that fails stops the others (their chunks in flight too), so that nothing
  // of this attempt is still sending — or holding a range — when the caller tries again.
  const stop = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
  try {
    const worker = async () => {
      // One buffer per worker, grown as chunks grow: memory stays at parallel × chunk size.
      let buffer: Buffer | undefined;
      for (let next = chunks.next(); !next.done && !signal.aborted; next = chunks.next()) {
        const span = next.value;
        const release = handle ? await options.memory?.take(span.length) : undefined;
        try {
          let bytes: Buffer;
          if (handle) {
            if (!buffer || buffer.length < span.length) buffer = Buffer.allocUnsafe(span.length);
            bytes = await readSpan(handle, span, buffer);
          } else {
            if (span.offset + span.length > file.bytes!.length) throw new ApiError('FILE_CHANGED', `file ended before byte ${span.offset + span.length}: it changed since it was hashed`);
            bytes = file.bytes!.subarray(span.offset, span.offset + span.length);
          }
          // Worked out with the file's hash, or now — WebCrypto hashes on the thread pool, so
          // workers hash in parallel with each other and with sending.
          const digest = digests?.get(chunkKey(span)) ?? new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
          const started = performance.now();
          let landed = false;
          const onWritten = options.onProgress
            ? (written: number) => {
                if (landed) return; // a late report of an attempt that failed
                leaving.set(span.offset, written);
                options.onProgress!({ sentBytes: sentBytes + sum(leaving.values()), receivedBytes, size, chunkBytes: 0 });
              }
            : undefined;
          const result = await withRetries(options.retries ?? 3, signal, () =>
            api.putChunk<{ upload: { receivedBytes: number; state: string }; asset: AssetSummary | null }>(upload.id, span.offset, bytes, digest, signal, onWritten),
          ).finally(() => {
            landed = true;
            leaving.delete(span.offset);
          });
          sizer.record(span.length, (performance.now() - started) / 1000);
          chunkSizes.push(span.length);
          sentBytes += span.length;
          receivedBytes = Math.max(receivedBytes, result.upload.receivedBytes);
          if (result.asset) asset = result.asset;
          options.onProgress?.({ sentBytes, receivedBytes, size, chunkBytes: span.length });
        } finally {
          if (release) {
            // Under a shared budget a worker keeps no buffer between chunks: what it held is given back.
            buffer = undefined;
            release();
          }
        }
      }
    };
    const outcomes = await Promise.allSettled(
      Array.from({ length: parallel }, () =>
        worker().catch((error: unknown) => {
          stop.abort();
          throw error;
        }),
      ),
    );
    // The error that stopped the others, not the AbortErrors it caused in them.
    const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected' && !(o.reason instanceof Error && o.reason.name === 'AbortError')) ?? outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failed) throw failed.reason;
  } finally {
    await handle?.close();
  }
  // Another worker's chunk may have been the last; or the completion is still running.
  asset ??= await complete(api, upload.id, options.signal);
  return { outcome: 'uploaded', asset, sentBytes, uploadId: upload.id, chunkSizes };
}

/**
 * Asks for the asset of an upload whose bytes are all there. While the server is still
 * assembling it (a large file, or an answer to the last chunk that got lost), it says so
 * (UPLOAD_NOT_OPEN, state completing): ask again, a little later each time, for up to ten minutes.
 */
async function complete(api: ApiClient, uploadId: string, signal?: AbortSignal): Promise<AssetSummary> {
  const deadline = Date.now() + 600_000;
  for (let wait = 250; ; wait = Math.min(wait * 2, 5000)) {
    try {
      // A dropped connection is asked again, as a chunk is (completing twice is answered alike).
      return (await withRetries(3, signal, () => api.graphql<{ completeUpload: AssetSummary }>(`mutation($id: ID!) { completeUpload(uploadId: $id) { ${ASSET} } }`, { id: uploadId }, signal))).completeUpload;
    } catch (error) {
      const completing = error instanceof ApiError && error.code === 'UPLOAD_NOT_OPEN' && error.details.state === 'completing';
      if (!completing || Date.now() + wait > deadline || signal?.aborted) throw error;
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}

/**
 * Retries what a later attempt can fix — the connection dropped, the server restarted
 * or answered 5xx — and nothing else: a refused chunk stays refused.
 */
export async function withRetries<T>(retries: number, signal: AbortSignal | undefined, attempt: () => Promise<T>): Promise<T> {
  for (let n = 0; ; n++) {
    try {
      return await attempt();
    } catch (error) {
      const transient = error instanceof TypeError || (error instanceof ApiError && ['HTTP_ERROR', 'INTERNAL_SERVER_ERROR', 'STORAGE_ERROR'].includes(error.code));
      if (!transient || n >= retries || signal?.aborted) throw error;
      await new Promise((resolve) => setTimeout(resolve, 500 * 2 ** n));
    }
  }
}

function sum(values: Iterable<number>): number {
  let total = 0;
  for (const value of values) total += value;
  return total;
}
