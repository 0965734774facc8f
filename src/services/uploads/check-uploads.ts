import { AppError, isAppError } from '../app-error.js';
import type { Viewer } from '../devices.js';
import type { PlannedFile } from '../sync/sync-plan.js';
import { answeredMaterial, sealChallenges, unansweredMaterial, type ChallengeMaterial, type ChallengeView } from './proof-challenges.js';
import type { UploadContext } from './upload-context.js';
import { openSessions, validateCheckFile, type CheckFile, type UploadView } from './upload-sessions.js';

export const MAX_CHECK_BATCH = 5000;
/** Up to this many distinct files, a check looks for stored blobs at once (see checkUploads). */
const SMALL_CHECK = 16;

export type CheckAnswer =
  | { sha256: string; status: 'EXISTS'; assetId: string }
  | { sha256: string; status: 'PROOF_REQUIRED'; challenge: ChallengeView }
  | { sha256: string; status: 'UPLOAD'; upload: UploadView }
  | { sha256: string; status: 'REFUSED'; error: AppError };

/**
 * The detection request (U3): one answer per file, in the order asked — already in the library
 * (U4, same user), claimable after a proof of possession (U4, another user), or an upload session
 * with what is still missing (U5, U6). Files that cannot fit the quota are refused here already.
 */
export async function checkUploads(ctx: UploadContext, viewer: Viewer, files: CheckFile[]): Promise<CheckAnswer[]> {
  if (files.length > MAX_CHECK_BATCH) throw new AppError('BATCH_TOO_LARGE', `At most ${MAX_CHECK_BATCH} files per check`, { limit: MAX_CHECK_BATCH });
  const answers = new Map<number, CheckAnswer>();
  const valid: { index: number; file: CheckFile }[] = [];
  files.forEach((raw, index) => {
    try {
      valid.push({ index, file: validateCheckFile(ctx, raw) });
    } catch (error) {
      if (!isAppError(error)) throw error;
      answers.set(index, { sha256: String(raw.sha256), status: 'REFUSED', error });
    }
  });

  // U4, same user: already in the library — nothing to send. The quota usage the next step may
  // need is read at the same time (a second connection): one round trip of waiting, not two.
  const level = viewer.user.level;
  const needsUsage = valid.some((v) => ctx.quota.needsUsage(level, v.file.size));
  const globalDedup = ctx.config.uploads.dedupScope === 'global';
  const hashes = [...new Set(valid.map((v) => v.file.sha256))];
  // A small check (a device backing up its newest photos) also asks at once which of the files the
  // server stores: they are rarely in the library yet, and the answer saves a round trip. A large one
  // (a lost sync list) is mostly files the user has; it asks about the rest only, afterwards.
  const askEarly = globalDedup && hashes.length > 0 && hashes.length <= SMALL_CHECK;
  // With the files at hand (filesystem storage), a small check also starts reading what a
  // challenge would ask for, so that the answer is ready if the server has the bytes. A file the
  // server does not have costs a failed open.
  const early = askEarly && ctx.storage.localPath ? new Map(hashes.map((sha256) => [sha256, answeredMaterial(ctx, sha256, sizeOf(valid, sha256))])) : undefined;
  const [owned, used, storedEarly] = askEarly
    ? await lookUpSmall(ctx, viewer, hashes)
    : await Promise.all([ctx.library.findAssetIdsBySha(viewer, hashes), needsUsage ? ctx.library.usage(viewer.user) : 0, undefined]);
  const folderIds = new Map<string, string>();
  const folderOf = async (name: string | null | undefined) => {
    if (!name) return null;
    if (!folderIds.has(name)) folderIds.set(name, (await ctx.folders.ensureFolder(viewer, name)).id);
    return folderIds.get(name)!;
  };
  let remaining: typeof valid = [];
  const links: { folderId: string; assetId: string }[] = [];
  for (const entry of valid) {
    const assetId = owned.get(entry.file.sha256);
    if (assetId) {
      const folderId = entry.file.folder ? await folderOf(entry.file.folder) : null;
      if (folderId) links.push({ folderId, assetId });
      answers.set(entry.index, { sha256: entry.file.sha256, status: 'EXISTS', assetId });
    } else remaining.push(entry);
  }
  await ctx.folders.fileExisting(viewer, links);

  // Quota: refuse now what cannot fit (adding the asset decides again, exactly, under the user-row lock).
  remaining = remaining.filter(({ index, file }) => {
    const verdict = ctx.quota.decide(level, used, file.size);
    if (verdict.fits || !('error' in verdict)) return true;
    answers.set(index, { sha256: file.sha256, status: 'REFUSED', error: verdict.error });
    return false;
  });

  // U4, another user: the server has the bytes; the client must prove it has them too.
  if (remaining.length > 0 && globalDedup) {
    const sizes = storedEarly ?? (await storedSizes(ctx, [...new Set(remaining.map((r) => r.file.sha256))]));
    const claimable = remaining.filter((entry) => sizes.get(entry.file.sha256) === entry.file.size);
    // The expected answers of a few challenges are worked out now, from files at hand (filesystem
    // storage), so that their claims need no reading. A large batch, or object storage (a request
    // per range), leaves them to the claims: the check would wait for all of them.
    const answerNow = claimable.length <= SMALL_CHECK && ctx.storage.localPath !== undefined;
    const challenges = sealChallenges(
      ctx,
      viewer,
      await Promise.all(
        claimable.map(async (entry) => {
          const started = early?.get(entry.file.sha256);
          const material: ChallengeMaterial =
            started?.size === entry.file.size ? started : answerNow ? answeredMaterial(ctx, entry.file.sha256, entry.file.size) : unansweredMaterial(entry.file.size);
          early?.delete(entry.file.sha256); // one challenge per material: a second entry of the same file gets its own
          return { file: entry.file, folderId: await folderOf(entry.file.folder), ...material, expected: await material.expected };
        }),
      ),
    );
    claimable.forEach((entry, i) => answers.set(entry.index, { sha256: entry.file.sha256, status: 'PROOF_REQUIRED', challenge: challenges[i]! }));
    remaining = remaining.filter((entry) => sizes.get(entry.file.sha256) !== entry.file.size);
  }

  // Otherwise: an upload session, new or the unfinished one (U5, U6).
  const sessions = await openSessions(ctx, viewer, await Promise.all(remaining.map(async (entry) => ({ file: entry.file, folderId: await folderOf(entry.file.folder) }))));
  remaining.forEach((entry, i) => {
    const session = sessions[i]!;
    answers.set(entry.index, session instanceof AppError ? { sha256: entry.file.sha256, status: 'REFUSED', error: session } : { sha256: entry.file.sha256, status: 'UPLOAD', upload: session });
  });
  await planFolders(ctx, viewer, valid, answers, folderOf);
  return files.map((_, index) => answers.get(index)!);
}

