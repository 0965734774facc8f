import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { and, eq, inArray, sql } from 'drizzle-orm';
import { uploadChunks, uploads, type AssetRow } from '../../db/schema/index.js';
import { ASYNC_COMMIT } from '../../db/transaction.js';
import { missingRanges, overlaps } from '../../protocol/byte-ranges.js';
import { normalizeSha256 } from '../../protocol/sha256.js';
import { AppError } from '../app-error.js';
import type { Viewer } from '../devices.js';
import { finishUpload } from './complete-upload.js';
import type { UploadContext } from './upload-context.js';
import { getUpload, lockUpload, receivedChunks, viewWith, type UploadView } from './upload-sessions.js';

/** A chunk reservation lives this long without renewal; writers renew it while bytes flow. */
const LEASE_SECONDS = 60;

export interface ChunkInput {
  uploadId: string;
  offset: number;
  length: number;
  /** Hex SHA-256 of the chunk's bytes. */
  sha256: string;
  body: Readable;
}

export interface ChunkResult {
  upload: UploadView;
  /** Set when this chunk was the last one missing and the upload completed. */
  asset: AssetRow | null;
}

/**
 * U5: stores one chunk. It counts only once its bytes are durable and its digest matched. Any
 * range, any order, in parallel: a chunk first reserves its byte range (a row with a lease the
 * writer renews), so parallel chunks can never overlap; a re-sent received chunk is a no-op.
 * The chunk that completes the file completes the upload (U7).
 */
