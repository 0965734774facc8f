import { perceptualHashFromHex } from '../../protocol/perceptual-hash.js';
import { and, eq, inArray, sql } from 'drizzle-orm';
import { uploadChunks, uploads, type UploadChunkRow, type UploadRow } from '../../db/schema/index.js';
import type { Tx } from '../../db/transaction.js';
import { missingRanges, type ByteRange } from '../../protocol/byte-ranges.js';
import { normalizeSha256 } from '../../protocol/sha256.js';
import type { Principal } from '../access.js';
import { AppError, isAppError } from '../app-error.js';
import type { Viewer } from '../devices.js';
import { topics } from '../events.js';
import { parseFolderName } from '../library/folder-service.js';
import type { ChunkLimits, UploadContext } from './upload-context.js';

/**
 * Upload sessions (U5, U6): opening or resuming one per file, what a session looks like to a
 * client (the byte ranges still missing: the server's interrupt list), and finding a session
 * for a principal.
 */

/** One file of a detection request (U3), as the client declares it. */
export interface CheckFile {
  sha256: string;
  size: number;
  name: string;
  folder?: string | null;
  takenAt?: Date | null;
  /** The client's perceptual hash of the image (16 hex digits, protocol/perceptual-hash.ts), when it sends one. */
  perceptualHash?: string | null;
}

export interface UploadView extends UploadRow {
  /** The byte ranges not yet received (the interrupt list's complement). */
  missing: ByteRange[];
  limits: ChunkLimits;
  expiresAt: Date;
}

/** The file as the server takes it, or a BAD_USER_INPUT / FILE_TOO_LARGE naming what is wrong. */
export function validateCheckFile(ctx: UploadContext, raw: CheckFile): CheckFile {
  const sha256 = normalizeSha256(raw.sha256);
  if (sha256 === null) throw new AppError('BAD_USER_INPUT', 'sha256 must be 64 hexadecimal characters', { field: 'sha256' });
  if (!Number.isSafeInteger(raw.size) || raw.size < 0) throw new AppError('BAD_USER_INPUT', 'size must be a whole number of bytes', { field: 'size' });
  const max = ctx.config.uploads.maxFileBytes;
  if (raw.size > max) throw new AppError('FILE_TOO_LARGE', `Files have at most ${max} bytes`, { maxFileBytes: max });
  const name = String(raw.name ?? '').trim();
  if (name.length === 0 || name.length > 255 || /[\u0000-\u001f]/.test(name)) throw new AppError('BAD_USER_INPUT', 'name must have 1 to 255 printable characters', { field: 'name' });
  // Checked here, so that one bad folder name refuses its file alone, not the whole batch.
  const folder = raw.folder?.trim() ? parseFolderName(raw.folder) : null;
  const perceptualHash = raw.perceptualHash ? perceptualHashFromHex(raw.perceptualHash) : null;
  if (raw.perceptualHash && !perceptualHash) throw new AppError('BAD_USER_INPUT', 'perceptualHash must be 16 hexadecimal characters (a 64-bit dHash)', { field: 'perceptualHash' });
  return { sha256, size: raw.size, name, folder, takenAt: raw.takenAt ?? null, perceptualHash: perceptualHash?.hex ?? null };
}

/** The row of a new session for a (validated) file. */
function sessionValues(viewer: Viewer, file: CheckFile, folderId: string | null) {
  const phash = file.perceptualHash ? perceptualHashFromHex(file.perceptualHash)!.value : null;
  return { userId: viewer.user.id, deviceId: viewer.device.id, sha256: file.sha256, size: file.size, name: file.name, folderId, takenAt: file.takenAt ?? null, phash };
}

/** An upload session for the file, skipping deduplication (the fallback after a refused proof). */
export async function startUpload(ctx: UploadContext, viewer: Viewer, raw: CheckFile): Promise<UploadView> {
  const file = validateCheckFile(ctx, raw);
  const level = viewer.user.level;
  const verdict = ctx.quota.decide(level, ctx.quota.needsUsage(level, file.size) ? await ctx.library.usage(viewer.user) : 0, file.size);
  if (!verdict.fits && 'error' in verdict) throw verdict.error;
  const folderId = file.folder ? (await ctx.folders.ensureFolder(viewer, file.folder)).id : null;
  const upload = await openSession(ctx, viewer, file, folderId);
  if (folderId) {
    const state = upload.receivedBytes > 0 ? 'uploading' : 'pending';
    await ctx.syncPlan.plan(viewer.user.id, folderId, [{ sha256: file.sha256, name: file.name, size: file.size, state, uploadId: upload.id, bytesDone: upload.receivedBytes }]);
  }
  return upload;
}

export async function getUpload(ctx: UploadContext, principal: Principal, uploadId: string): Promise<UploadView> {
  return view(ctx, await ctx.access.upload(principal, 'view', uploadId));
}

/** The upload session now, then after every change of the owner's uploads (from any device). */
export async function watchUpload(ctx: UploadContext, principal: Principal, uploadId: string): Promise<AsyncIterableIterator<UploadView>> {
  const upload = await ctx.access.upload(principal, 'view', uploadId);
  return ctx.events.watch(topics.sync(upload.userId), () => getUpload(ctx, principal, uploadId), (event) => event.kind === 'progress' && event.uploadId === upload.id);
}

/**
 * The session locked for a change: the principal's, still open (or completing, or done) —
 * one idle past the limit is UPLOAD_EXPIRED, a failed one UPLOAD_NOT_OPEN.
 */
