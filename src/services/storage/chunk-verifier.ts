import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { AppError } from '../app-error.js';

/**
 * Passes a chunk's bytes through while checking their count (and optionally SHA-256),
 * holding back the most recent piece until the end of the stream is seen. Why hold back:
 * a driver must never *commit* a bad chunk. With S3 the object exists once its last
 * declared byte arrives, so the last piece is released only after the checks pass; a
 * failed check errors the stream first, and the driver aborts the request. A stream that
 * grows past `length` fails as soon as it does, before the excess goes anywhere.
 */
export class ChunkVerifier extends Transform {
  private received = 0;
  private held: Buffer | null = null;
  private readonly hash: Hash | null;

  constructor(
    private readonly length: number,
    private readonly expectedSha256?: string,
  ) {
    super();
    this.hash = expectedSha256 === undefined ? null : createHash('sha256');
  }

  override _transform(piece: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.received += piece.length;
    if (this.received > this.length) {
      callback(lengthMismatch(this.length, `more than ${this.length}`));
      return;
    }
    this.hash?.update(piece);
    if (this.held) this.push(this.held);
    this.held = piece;
    callback();
  }

  override _flush(callback: TransformCallback): void {
    if (this.received !== this.length) {
      callback(lengthMismatch(this.length, this.received));
      return;
    }
    if (this.hash && this.expectedSha256 !== undefined) {
      const actual = this.hash.digest('hex');
      if (actual !== this.expectedSha256.toLowerCase()) {
        callback(chunkDigestMismatch(this.expectedSha256.toLowerCase(), actual));
        return;
      }
    }
    callback(null, this.held ?? undefined);
  }
}

/** A chunk whose bytes do not hash to the digest it came with (every store says it the same way). */
export function chunkDigestMismatch(expected: string, actual: string): AppError {
  return new AppError('CHUNK_DIGEST_MISMATCH', 'The chunk does not match its SHA-256', { expected, actual });
}

function lengthMismatch(expected: number, actual: number | string): AppError {
  return new AppError('CHUNK_LENGTH_MISMATCH', `The chunk body has ${actual} bytes, ${expected} were declared`, {
    expected,
    actual,
  });
}