export async function commitChunk(ctx: UploadContext, viewer: Viewer, input: ChunkInput): Promise<ChunkResult> {
  const sha256 = normalizeSha256(input.sha256);
  if (sha256 === null) throw new AppError('BAD_USER_INPUT', 'Chunk digest must be a SHA-256', { field: 'sha256' });
  if (!Number.isSafeInteger(input.offset) || input.offset < 0) throw new AppError('BAD_USER_INPUT', 'Chunk offset must be a whole number ≥ 0', { field: 'offset' });
  if (!Number.isSafeInteger(input.length) || input.length < 1) throw new AppError('BAD_USER_INPUT', 'A chunk has at least one byte', { field: 'length' });
  const { limits } = ctx;
  if (input.length > limits.maxChunkBytes) throw new AppError('CHUNK_TOO_LARGE', `Chunks have at most ${limits.maxChunkBytes} bytes`, { ...limits });

  const writer = randomUUID();
  const reserved = await ctx.db.transaction(async (tx) => {
    // Sent together (pipelined, run in order): the setting costs no round trip of its own.
    const [, upload] = await Promise.all([tx.execute(ASYNC_COMMIT), lockUpload(ctx, tx, viewer, input.uploadId)]);
    if (upload.state !== 'open') return { upload, duplicate: true };
    const end = input.offset + input.length;
    if (end > upload.size) throw new AppError('CHUNK_OUT_OF_RANGE', `The chunk ends at byte ${end}, past the file's ${upload.size} bytes`, { size: upload.size });
    const chunks = await tx.select().from(uploadChunks).where(eq(uploadChunks.uploadId, upload.id));
    const live = chunks.filter((c) => c.state === 'received' || (c.leaseUntil !== null && c.leaseUntil.getTime() > Date.now()));
    const same = chunks.find((c) => c.offset === input.offset && c.length === input.length);
    if (same?.state === 'received') {
      if (same.sha256 !== sha256) throw new AppError('CHUNK_OVERLAP', 'Different bytes were already received for this range', { offset: same.offset, length: same.length });
      return { upload, duplicate: true };
    }
    const conflict = live.find((c) => c !== same && overlaps(c, input));
    if (conflict) throw new AppError('CHUNK_OVERLAP', `The chunk overlaps ${conflict.state === 'received' ? 'received' : 'in-flight'} bytes ${conflict.offset}–${conflict.offset + conflict.length - 1}`, { offset: conflict.offset, length: conflict.length });
    const startsNext = end === upload.size || chunks.some((c) => c.offset === end);
    if (input.length < limits.minChunkBytes && !startsNext) throw new AppError('CHUNK_TOO_SMALL', `Chunks have at least ${limits.minChunkBytes} bytes unless they end the file or meet a received chunk`, { ...limits });
    // Reservations of dead writers that overlap this chunk are cleared.
    const dead = chunks.filter((c) => c !== same && c.state === 'writing' && overlaps(c, input));
    if (dead.length > 0) await tx.delete(uploadChunks).where(and(eq(uploadChunks.uploadId, upload.id), inArray(uploadChunks.offset, dead.map((c) => c.offset))));
    await tx
      .insert(uploadChunks)
      .values({ uploadId: upload.id, offset: input.offset, length: input.length, sha256, state: 'writing', writer, leaseUntil: sql`now() + make_interval(secs => ${LEASE_SECONDS})` })
      .onConflictDoUpdate({
        target: [uploadChunks.uploadId, uploadChunks.offset],
        set: { length: input.length, sha256, state: 'writing', writer, leaseUntil: sql`now() + make_interval(secs => ${LEASE_SECONDS})`, updatedAt: sql`now()` },
      });
    await tx.update(uploads).set({ lastActivityAt: sql`now()` }).where(eq(uploads.id, upload.id));
    return { upload, duplicate: false };
  });
  if (reserved.duplicate) {
    input.body.resume();
    const upload = await getUpload(ctx, viewer, input.uploadId);
    return { upload, asset: upload.assetId ? await ctx.library.getAsset(viewer, upload.assetId) : null };
  }

  // A slow chunk keeps its reservation and its session alive: with a short idle limit, the
  // session (and its staged bytes) must not expire under a chunk that is still arriving.
  const renew = setInterval(() => {
    void ctx.db
      .update(uploadChunks)
      .set({ leaseUntil: sql`now() + make_interval(secs => ${LEASE_SECONDS})` })
      .where(and(eq(uploadChunks.uploadId, input.uploadId), eq(uploadChunks.offset, input.offset), eq(uploadChunks.writer, writer)))
      .catch(() => {});
    void ctx.db.update(uploads).set({ lastActivityAt: sql`now()` }).where(and(eq(uploads.id, input.uploadId), eq(uploads.state, 'open'))).catch(() => {});
  }, Math.min(LEASE_SECONDS / 3, ctx.config.uploads.sessionIdleSeconds / 3) * 1000);
  const receiving = ctx.foreground.begin();
  try {
    await ctx.storage.writeStagedChunk(input.uploadId, input.offset, input.length, input.body, { expectedSha256: sha256 });
  } catch (error) {
    await ctx.db
      .delete(uploadChunks)
      .where(and(eq(uploadChunks.uploadId, input.uploadId), eq(uploadChunks.offset, input.offset), eq(uploadChunks.writer, writer)))
      .catch(() => {});
    throw error;
  } finally {
    clearInterval(renew);
    receiving();
  }

  const { upload, complete, received } = await ctx.db.transaction(async (tx) => {
    const [, upload] = await Promise.all([tx.execute(ASYNC_COMMIT), lockUpload(ctx, tx, viewer, input.uploadId)]);
    await tx
      .update(uploadChunks)
      .set({ state: 'received', leaseUntil: null, updatedAt: sql`now()` })
      .where(and(eq(uploadChunks.uploadId, upload.id), eq(uploadChunks.offset, input.offset), eq(uploadChunks.writer, writer)));
    const received = await receivedChunks(ctx, upload.id, tx);
    const receivedBytes = received.reduce((n, c) => n + c.length, 0);
    const complete = upload.state === 'open' && missingRanges(upload.size, received).length === 0;
    const [updated] = await tx
      .update(uploads)
      .set({ receivedBytes, lastActivityAt: sql`now()`, ...(complete ? { state: 'completing' as const } : {}) })
      .where(eq(uploads.id, upload.id))
      .returning();
    await ctx.syncPlan.uploadProgress(tx, updated!, complete ? { state: 'verifying', bytes: updated!.size } : { state: 'uploading', bytes: receivedBytes });
    return { upload: updated!, complete, received };
  });
  ctx.storage.noteReceived?.(upload.id, received);
  if (!complete) return { upload: viewWith(ctx, upload, received), asset: null };
  const asset = await finishUpload(ctx, viewer, upload);
  // Done, as finishUpload's transaction recorded it: no need to read it back.
  return { upload: viewWith(ctx, { ...upload, state: 'done', assetId: asset.id, receivedBytes: upload.size, lastActivityAt: new Date() }, []), asset };
}
