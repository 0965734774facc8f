import { eq } from 'drizzle-orm';
import { uploads } from '../../db/schema/index.js';
import { AppError } from '../app-error.js';
import type { Viewer } from '../devices.js';
import type { UploadContext } from './upload-context.js';
import { lockUpload } from './upload-sessions.js';

/**
 * The client gives up on a file: its upload session goes, with the bytes staged so far, and the
 * file leaves its folders' sync plans (state cancelled: no longer counted). A finished or
 * completing upload cannot be cancelled (UPLOAD_NOT_OPEN); checking the file again starts over.
 */
export async function cancelUpload(ctx: UploadContext, viewer: Viewer, uploadId: string): Promise<void> {
  const upload = await ctx.db.transaction(async (tx) => {
    const upload = await lockUpload(ctx, tx, viewer, uploadId).catch((error: unknown) => {
      // An expired session may be cancelled all the same.
      if (error instanceof AppError && error.code === 'UPLOAD_EXPIRED') return ctx.access.upload(viewer, 'change', uploadId, { tx, lock: true });
      throw error;
    });
    if (upload.state === 'done' || upload.state === 'completing') {
      throw new AppError('UPLOAD_NOT_OPEN', upload.state === 'done' ? 'The upload is finished; delete the asset instead' : 'The upload is completing', { state: upload.state });
    }
    await ctx.syncPlan.uploadProgress(tx, upload, { state: 'cancelled', bytes: 0 });
    await tx.delete(uploads).where(eq(uploads.id, upload.id));
    return upload;
  });
  // The bytes go once the session is gone for good (housekeeping would remove them otherwise).
  await ctx.storage.dropStaged(upload.id);
}
