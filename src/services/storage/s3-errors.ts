import { AppError } from '../app-error.js';
import type { InclusiveRange } from './blob-store.js';

/**
 * SDK failures as domain errors. The message names the operation, bucket, key and the
 * S3 error name, never request headers or credentials.
 */
export function s3StorageError(bucket: string, operation: string, key: string, error: unknown, range?: InclusiveRange): unknown {
  // Domain errors, and failures of the caller's own body stream, are not S3's to explain.
  if (error instanceof AppError || !isS3Failure(error)) return error;
  const status = httpStatus(error);
  const name = (error as Error | undefined)?.name ?? 'Error';
  if (status === 404 || name === 'NoSuchKey' || name === 'NotFound') {
    return new AppError('NOT_FOUND', 'No such blob', { key });
  }
  if (range && (status === 416 || name === 'InvalidRange')) {
    return new AppError('RANGE_NOT_SATISFIABLE', `Byte range ${range.start}-${range.end} is outside the object`, {
      start: range.start,
      end: range.end,
    });
  }
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return new AppError(
    'STORAGE_ERROR',
    `S3 ${operation} of s3://${bucket}/${key} failed: ${name}${status ? ` (HTTP ${status})` : ''}${code ? ` ${code}` : ''}`,
  );
}

/** Errors from the SDK (an answer from S3) or from the network on the way to it. */
function isS3Failure(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  if ('$metadata' in error || '$fault' in error) return true;
  const { name, code } = error as NodeJS.ErrnoException;
  return (
    name === 'TimeoutError' ||
    ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH'].includes(code ?? '')
  );
}

export function httpStatus(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}
