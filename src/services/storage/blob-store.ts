import type { Readable } from 'node:stream';
import type { StorageConfig } from '../../config.js';
import type { ByteRange } from '../../protocol/byte-ranges.js';
import { isSha256Hex } from '../../protocol/sha256.js';
import { AppError } from '../app-error.js';

/**
 * The one storage interface (DESIGN §3). Two drivers implement it — the filesystem
 * (embedded default) and S3 — and one contract suite (test/storage) holds both to it.
 *
 * Vocabulary: a *blob* is an immutable object under a key (usually the content
 * address `blobs/<sha256>`); an *upload* is a resumable transfer identified by an id
 * the caller chooses (a uuid); its *chunks* are byte ranges written into *staging*
 * until the upload is assembled into a blob.
 */

/** Inclusive on both ends, like HTTP `Range: bytes=start-end`. */
export interface InclusiveRange {
  start: number;
  end: number;
}


export interface BlobStat {
  size: number;
}

export interface PutOptions {
  /** Kept as object metadata by S3; the fs driver keeps none (its signed URLs carry the type). */
  contentType?: string;
}

export interface SignedUrlOptions {
  expiresInSeconds: number;
  /** Offered to the browser as the file name (Content-Disposition: attachment). */
  downloadName?: string;
  contentType?: string;
}

export interface WriteStagedChunkOptions {
  /** Hex SHA-256 the chunk's bytes must have (the client's Content-Digest). */
  expectedSha256?: string;
}

export interface AssembleOptions {
  /** Declared size of the whole file. */
  size: number;
  /** The chunks counted as received; together they must cover `[0, size)`. */
  chunks: readonly ByteRange[];
  /** Declared hex SHA-256 of the whole file. */
  expectedSha256: string;
  /** Where the verified bytes go (the content address). */
  key: string;
}

export interface BlobStore {
  readonly driver: 'fs' | 's3';

  /**
   * Confirms the backing store is usable (directories writable / bucket reachable),
   * so a misconfiguration stops start-up instead of failing the first upload.
   * Throws a plain Error naming the directory or bucket and endpoint.
   */
  checkReady(): Promise<void>;

  /**
   * Stores `body` under `key`, streaming: memory stays bounded whatever the size.
   * Atomic: readers see the old object or the whole new one, never a partial one.
   */
  put(key: string, body: Readable, opts?: PutOptions): Promise<BlobStat>;

  /**
   * Streams the object, or the inclusive `range` of it. The range must lie inside
   * the object (callers clamp HTTP ranges first, using `stat`), otherwise
   * RANGE_NOT_SATISFIABLE; a missing object is NOT_FOUND. Both are thrown before
   * the stream is returned, so callers can still pick a status code.
   */
  get(key: string, range?: InclusiveRange): Promise<Readable>;

  /** Size of the object, or null when there is none (not an error: callers branch on it). */
  stat(key: string): Promise<BlobStat | null>;

  exists(key: string): Promise<boolean>;

  /**
   * fs driver only: the blob's file, for libraries that read files faster than streams
   * (sharp/libvips seek in them). Read-only; it may be atomically replaced at any time and
   * need not exist (then reading it fails like a NOT_FOUND). S3 has no such thing.
   */
  localPath?(key: string): string;

  /** Idempotent: deleting a missing object succeeds, so retries and sweeps are safe. */
  delete(key: string): Promise<void>;

  /**
   * A URL a browser can fetch without a session, valid for `expiresInSeconds`.
   * fs: our own HMAC-signed `/blobs/…` route (http/blob-download.ts); s3: a presigned GET.
   */
  signedUrl(key: string, opts: SignedUrlOptions): Promise<string>;

  /**
   * Writes one chunk of an upload. Resolves only once the bytes are durable (fs: fsync),
   * because the caller then counts the chunk as received. Rejects — and the chunk must
   * not be counted — when the stream yields more or fewer than `length` bytes
   * (CHUNK_LENGTH_MISMATCH) or the bytes do not hash to `expectedSha256`
   * (CHUNK_DIGEST_MISMATCH); the check happens before the last bytes are committed.
   * Writing the same bytes again is harmless. Note (fs): a rejected write may already
   * have overwritten part of its range in the staging file; only a client sending
   * *different* bytes for a range can cause that, and assembly's whole-file hash
   * catches it. On any failure `body` is destroyed (stream.pipeline semantics), so an HTTP
   * route that still wants to answer should hand in a PassThrough rather than the request.
   */
  writeStagedChunk(
    uploadId: string,
    offset: number,
    length: number,
    body: Readable,
    opts?: WriteStagedChunkOptions,
  ): Promise<void>;

  /**
   * Optional (fs): the chunks that now count as received, so the store can hash the received
   * prefix while the rest still arrives and assembly has less left to read. Returns at once.
   * Never changes what assembly decides: the same bytes are hashed, only earlier.
   */
  noteReceived?(uploadId: string, chunks: readonly ByteRange[]): void;

