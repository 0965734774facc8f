import type { AssetRow } from '../../db/schema/index.js';
import type { Principal } from '../access.js';
import type { Viewer } from '../devices.js';
import { checkUploads, type CheckAnswer } from './check-uploads.js';
import { claimUpload } from './claim-upload.js';
import { commitChunk, type ChunkInput, type ChunkResult } from './commit-chunk.js';
import { cancelUpload } from './cancel-upload.js';
import { completeUpload } from './complete-upload.js';
import { expireIdleSessions } from './expire-idle-sessions.js';
import { createUploadContext, type UploadContext, type UploadDeps } from './upload-context.js';
import { getUpload, startUpload, watchUpload, type CheckFile, type UploadView } from './upload-sessions.js';

/**
 * Check-and-upload (U1–U7, S3): the detection request, instant upload after a proof of
 * possession, resumable out-of-order chunks, and verified completion. One step of the protocol
 * per file of this folder; this class is what the schema and the HTTP routes call.
 */
export class UploadService {
  private readonly ctx: UploadContext;

  constructor(deps: UploadDeps) {
    this.ctx = createUploadContext(deps);
  }

  /** U3: one answer per file, in the order asked (check-uploads.ts). */
  checkUploads(viewer: Viewer, files: CheckFile[]): Promise<CheckAnswer[]> {
    return checkUploads(this.ctx, viewer, files);
  }

  /** U4: answers a proof-of-possession challenge (claim-upload.ts). */
  claimUpload(viewer: Viewer, challengeId: string, proof: string): Promise<AssetRow> {
    return claimUpload(this.ctx, viewer, challengeId, proof);
  }

  /** An upload session without deduplication: the fallback after a refused proof (upload-sessions.ts). */
  startUpload(viewer: Viewer, file: CheckFile): Promise<UploadView> {
    return startUpload(this.ctx, viewer, file);
  }

  getUpload(principal: Principal, uploadId: string): Promise<UploadView> {
    return getUpload(this.ctx, principal, uploadId);
  }

  /** The session now, then after every change (upload-sessions.ts). */
  watchUpload(principal: Principal, uploadId: string): Promise<AsyncIterableIterator<UploadView>> {
    return watchUpload(this.ctx, principal, uploadId);
  }

  /** U5: one chunk; the last one completes the upload (commit-chunk.ts). */
  commitChunk(viewer: Viewer, input: ChunkInput): Promise<ChunkResult> {
    return commitChunk(this.ctx, viewer, input);
  }

  /** U7: finishes an upload whose bytes are all there (complete-upload.ts). */
  completeUpload(viewer: Viewer, uploadId: string): Promise<AssetRow> {
    return completeUpload(this.ctx, viewer, uploadId);
  }

  /** The client gives up on a file: the session and its staged bytes go, the file leaves its sync plans (cancel-upload.ts). */
  cancelUpload(viewer: Viewer, uploadId: string): Promise<void> {
    return cancelUpload(this.ctx, viewer, uploadId);
  }

  /** Housekeeping: sessions idle past the limit, with their staged bytes (expire-idle-sessions.ts). */
  expireIdleSessions(limit?: number): Promise<number> {
    return expireIdleSessions(this.ctx, limit);
  }
}
