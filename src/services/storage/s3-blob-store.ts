import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { AppError } from '../app-error.js';
import { assertValidBlobKey, assertValidChunk, assertValidSha256, assertValidUploadId, assertWellFormedRange, rangeNotSatisfiable, type AssembleOptions, type BlobStat, type BlobStore, type InclusiveRange, type PutOptions, type S3BlobStoreSettings, type SignedUrlOptions, type WriteStagedChunkOptions } from './blob-store.js';
import type { ByteRange } from '../../protocol/byte-ranges.js';
import { ChunkVerifier } from './chunk-verifier.js';
import { attachmentDisposition } from './content-disposition.js';
import { streamToS3 } from './s3-multipart-upload.js';
import { httpStatus, s3StorageError } from './s3-errors.js';
import { planAssembly, planStagedReads, type StagedPiece } from './staged-chunks.js';

export interface S3BlobStoreOptions extends Omit<S3BlobStoreSettings, 'driver'> {
  /** Multipart part size (default 8 MiB, minimum 5 MiB). */
  partSize?: number;
  /** Parts uploaded concurrently per stream (default 3); memory ≈ partSize × (this + 1). */
  maxPartsInFlight?: number;
}

const silentLogger = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };

/** Presigned URLs cannot outlive SigV4's limit. */
const MAX_PRESIGN_SECONDS = 7 * 24 * 3600;

/**
 * Blobs as objects in one bucket. Staged chunks are objects too,
 * `staging/<uploadId>/<offset, 16 digits>-<length>`, so any API node can take any chunk.
 * Assembly streams them in order through SHA-256 into a multipart upload addressed
 * directly at the blob key and completes it only if the hash matches (aborts
 * otherwise): S3 shows a multipart object only once completed, so unverified bytes never
 * appear under a content address, and no CopyObject (nor its 5 GiB limit) is needed.
 */
export class S3BlobStore implements BlobStore {
  readonly driver = 's3' as const;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly partSize: number;
  private readonly maxPartsInFlight: number;

  constructor(private readonly options: S3BlobStoreOptions) {
    this.bucket = options.bucket;
    this.partSize = options.partSize ?? 8 * 1024 * 1024;
    this.maxPartsInFlight = options.maxPartsInFlight ?? 3;
    this.client = new S3Client({
      endpoint: options.endpoint,
      region: options.region,
      forcePathStyle: options.forcePathStyle,
      credentials:
        options.accessKeyId && options.secretAccessKey
          ? { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey }
          : undefined,
      // Since SDK 3.729 the default is WHEN_SUPPORTED: streamed bodies are sent with
      // aws-chunked framing and trailing CRC32 checksums. S3-compatible servers that do
      // not understand it (s3rver) store the framing as if it were content. We verify
      // SHA-256 ourselves where it matters, so ask for checksums only where S3 demands them.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // The SDK logs nothing by default, except a console warning whenever a streamed
      // request fails — which is how writeStagedChunk refuses a bad chunk. Callers get
      // every failure as an AppError, so keep the console quiet.
      logger: silentLogger,
    });
  }

  async checkReady(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (error) {
      const status = httpStatus(error);
      throw new Error(
        `S3 bucket "${this.bucket}" is not reachable at ${this.options.endpoint ?? `AWS (${this.options.region})`}: ` +
          `${(error as Error).name}${status ? ` (HTTP ${status})` : ''}`,
      );
    }
  }

  async put(key: string, body: Readable, opts: PutOptions = {}): Promise<BlobStat> {
    assertValidBlobKey(key);
    try {
      return await streamToS3({
        client: this.client,
        bucket: this.bucket,
        key,
        body,
        contentType: opts.contentType,
        partSize: this.partSize,
        maxPartsInFlight: this.maxPartsInFlight,
      });
    } catch (error) {
      throw s3StorageError(this.bucket, 'PutObject', key, error);
    }
  }

  async get(key: string, range?: InclusiveRange): Promise<Readable> {
    assertValidBlobKey(key);
    if (range) assertWellFormedRange(range);
    return this.openObject(key, range);
  }