export async function lockUpload(ctx: UploadContext, tx: Tx, principal: Principal, uploadId: string): Promise<UploadRow> {
  const upload = await ctx.access.upload(principal, 'change', uploadId, { tx, lock: true });
  if (upload.state === 'open' && upload.lastActivityAt.getTime() + ctx.config.uploads.sessionIdleSeconds * 1000 < Date.now()) {
    throw new AppError('UPLOAD_EXPIRED', 'The upload expired after being idle; check the file again to start over');
  }
  if (upload.state === 'failed') throw new AppError('UPLOAD_NOT_OPEN', upload.failure ?? 'The upload failed; check the file again to start over', { state: upload.state });
  return upload;
}

export async function openSession(ctx: UploadContext, viewer: Viewer, file: CheckFile, folderId: string | null): Promise<UploadView> {
  const values = sessionValues(viewer, file, folderId);
  for (let attempt = 0; attempt < 3; attempt++) {
    const [existing] = await resumeSessions(ctx, viewer.user.id, [file.sha256]);
    if (existing) {
      if (existing.size !== file.size) throw sizeConflict(existing);
      return view(ctx, existing);
    }
    const [created] = await ctx.db.insert(uploads).values(values).onConflictDoNothing().returning();
    if (created) return view(ctx, created);
  }
  throw new AppError('CONFLICT', 'Could not open an upload session; try again');
}

/**
 * Upload sessions for many files in a few statements: the unfinished ones are
 * resumed, the others created together. A file whose session another request
 * creates at the same moment falls back to the one-by-one path.
 */
export async function openSessions(ctx: UploadContext, viewer: Viewer, files: { file: CheckFile; folderId: string | null }[]): Promise<(UploadView | AppError)[]> {
  if (files.length === 0) return [];
  const shas = [...new Set(files.map((f) => f.file.sha256))];
  const open = await resumeSessions(ctx, viewer.user.id, shas);
  const bySha = new Map(open.map((u) => [u.sha256, u]));
  const fresh = files.filter(({ file }, i) => !bySha.has(file.sha256) && files.findIndex((f) => f.file.sha256 === file.sha256) === i);
  if (fresh.length > 0) {
    const created = await ctx.db
      .insert(uploads)
      .values(fresh.map(({ file, folderId }) => sessionValues(viewer, file, folderId)))
      .onConflictDoNothing()
      .returning();
    for (const upload of created) bySha.set(upload.sha256, upload);
  }
  const received = await receivedRangesOf(ctx, open.map((u) => u.id));
  return Promise.all(
    files.map(async ({ file, folderId }) => {
      const upload = bySha.get(file.sha256);
      if (!upload) return openSession(ctx, viewer, file, folderId).catch((error: unknown) => (isAppError(error) ? error : Promise.reject(error)));
      if (upload.size !== file.size) return sizeConflict(upload);
      return viewWith(ctx, upload, received.get(upload.id) ?? []);
    }),
  );
}

function sizeConflict(upload: UploadRow): AppError {
  return new AppError('CONFLICT', `An unfinished upload of this file declared ${upload.size} bytes`, { uploadId: upload.id, size: upload.size });
}

/**
 * The user's unfinished sessions for these files. Finding one is activity: an open session a
 * check hands out gets its idle time back, so the client can use it (one past the limit that
 * housekeeping has not removed yet would otherwise answer UPLOAD_EXPIRED to every chunk, and
 * the next check would hand it out again). A completing one is left alone, so that a dead
 * completion still goes stale.
 */
function resumeSessions(ctx: UploadContext, userId: string, shas: string[]): Promise<UploadRow[]> {
  return ctx.db
    .update(uploads)
    .set({ lastActivityAt: sql`case when ${uploads.state} = 'open' then now() else ${uploads.lastActivityAt} end` })
    .where(and(eq(uploads.userId, userId), sql`${uploads.sha256} = any(${sql.param(shas)}::text[])`, inArray(uploads.state, ['open', 'completing'])))
    .returning();
}

/** The chunks of an upload that count as received (bytes durable, digest matched). */
export async function receivedChunks(ctx: UploadContext, uploadId: string, tx: Pick<Tx, 'select'> = ctx.db): Promise<UploadChunkRow[]> {
  return tx.select().from(uploadChunks).where(and(eq(uploadChunks.uploadId, uploadId), eq(uploadChunks.state, 'received')));
}

async function receivedRangesOf(ctx: UploadContext, uploadIds: string[]): Promise<Map<string, ByteRange[]>> {
  const byUpload = new Map<string, ByteRange[]>();
  if (uploadIds.length === 0) return byUpload;
  const rows = await ctx.db
    .select({ uploadId: uploadChunks.uploadId, offset: uploadChunks.offset, length: uploadChunks.length })
    .from(uploadChunks)
    .where(and(sql`${uploadChunks.uploadId} = any(${sql.param(uploadIds)}::uuid[])`, eq(uploadChunks.state, 'received')));
  for (const row of rows) byUpload.set(row.uploadId, [...(byUpload.get(row.uploadId) ?? []), row]);
  return byUpload;
}

/** The session as a client sees it. */
export async function view(ctx: UploadContext, upload: UploadRow): Promise<UploadView> {
  return viewWith(ctx, upload, upload.state === 'open' || upload.state === 'completing' ? await receivedChunks(ctx, upload.id) : []);
}

export function viewWith(ctx: UploadContext, upload: UploadRow, received: readonly ByteRange[]): UploadView {
  return {
    ...upload,
    missing: upload.state === 'done' ? [] : missingRanges(upload.size, received),
    limits: ctx.limits,
    expiresAt: new Date(upload.lastActivityAt.getTime() + ctx.config.uploads.sessionIdleSeconds * 1000),
  };
}
