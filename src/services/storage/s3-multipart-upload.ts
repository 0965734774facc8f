import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
  type CompletedPart,
  type S3Client,
} from '@aws-sdk/client-s3';
import { AppError } from '../app-error.js';

/** S3 refuses parts under 5 MiB (except the last) and more than 10,000 parts. */
export const MIN_PART_SIZE = 5 * 1024 * 1024;
const MAX_PARTS = 10_000;

export interface StreamToS3Options {
  client: S3Client;
  bucket: string;
  key: string;
  body: AsyncIterable<Uint8Array>;
  contentType?: string;
  /** Bytes per part; memory use is about partSize × (maxPartsInFlight + 1). */
  partSize: number;
  maxPartsInFlight: number;
  /**
   * Runs after the last byte has been uploaded and before the object becomes visible
   * under `key`. Throwing cancels the upload: nothing is written under `key`. This is
   * what lets assembly verify a hash while streaming straight to the content address.
   */
  beforeCommit?: (size: number) => void | Promise<void>;
}

/**
 * Streams a body of unknown length into one S3 object with bounded memory. The object
 * appears atomically: a body that fits in one part is a single PutObject, sent only once
 * the body has ended; a larger one is a multipart upload, which S3 makes visible only at
 * CompleteMultipartUpload. Each part is a Buffer with a known length, so the SDK sends a
 * plain body with Content-Length, never aws-chunked framing. (Our own instead of
 * @aws-sdk/lib-storage: that needs ListParts, which s3rver lacks, and hides the commit step.)
 */
export async function streamToS3(opts: StreamToS3Options): Promise<{ size: number }> {
  const { client, bucket, key } = opts;
  if (opts.partSize < MIN_PART_SIZE) throw new Error(`partSize must be at least ${MIN_PART_SIZE} bytes`);

  let uploadId: string | undefined;
  const completed: CompletedPart[] = [];
  const inFlight = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  let partNumber = 0;
  let size = 0;

  const sendPart = (data: Buffer) => {
    const number = ++partNumber;
    if (number > MAX_PARTS) {
      throw new AppError('PAYLOAD_TOO_LARGE', `Objects are limited to ${MAX_PARTS} parts of ${opts.partSize} bytes`, {
        maxBytes: MAX_PARTS * opts.partSize,
      });
    }
    const part: Promise<void> = client
      .send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: number, Body: data }))
      .then(
        (result) => void completed.push({ PartNumber: number, ETag: result.ETag }),
        (error: unknown) => void (failure ??= { error }),
      )
      .finally(() => inFlight.delete(part));
    inFlight.add(part);
  };

  try {
    for await (const piece of opts.body) {
      pending.push(piece);
      pendingBytes += piece.length;
      size += piece.length;
      if (pendingBytes < opts.partSize) continue;

      uploadId ??= await createMultipartUpload(opts);
      const data = Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
      sendPart(data);
      // Back-pressure: stop pulling from the body while enough parts are on the wire.
      while (inFlight.size >= opts.maxPartsInFlight && !failure) await Promise.race(inFlight);
      if (failure) throw failure.error;
    }
    const rest = Buffer.concat(pending, pendingBytes);
    pending = [];

    if (uploadId === undefined) {
      await opts.beforeCommit?.(size);
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: rest, ContentType: opts.contentType }));
      return { size };
    }

    if (rest.length > 0) sendPart(rest);
    await Promise.all(inFlight);
    if (failure) throw failure.error;
    await opts.beforeCommit?.(size);
    completed.sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
    await client.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        UploadId: uploadId,
        MultipartUpload: { Parts: completed },
      }),
    );
    return { size };
  } catch (error) {
    if (uploadId !== undefined) {
      await Promise.allSettled(inFlight);
      // Best effort: s3rver does not implement AbortMultipartUpload, and a failed abort
      // must not hide the real error. On real S3 a lifecycle rule for incomplete
      // multipart uploads collects what is left.
      await client
        .send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }))
        .catch(() => undefined);
    }
    throw error;
  }
}

async function createMultipartUpload(opts: StreamToS3Options): Promise<string> {
  const created = await opts.client.send(
    new CreateMultipartUploadCommand({ Bucket: opts.bucket, Key: opts.key, ContentType: opts.contentType }),
  );
  if (!created.UploadId) throw new Error('CreateMultipartUpload returned no UploadId');
  return created.UploadId;
}
