import { eq, sql } from 'drizzle-orm';
import { blobs, uploadChunks, uploads, type AssetRow, type UploadRow } from '../../db/schema/index.js';
import { runAgainOnConflict } from '../../db/transaction.js';
import { missingRanges } from '../../protocol/byte-ranges.js';
import { AppError, isAppError } from '../app-error.js';
import { blobKey } from '../blobs.js';
import type { Viewer } from '../devices.js';
import type { ProgressChange } from '../sync/sync-plan.js';
import type { UploadContext } from './upload-context.js';
import { lockUpload, receivedChunks } from './upload-sessions.js';

/** A completion that has not finished after this long is taken to have died with its server. */
export const STALE_COMPLETION_SECONDS = 600;

/**
 * U7: finishes an upload whose bytes are all there (the chunk that completes the file does it by
 * itself; this is the retry). Idempotent: a finished upload answers with its asset; one whose
 * completion died with its server is run again.
 */
export async function completeUpload(ctx: UploadContext, viewer: Viewer, uploadId: string): Promise<AssetRow> {
  const upload = await ctx.db.transaction(async (tx) => {
    const upload = await lockUpload(ctx, tx, viewer, uploadId);
    if (upload.state === 'done') return upload; // (a failed one was refused by lockUpload)
    const stale = upload.state === 'completing' && Date.now() - upload.lastActivityAt.getTime() > STALE_COMPLETION_SECONDS * 1000;
    if (upload.state === 'completing' && !stale) throw new AppError('UPLOAD_NOT_OPEN', 'The upload is completing; ask again in a moment', { state: upload.state });
    const missing = missingRanges(upload.size, await receivedChunks(ctx, upload.id, tx));
    if (missing.length > 0) throw new AppError('UPLOAD_NOT_OPEN', 'Bytes are still missing', { missing });
    const [updated] = await tx.update(uploads).set({ state: 'completing', lastActivityAt: sql`now()` }).where(eq(uploads.id, upload.id)).returning();
    await ctx.syncPlan.uploadProgress(tx, updated!, { state: 'verifying', bytes: updated!.size });
    return updated!;
  });
  if (upload.state === 'done') {
    // Done, but its asset was deleted (or evicted) since: it is not brought back.
    if (!upload.assetId) throw new AppError('NOT_FOUND', 'The asset this upload made was deleted');
    return ctx.library.getAsset(viewer, upload.assetId);
  }
  return finishUpload(ctx, viewer, upload);
}

/**
 * Assembles the staged bytes at their content address, verifying the whole SHA-256 and size
 * (a mismatch discards them and fails the upload), and adds the asset (its thumbnails and facts are made in the background).
 * The upload is in state `completing`, claimed by this caller.
 */