/** S3: the files declared in folders join those folders' sync plans, as the check answered them. */
async function planFolders(
  ctx: UploadContext,
  viewer: Viewer,
  valid: { index: number; file: CheckFile }[],
  answers: Map<number, CheckAnswer>,
  folderOf: (name: string) => Promise<string | null>,
): Promise<void> {
  const plans = new Map<string, PlannedFile[]>();
  for (const { index, file } of valid) {
    if (!file.folder) continue;
    const answer = answers.get(index)!;
    const planned: PlannedFile = { sha256: file.sha256, name: file.name, size: file.size, state: 'pending' };
    if (answer.status === 'EXISTS') planned.state = 'done';
    else if (answer.status === 'REFUSED') Object.assign(planned, { state: 'failed', error: { code: answer.error.code, message: answer.error.message } });
    else if (answer.status === 'UPLOAD') Object.assign(planned, { uploadId: answer.upload.id, state: answer.upload.receivedBytes > 0 ? 'uploading' : 'pending', bytesDone: answer.upload.receivedBytes });
    const folderId = (await folderOf(file.folder))!;
    plans.set(folderId, [...(plans.get(folderId) ?? []), planned]);
  }
  for (const [folderId, planned] of plans) await ctx.syncPlan.plan(viewer.user.id, folderId, planned);
}

function sizeOf(files: { file: CheckFile }[], sha256: string): number {
  return files.find((entry) => entry.file.sha256 === sha256)!.file.size;
}

/**
 * A small check's three questions in one statement: which of the hashes the viewer has (as which
 * asset), the viewer's usage, and which of them the server stores (with their sizes). One round
 * trip to one connection, and not a prepared statement: it would be prepared anew on each pooled
 * connection, a round trip of its own each time.
 */
async function lookUpSmall(ctx: UploadContext, viewer: Viewer, hashes: string[]): Promise<[Map<string, string>, number, Map<string, number>]> {
  const rows = await ctx.db.$client.unsafe<{ kind: 'owned' | 'stored' | 'used'; sha256: string | null; id: string | null; size: string }[]>(
    `select 'owned' as kind, sha256, id::text as id, null::bigint as size from assets where user_id = $1 and sha256 = any($2::text[])
     union all select 'stored', sha256, null, size from blobs where sha256 = any($2::text[]) and stored
     union all select 'used', null, null, used_bytes from users where id = $1`,
    [viewer.user.id, hashes],
    { prepare: false },
  );
  const owned = new Map<string, string>();
  const stored = new Map<string, number>();
  let used = 0;
  for (const row of rows) {
    if (row.kind === 'owned') owned.set(row.sha256!, row.id!);
    else if (row.kind === 'stored') stored.set(row.sha256!, Number(row.size));
    else used = Number(row.size);
  }
  return [owned, used, stored];
}

/** Sizes of the stored blobs among these hashes. */
async function storedSizes(ctx: UploadContext, sha256s: string[]): Promise<Map<string, number>> {
  const stored = await ctx.statements.storedSizes.execute({ hashes: sha256s });
  return new Map(stored.map((b) => [b.sha256, b.size]));
}