  async stat(key: string): Promise<BlobStat | null> {
    assertValidBlobKey(key);
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { size: head.ContentLength ?? 0 };
    } catch (error) {
      if (httpStatus(error) === 404) return null;
      throw s3StorageError(this.bucket, 'HeadObject', key, error);
    }
  }

  async exists(key: string): Promise<boolean> {
    return (await this.stat(key)) !== null;
  }

  async delete(key: string): Promise<void> {
    assertValidBlobKey(key);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key })); // S3 deletes are idempotent
    } catch (error) {
      if (httpStatus(error) === 404) return;
      throw s3StorageError(this.bucket, 'DeleteObject', key, error);
    }
  }

  async signedUrl(key: string, opts: SignedUrlOptions): Promise<string> {
    assertValidBlobKey(key);
    const command = new GetObjectCommand({
      Bucket: this.bucket,
      Key: key,
      ResponseContentDisposition: opts.downloadName !== undefined ? attachmentDisposition(opts.downloadName) : undefined,
      ResponseContentType: opts.contentType,
    });
    const expiresIn = Math.min(MAX_PRESIGN_SECONDS, Math.max(1, Math.ceil(opts.expiresInSeconds)));
    return getSignedUrl(this.client, command, { expiresIn });
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
    const key = stagedChunkKey(uploadId, { offset, length });

    // The verifier withholds the last bytes until length and digest are checked; on a
    // failed check it errors, we abort the request, and S3 (which needs all
    // Content-Length bytes to create the object) stores nothing.
    const verifier = new ChunkVerifier(length, opts.expectedSha256);
    const abort = new AbortController();
    let streamError: unknown;
    body.pipe(verifier);
    const onError = (error: unknown) => {
      streamError ??= error;
      abort.abort();
      body.destroy();
      verifier.destroy();
    };
    body.on('error', onError);
    verifier.on('error', onError);
    // A body that failed (or was cut off) before it got here emits nothing more: without this the
    // PUT would wait for bytes that never come.
    if (body.errored || (body.destroyed && !body.readableEnded)) onError(body.errored ?? new AppError('CHUNK_LENGTH_MISMATCH', 'The chunk ended before all its bytes arrived'));
    try {
      // A PUT of a stream needs its length up front, and this is why: no chunked framing.
      await this.client.send(
        new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: verifier, ContentLength: length }),
        { abortSignal: abort.signal },
      );
    } catch (error) {
      // Same as stream.pipeline (the fs driver): a failed write destroys the body.
      body.destroy();
      verifier.destroy();
      throw streamError ?? s3StorageError(this.bucket, 'PutObject', key, error);
    }
    // The listeners stay: an 'error' emitted after we return must not crash the process.
    if (streamError) throw streamError;
  }

  async readStaged(uploadId: string, range: InclusiveRange): Promise<Readable> {
    assertValidUploadId(uploadId);
    assertWellFormedRange(range);
    const chunks = await this.listStagedChunks(uploadId);
    if (chunks.length === 0) throw new AppError('NOT_FOUND', 'Nothing is staged for this upload', { uploadId });
    const plan = planStagedReads(chunks, range);
    if (!Array.isArray(plan)) {
      throw new AppError('RANGE_NOT_SATISFIABLE', 'The range reaches bytes that are not staged', {
        start: range.start,
        end: range.end,
        missingFrom: plan.gapAt,
      });
    }
    return Readable.from(this.readPieces(uploadId, plan), { objectMode: false });
  }

  async assembleStaged(uploadId: string, opts: AssembleOptions): Promise<{ sha256: string; size: number }> {
    assertValidUploadId(uploadId);
    assertValidBlobKey(opts.key);
    assertValidSha256(opts.expectedSha256);
    const plan = planAssembly(opts.chunks, opts.size);
    const expected = opts.expectedSha256.toLowerCase();

    const hash = createHash('sha256');
    const pieces = this.readPieces(uploadId, plan);
    async function* hashed(): AsyncGenerator<Buffer> {
      for await (const piece of pieces) {
        hash.update(piece);
        yield piece;
      }
    }
    let actual = '';
    try {
      await streamToS3({
        client: this.client,
        bucket: this.bucket,
        key: opts.key,
        body: hashed(),
        partSize: this.partSize,
        maxPartsInFlight: this.maxPartsInFlight,
        beforeCommit: (size) => {
          actual = hash.digest('hex');
          if (actual !== expected || size !== opts.size) {
            throw new AppError('DIGEST_MISMATCH', 'The assembled file does not match its declared SHA-256 and size', {
              expected,
              actual,
              expectedSize: opts.size,
              actualSize: size,
            });
          }
        },
      });
    } catch (error) {
      if (error instanceof AppError && error.code === 'RANGE_NOT_SATISFIABLE') {
        // A counted chunk is now shorter than counted (only possible on servers without
        // atomic PUTs, such as s3rver, while the chunk is being re-sent): the staged bytes
        // are not the declared file, which is what a mismatch means.
        throw new AppError('DIGEST_MISMATCH', 'A staged chunk changed during assembly', {
          expected,
          actual: null,
          expectedSize: opts.size,
          actualSize: null,
        });
      }
      throw s3StorageError(this.bucket, 'assembly', opts.key, error);
    }
    await this.dropStaged(uploadId);
    return { sha256: actual, size: opts.size };
  }

  async dropStaged(uploadId: string): Promise<void> {
    assertValidUploadId(uploadId);
    const keys = (await this.listStagedObjects(uploadId)).map((object) => object.key);
    // DeleteObjects takes at most 1000 keys per request.
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      try {
        const result = await this.client.send(
          new DeleteObjectsCommand({
            Bucket: this.bucket,
            Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
          }),
        );
        if (result.Errors?.length) {
          throw new AppError('STORAGE_ERROR', `S3 DeleteObjects failed for ${result.Errors.length} staged chunks`, { uploadId });
        }
      } catch (error) {
        throw s3StorageError(this.bucket, 'DeleteObjects', `staging/${uploadId}/`, error);
      }
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  /**
   * GET with an exact length guarantee. NOT_FOUND and RANGE_NOT_SATISFIABLE are thrown
   * before returning. The Content-Range is checked rather than trusted: S3 silently
   * clamps a range that ends past the object (our contract refuses it), and s3rver reads
   * `bytes=0-0` as "from 0 to the end" (it treats an end of 0 as absent), which we trim.
   */
  private async openObject(key: string, range?: InclusiveRange): Promise<Readable> {
    let response;
    try {
      response = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: range ? `bytes=${range.start}-${range.end}` : undefined }),
      );
    } catch (error) {
      throw s3StorageError(this.bucket, 'GetObject', key, error, range);
    }
    const body = response.Body as Readable;
    if (!range) return body;

    const served = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(response.ContentRange ?? '');
    if (!served || Number(served[1]) !== range.start) {
      body.destroy();
      throw new AppError('STORAGE_ERROR', `S3 GetObject ignored the requested range of ${key}`);
    }
    const total = Number(served[3]);
    if (range.end >= total) {
      body.destroy();
      throw rangeNotSatisfiable(range, total);
    }
    if (Number(served[2]) === range.end) return body;
    return Readable.from(takeBytes(body, range.end - range.start + 1), { objectMode: false });
  }

  /** Streams the planned pieces of staged chunks in order, each checked for its exact length. */
  private async *readPieces(uploadId: string, plan: readonly StagedPiece[]): AsyncGenerator<Buffer> {
    for (const piece of plan) {
      const key = stagedChunkKey(uploadId, piece.chunk);
      const stream = await this.openObject(key, {
        start: piece.start - piece.chunk.offset,
        end: piece.end - piece.chunk.offset,
      }).catch((error: unknown) => {
        // A counted chunk that is gone means staging was dropped or swept under us.
        if (error instanceof AppError && error.code === 'NOT_FOUND') {
          throw new AppError('NOT_FOUND', 'A staged chunk is missing', { uploadId, ...piece.chunk });
        }
        throw error;
      });
      let received = 0;
      for await (const bytes of stream as AsyncIterable<Buffer>) {
        received += bytes.length;
        yield bytes;
      }
      if (received !== piece.end - piece.start + 1) {
        throw new AppError('STORAGE_ERROR', `Staged chunk ${key} returned ${received} bytes, expected ${piece.end - piece.start + 1}`);
      }
    }
  }

  private async listStagedChunks(uploadId: string): Promise<ByteRange[]> {
    return (await this.listStagedObjects(uploadId)).flatMap((object) => (object.chunk ? [object.chunk] : []));
  }

  private async listStagedObjects(uploadId: string): Promise<{ key: string; chunk?: ByteRange }[]> {
    const prefix = `staging/${uploadId}/`;
    const objects: { key: string; chunk?: ByteRange }[] = [];
    let continuationToken: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: continuationToken }),
        );
      } catch (error) {
        throw s3StorageError(this.bucket, 'ListObjectsV2', prefix, error);
      }
      for (const object of page.Contents ?? []) {
        if (!object.Key) continue;
        const name = /^(\d{16})-(\d+)$/.exec(object.Key.slice(prefix.length));
        objects.push({
          key: object.Key,
          // Only chunks whose stored size is what their name says count as staged bytes.
          chunk:
            name && Number(name[2]) === object.Size ? { offset: Number(name[1]), length: Number(name[2]) } : undefined,
        });
      }
      continuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (continuationToken);
    return objects;
  }
}

export function stagedChunkKey(uploadId: string, chunk: ByteRange): string {
  // Zero-padded offsets sort in byte order in listings.
  return `staging/${uploadId}/${String(chunk.offset).padStart(16, '0')}-${chunk.length}`;
}

/** The first `length` bytes of `source`; leaving the loop early destroys the source. */
async function* takeBytes(source: Readable, length: number): AsyncGenerator<Buffer> {
  let remaining = length;
  for await (const bytes of source as AsyncIterable<Buffer>) {
    const piece = bytes.length <= remaining ? bytes : bytes.subarray(0, remaining);
    remaining -= piece.length;
    yield piece;
    if (remaining === 0) return;
  }
  if (remaining > 0) throw new AppError('STORAGE_ERROR', `S3 returned ${length - remaining} of ${length} bytes`);
}