export async function finishUpload(ctx: UploadContext, viewer: Viewer, upload: UploadRow): Promise<AssetRow> {
  const { storage, blobs: blobService } = ctx;
  const key = blobKey(upload.sha256);
  /** The upload's new state, with the progress event that tells its watchers (one transaction). */
  const moveTo = (set: Partial<typeof uploads.$inferInsert>, progress: ProgressChange) =>
    ctx.db.transaction(async (tx) => {
      await tx.update(uploads).set({ ...set, lastActivityAt: sql`now()` }).where(eq(uploads.id, upload.id));
      await ctx.syncPlan.uploadProgress(tx, upload, progress);
    });
  await blobService.pin(upload.sha256, upload.size);
  // A long assembly keeps the upload looking alive, so a retry does not take it for a dead one.
  const heartbeat = setInterval(() => {
    void ctx.db.update(uploads).set({ lastActivityAt: sql`now()` }).where(eq(uploads.id, upload.id)).catch(() => {});
  }, 60_000);
  try {
    const chunks = (await receivedChunks(ctx, upload.id)).map(({ offset, length }) => ({ offset, length }));
    await storage.assembleStaged(upload.id, { size: upload.size, chunks, expectedSha256: upload.sha256, key });
  } catch (error) {
    if (isAppError(error) && error.code === 'DIGEST_MISMATCH') {
      await storage.dropStaged(upload.id);
      const message = `The assembled file does not match the declared SHA-256 and size; it was discarded (${String(error.details.actual ?? 'different hash')})`;
      await ctx.db.delete(uploadChunks).where(eq(uploadChunks.uploadId, upload.id));
      await moveTo({ state: 'failed', failure: message, failureCode: 'UPLOAD_DIGEST_MISMATCH', receivedBytes: 0 }, { state: 'failed', bytes: 0, error: { code: 'UPLOAD_DIGEST_MISMATCH', message } });
      throw new AppError('UPLOAD_DIGEST_MISMATCH', message, { expected: upload.sha256, actual: error.details.actual, expectedSize: upload.size, actualSize: error.details.actualSize });
    }
    // Staging gone while the content address holds the bytes: an earlier completion
    // assembled them and died before recording it (only assembly removes a full staging).
    const stored = isAppError(error) && error.code === 'NOT_FOUND' && (await storage.stat(key))?.size === upload.size;
    if (!stored) {
      if (isAppError(error) && error.code === 'NOT_FOUND') {
        // The staged bytes are gone (e.g. a crash in the middle of assembly): forget the chunks,
        // so the interrupt list asks for them again instead of leaving the upload stuck.
        await storage.dropStaged(upload.id);
        await ctx.db.delete(uploadChunks).where(eq(uploadChunks.uploadId, upload.id));
        await moveTo({ state: 'open', receivedBytes: 0 }, { state: 'pending', bytes: 0 });
        throw new AppError('UPLOAD_NOT_OPEN', 'The staged bytes were lost; send the file again (check it to see what is missing)', { missing: [{ offset: 0, length: upload.size }] });
      }
      await ctx.db.update(uploads).set({ state: 'open' }).where(eq(uploads.id, upload.id));
      throw error;
    }
  } finally {
    clearInterval(heartbeat);
  }
  await blobService.markStored(upload.sha256, upload.size); // verified by assembly (or found stored with that size)
  // Thumbnails and facts follow in the background (addAsset queues them): the upload is done now.
  try {
    return await runAgainOnConflict(() =>
      ctx.db.transaction(async (tx) => {
        const [blob] = await tx.select().from(blobs).where(eq(blobs.sha256, upload.sha256)).for('update');
        const { asset } = await ctx.library.addAsset(tx, {
          userId: upload.userId,
          deviceId: upload.deviceId,
          blob: blob!,
          name: upload.name,
          takenAt: upload.takenAt,
          perceptualHash: upload.phash,
          folderId: upload.folderId,
          origin: 'upload',
        });
        await Promise.all([
          tx.update(uploads).set({ state: 'done', assetId: asset.id, receivedBytes: upload.size, lastActivityAt: sql`now()` }).where(eq(uploads.id, upload.id)),
          tx.delete(uploadChunks).where(eq(uploadChunks.uploadId, upload.id)),
          // Delivered only if this transaction commits, i.e. with the asset.
          ctx.syncPlan.uploadProgress(tx, upload, { state: 'done', bytes: upload.size, assetId: asset.id }),
        ]);
        return asset;
      }),
    );
  } catch (error) {
    if (isAppError(error) && error.code === 'QUOTA_EXCEEDED') {
      await moveTo({ state: 'failed', failure: error.message, failureCode: error.code }, { state: 'failed', bytes: 0, error: { code: error.code, message: error.message } });
    } else {
      // Anything else (a deadlock, a lost connection): the bytes are stored and pinned, the
      // chunks still counted; back to open, so that completeUpload finishes at once instead of
      // waiting out a stale completion.
      await moveTo({ state: 'open' }, { state: 'uploading', bytes: upload.size }).catch(() => {});
    }
    throw error;
  }
}