  /**
   * Streams staged bytes back (proof-of-possession answers, overlap checks). Only ranges
   * made of written chunks are meaningful; RANGE_NOT_SATISFIABLE when the range reaches
   * past what is staged, NOT_FOUND when the upload has nothing staged.
   */
  readStaged(uploadId: string, range: InclusiveRange): Promise<Readable>;

  /**
   * Streams the staged bytes `[0, size)` in order through SHA-256. If size and hash match,
   * the bytes end up under `key` and staging is dropped. On mismatch throws DIGEST_MISMATCH
   * with details `{ expected, actual, expectedSize, actualSize }`, writes NOTHING under
   * `key` (another user's good blob may already live at that content address) and leaves
   * staging as it was for the caller to drop or repair. If `key` already holds the same
   * content (two users completing the same file at once), the call still succeeds and
   * there is still one object. BAD_USER_INPUT when `chunks` leave a gap or reach past
   * `size`. A chunk write still running for the upload cannot change the assembled blob:
   * the fs driver refuses its remaining bytes (CONFLICT); S3 objects are immutable anyway.
   */
  assembleStaged(uploadId: string, opts: AssembleOptions): Promise<{ sha256: string; size: number }>;

  /** Idempotent: forgets everything staged for the upload (cancel, expiry sweep, after a mismatch). */
  dropStaged(uploadId: string): Promise<void>;

  /** Releases sockets/handles; the store is unusable afterwards. */
  close(): Promise<void>;
}

export interface FsBlobStoreSettings {
  driver: 'fs';
  /** Directory holding `objects/`, `staging/` and `tmp/` (one filesystem, so renames are atomic). */
  root: string;
  /** Base of signed download URLs, e.g. `https://photos.example.org`; the route is `/blobs/…`. */
  publicBaseUrl: string;
  /** HMAC key for signed URLs; the same on every instance of a deployment. */
  signingSecret: string;
}

/** The S3 settings as config.ts reads them from the environment (S3_ENDPOINT, S3_BUCKET, …). */
export type S3BlobStoreSettings = Extract<StorageConfig, { driver: 's3' }>;

export type BlobStoreSettings = FsBlobStoreSettings | S3BlobStoreSettings;

/**
 * Key prefix the S3 driver uses for staged chunks in the bucket. Refused as a blob key by
 * both drivers so the contract is the same and a blob can never shadow staged bytes.
 */
const RESERVED_KEY_PREFIXES = ['staging/'];
const MAX_KEY_BYTES = 1024; // S3's own limit

/**
 * Keys become file paths (fs) and object names (s3): anything that could escape the
 * root or mean different things to the two drivers is refused.
 */
export function assertValidBlobKey(key: string): void {
  const reason = blobKeyProblem(key);
  if (reason) throw new AppError('BAD_USER_INPUT', `Invalid blob key: ${reason}`, { key: key.slice(0, 200) });
}

function blobKeyProblem(key: string): string | null {
  if (typeof key !== 'string' || key.length === 0) return 'empty';
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) return `longer than ${MAX_KEY_BYTES} bytes`;
  // NUL and other control characters: truncation and log-forging hazards; backslash: a
  // path separator on Windows.
  if (/[\u0000-\u001f\u007f\\]/.test(key)) return 'control character or backslash';
  if (key.startsWith('/')) return 'absolute path';
  if (RESERVED_KEY_PREFIXES.some((prefix) => key.startsWith(prefix))) return 'reserved prefix';
  for (const segment of key.split('/')) {
    if (segment === '' || segment === '.' || segment === '..') return 'empty, "." or ".." path segment';
  }
  return null;
}

/** Upload ids name a staging file / key prefix; the caller uses uuids. */
export function assertValidUploadId(uploadId: string): void {
  if (typeof uploadId !== 'string' || !/^[A-Za-z0-9_-]{1,128}$/.test(uploadId)) {
    throw new AppError('BAD_USER_INPUT', 'Invalid upload id', { uploadId: String(uploadId).slice(0, 200) });
  }
}

/** Shape check only; whether the range fits the object is each driver's business. */
export function assertWellFormedRange(range: InclusiveRange): void {
  if (!Number.isSafeInteger(range.start) || !Number.isSafeInteger(range.end) || range.start < 0 || range.end < range.start) {
    throw new AppError('RANGE_NOT_SATISFIABLE', 'Invalid byte range', { start: range.start, end: range.end });
  }
}

export function rangeNotSatisfiable(range: InclusiveRange, size: number): AppError {
  return new AppError('RANGE_NOT_SATISFIABLE', `Byte range ${range.start}-${range.end} is outside the ${size}-byte object`, {
    start: range.start,
    end: range.end,
    size,
  });
}

export function assertValidChunk(offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length <= 0) {
    throw new AppError('BAD_USER_INPUT', 'Invalid chunk offset or length', { offset, length });
  }
}

export function assertValidSha256(hex: string): void {
  if (!isSha256Hex(hex) || hex !== hex.toLowerCase()) {
    throw new AppError('BAD_USER_INPUT', 'Expected a lowercase hex SHA-256', { sha256: String(hex).slice(0, 100) });
  }
}
