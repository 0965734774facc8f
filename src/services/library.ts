import { randomUUID } from 'node:crypto';
import { and, asc, desc, eq, inArray, isNotNull, lt, or, sql } from 'drizzle-orm';
import type { Config } from '../config.js';
import type { Db } from '../db/client.js';
import { assets, blobs, folderAssets, folders, uploads, users, type AssetRow, type BlobRow, type FolderRow } from '../db/schema/index.js';
import { AppError } from './app-error.js';
import { isUuid } from './ids.js';
import type { Viewer } from './devices.js';
import type { PubSub } from './pubsub.js';

type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

/**
 * One topic per user for everything a sync view shows: uploads moving, assets added, deleted or
 * evicted (folder status and upload subscriptions listen here).
 */
export const syncTopic = (userId: string) => `user:${userId}:sync`;

export interface AssetPage {
  assets: AssetRow[];
  endCursor: string | null;
  hasNextPage: boolean;
  totalCount: number;
}

export interface FolderStatus {
  /** Files planned for the folder: in it already, or on their way. */
  total: number;
  /** Files stored ("5 of 10 uploaded"). */
  done: number;
  bytesTotal: number;
  bytesDone: number;
}

export const MAX_PAGE = 200;


/**
 * A user's library: assets (each pointing at a shared blob), folders, quota and
 * near-duplicate search. Every method is scoped to the viewer; another user's
 * asset or folder is indistinguishable from a missing one.
 */
export class LibraryService {
  constructor(
    private readonly deps: {
      db: Db;
      pubsub: PubSub;
      config: Pick<Config, 'uploads' | 'levels'>;
    },
  ) {}

  /**
   * Adds the blob to the user's library (or returns the asset it already is),
   * enforcing the quota first. Runs inside the caller's transaction; the user row is
   * locked so concurrent completions of one user are counted one after the other.
   * Statements that do not wait for each other's answers go out together (pipelined on the
   * transaction's connection, still run in order): two round trips when the asset is new.
   */
  async addAsset(
    tx: Tx,
    input: { userId: string; deviceId: string | null; blob: BlobRow; name: string; takenAt: Date | null; folderId: string | null; origin: AssetRow['origin'] },
    locked: ReturnType<LibraryService['lockForAsset']> = this.lockForAsset(tx, input.userId, input.blob.sha256),
  ): Promise<{ asset: AssetRow; created: boolean; evicted: AssetRow[] }> {
    const [[user], [existing]] = await locked;
    if (!user) throw new AppError('NOT_FOUND', 'No such user');
    if (existing) {
      if (input.folderId) await tx.insert(folderAssets).values({ folderId: input.folderId, assetId: existing.id }).onConflictDoNothing();
      return { asset: existing, created: false, evicted: [] };
    }
    const evicted = await this.makeRoom(tx, input.userId, this.deps.config.levels[user.level].quotaBytes, input.blob.size, user.usedBytes);
    // The id is made here so that the folder link can go out with the insert instead of after it.
    const assetId = randomUUID();
    const [[asset]] = await Promise.all([
      tx
        .insert(assets)
        .values({
          id: assetId,
          userId: input.userId,
          sha256: input.blob.sha256,
          name: input.name,
          size: input.blob.size,
          mimeType: input.blob.mimeType,
          width: input.blob.width,
          height: input.blob.height,
          takenAt: input.blob.takenAt ?? input.takenAt,
          phash: input.blob.phash,
          thumbnailStatus: input.blob.thumbnailStatus,
          deviceId: input.deviceId,
          origin: input.origin,
        })
        .returning()
        .prepare('add_asset_insert')
        .execute(),
      tx.update(blobs).set({ refCount: sql`${blobs.refCount} + 1`, gcAfter: null }).where(eq(blobs.sha256, input.blob.sha256)).prepare('add_asset_blob_ref').execute(),
      tx.update(users).set({ usedBytes: sql`${users.usedBytes} + ${input.blob.size}` }).where(eq(users.id, input.userId)).prepare('add_asset_usage').execute(),
      input.folderId ? tx.insert(folderAssets).values({ folderId: input.folderId, assetId }).onConflictDoNothing().prepare('add_asset_folder').execute() : undefined,
    ]);
    return { asset: asset!, created: true, evicted };
  }

  /**
   * addAsset's first statements: lock the user row (level and usage with it), then look for the
   * asset the user may have already. A caller can send them early, along with statements of its
   * own, and hand the promise to addAsset; they must be sent in the same transaction.
   */
  lockForAsset(tx: Tx, userId: string, sha256: string) {
    return Promise.all([
      tx.select({ level: users.level, usedBytes: users.usedBytes }).from(users).where(eq(users.id, userId)).for('update').prepare('add_asset_lock_user').execute(),
      // Runs after the lock above (same connection, in order), so it sees what a concurrent completion of this user committed.
      tx.select().from(assets).where(and(eq(assets.userId, userId), eq(assets.sha256, sha256))).prepare('add_asset_existing').execute(),
    ]);
  }

  /** Bytes used by the user's library. */
  async usage(userId: string, tx: Tx | Db = this.deps.db): Promise<number> {
    const [row] = await tx.select({ used: users.usedBytes }).from(users).where(eq(users.id, userId));
    return row?.used ?? 0;
  }

  quotaBytes(level: keyof Config['levels']): number {
    return this.deps.config.levels[level].quotaBytes;
  }

  /** Refuses early (at check time) what could never fit, and what does not fit under the refuse policy. */
  async assertFits(userId: string, level: keyof Config['levels'], size: number): Promise<void> {
    const quota = this.quotaBytes(level);
    if (size > quota) throw quotaExceeded(await this.usage(userId), quota, size);
    if (this.deps.config.uploads.quotaPolicy === 'refuse') {
      const used = await this.usage(userId);
      if (used + size > quota) throw quotaExceeded(used, quota, size);
    }
  }

  /** S5: refuse, or remove the user's oldest assets until the new one fits; `used` as read with the user row locked. */
  private async makeRoom(tx: Tx, userId: string, quota: number, size: number, used: number): Promise<AssetRow[]> {
    if (used + size <= quota) return [];
    if (size > quota || this.deps.config.uploads.quotaPolicy === 'refuse') throw quotaExceeded(used, quota, size);
    const evicted: AssetRow[] = [];
    let freed = 0;
    while (used - freed + size > quota) {
      const batch = await tx.select().from(assets).where(eq(assets.userId, userId)).orderBy(asc(assets.uploadedAt), asc(assets.id)).limit(50).offset(evicted.length);
      if (batch.length === 0) throw quotaExceeded(used - freed, quota, size);
      for (const asset of batch) {
        if (used - freed + size <= quota) break;
        evicted.push(asset);
        freed += asset.size;
      }
    }
    await this.removeAssets(tx, evicted);
    return evicted;
  }

  private async removeAssets(tx: Tx, candidates: AssetRow[]): Promise<void> {
    if (candidates.length === 0) return;
    // Counts follow the rows this statement really deleted: an asset removed meanwhile by another
    // transaction (a delete racing an eviction) must not be subtracted twice.
    const doomed = await tx.delete(assets).where(inArray(assets.id, candidates.map((a) => a.id))).returning();
    const freed = new Map<string, number>();
    for (const asset of doomed) freed.set(asset.userId, (freed.get(asset.userId) ?? 0) + asset.size);
    for (const [userId, bytes] of freed) await tx.update(users).set({ usedBytes: sql`${users.usedBytes} - ${bytes}` }).where(eq(users.id, userId));
    const grace = this.deps.config.uploads.blobGraceSeconds;
    // In hash order, so that two transactions releasing shared blobs lock them in the same order.
    for (const asset of [...doomed].sort((a, b) => (a.sha256 < b.sha256 ? -1 : a.sha256 > b.sha256 ? 1 : 0))) {
      await tx
        .update(blobs)
        .set({
          refCount: sql`${blobs.refCount} - 1`,
          gcAfter: sql`case when ${blobs.refCount} = 1 then now() + make_interval(secs => ${grace}) else ${blobs.gcAfter} end`,
        })
        .where(eq(blobs.sha256, asset.sha256));
    }
  }

  async deleteAsset(viewer: Viewer, assetId: string): Promise<AssetRow> {
    if (!isUuid(assetId)) throw new AppError('NOT_FOUND', 'No such asset');
    const asset = await this.deps.db.transaction(async (tx) => {
      // The user row first, as addAsset locks it: a delete and an eviction of the same asset
      // then queue up instead of deadlocking.
      await tx.select({ id: users.id }).from(users).where(eq(users.id, viewer.user.id)).for('update');
      const [asset] = await tx.select().from(assets).where(and(eq(assets.id, assetId), eq(assets.userId, viewer.user.id))).for('update');
      if (!asset) throw new AppError('NOT_FOUND', 'No such asset');
      await this.removeAssets(tx, [asset]);
      return asset;
    });
    await this.changed(viewer.user.id);
    return asset;
  }

  async getAsset(viewer: Viewer, assetId: string): Promise<AssetRow> {
    if (!isUuid(assetId)) throw new AppError('NOT_FOUND', 'No such asset');
    const [asset] = await this.deps.db.select().from(assets).where(and(eq(assets.id, assetId), eq(assets.userId, viewer.user.id)));
    if (!asset) throw new AppError('NOT_FOUND', 'No such asset');
    return asset;
  }

  /**
   * The check's hot path (thousands of hashes per call): which of these hashes the user
   * already has, as sha256 → asset id. One array parameter (not one per hash) keeps it one
   * index-driven plan, and only two columns cross the wire; whole assets are loaded only
   * for answers a client asks about (getAssetsByIds).
   */
  async findAssetIdsBySha(userId: string, sha256s: string[]): Promise<Map<string, string>> {
    if (sha256s.length === 0) return new Map();
    const rows = await this.deps.db.execute<{ id: string; sha256: string }>(
      sql`select id, sha256 from ${assets} where user_id = ${userId} and sha256 = any(${sql.param(sha256s)}::text[])`,
    );
    return new Map(rows.map((r) => [r.sha256, r.id]));
  }

  /** The viewer's assets with these ids (others' and missing ids are left out), for batched loading. */
  async getAssetsByIds(viewer: Viewer, ids: readonly string[]): Promise<AssetRow[]> {
    if (ids.length === 0) return [];
    return this.deps.db.select().from(assets).where(and(eq(assets.userId, viewer.user.id), sql`${assets.id} = any(${sql.param([...ids])}::uuid[])`));
  }

  /** Files the check found already in the library join the folder they were declared in (both already the viewer's). */
  async linkToFolders(links: { folderId: string; assetId: string }[]): Promise<void> {
    if (links.length === 0) return;
    await this.deps.db.insert(folderAssets).values(links).onConflictDoNothing();
  }

  /** U9: the library page by page, newest first; optionally one folder's. */
  async listAssets(viewer: Viewer, options: { first?: number | null; after?: string | null; folderId?: string | null }): Promise<AssetPage> {
    const first = Math.min(Math.max(options.first ?? 50, 1), MAX_PAGE);
    const cursor = options.after ? decodeCursor(options.after) : null;
    const inFolder = options.folderId ? await this.getFolder(viewer, options.folderId) : null;
    const scope = and(
      eq(assets.userId, viewer.user.id),
      inFolder ? sql`${assets.id} in (select ${folderAssets.assetId} from ${folderAssets} where ${folderAssets.folderId} = ${inFolder.id})` : undefined,
    );
    const rows = await this.deps.db
      .select()
      .from(assets)
      .where(and(scope, cursor ? or(lt(assets.uploadedAt, cursor.at), and(eq(assets.uploadedAt, cursor.at), lt(assets.id, cursor.id))) : undefined))
      .orderBy(desc(assets.uploadedAt), desc(assets.id))
      .limit(first + 1);
    const [count] = await this.deps.db.select({ n: sql<number>`count(*)::int` }).from(assets).where(scope);
    const page = rows.slice(0, first);
    const last = page.at(-1);
    return { assets: page, hasNextPage: rows.length > first, endCursor: last ? encodeCursor(last) : null, totalCount: count?.n ?? 0 };
  }

  /**
   * U1: assets whose perceptual hash is within `maxDistance` bits of this one's
   * (the same photo re-encoded, resized or lightly edited), nearest first.
   */
  async similarAssets(viewer: Viewer, assetId: string, options: { maxDistance?: number | null; first?: number | null }): Promise<{ asset: AssetRow; distance: number }[]> {
    const target = await this.getAsset(viewer, assetId);
    if (target.phash === null) return [];
    const maxDistance = Math.min(Math.max(options.maxDistance ?? 8, 0), 32);
    const first = Math.min(Math.max(options.first ?? 20, 1), MAX_PAGE);
    const distance = sql<number>`bit_count((${assets.phash} # ${target.phash})::bit(64))::int`;
    const rows = await this.deps.db
      .select({ asset: assets, distance })
      .from(assets)
      .where(and(eq(assets.userId, viewer.user.id), isNotNull(assets.phash), sql`${assets.id} <> ${target.id}`, sql`${distance} <= ${maxDistance}`))
      .orderBy(distance, desc(assets.uploadedAt))
      .limit(first);
    return rows;
  }

  /** S1: a folder by name, created on first use. */
  async ensureFolder(viewer: Viewer, name: string): Promise<FolderRow> {
    const clean = parseFolderName(name);
    await this.deps.db.insert(folders).values({ userId: viewer.user.id, name: clean }).onConflictDoNothing();
    const [folder] = await this.deps.db.select().from(folders).where(and(eq(folders.userId, viewer.user.id), eq(folders.name, clean)));
    return folder!;
  }

  /** S1: a new folder; its default name is the user's nickname (numbered when taken). */
  async createFolder(viewer: Viewer, name?: string | null): Promise<FolderRow> {
    if (name !== undefined && name !== null) return this.ensureFolder(viewer, name);
    for (let n = 1; ; n++) {
      const candidate = n === 1 ? viewer.user.nickname : `${viewer.user.nickname} (${n})`;
      const [folder] = await this.deps.db.insert(folders).values({ userId: viewer.user.id, name: candidate }).onConflictDoNothing().returning();
      if (folder) return folder;
    }
  }

  async addToFolder(viewer: Viewer, folderId: string, assetId: string): Promise<void> {
    await this.getFolder(viewer, folderId);
    await this.getAsset(viewer, assetId);
    await this.deps.db.insert(folderAssets).values({ folderId, assetId }).onConflictDoNothing();
  }

  async getFolder(viewer: Viewer, folderId: string): Promise<FolderRow> {
    if (!isUuid(folderId)) throw new AppError('NOT_FOUND', 'No such folder');
    const [folder] = await this.deps.db.select().from(folders).where(and(eq(folders.id, folderId), eq(folders.userId, viewer.user.id)));
    if (!folder) throw new AppError('NOT_FOUND', 'No such folder');
    return folder;
  }

  async listFolders(viewer: Viewer): Promise<FolderRow[]> {
    return this.deps.db.select().from(folders).where(eq(folders.userId, viewer.user.id)).orderBy(desc(folders.createdAt));
  }

  /** S4: the folder's cover: its most recently added asset that has a thumbnail. Takes a folder the caller got through getFolder/listFolders (access already checked). */
  async folderCover(folder: FolderRow): Promise<AssetRow | null> {
    const folderId = folder.id;
    const [row] = await this.deps.db
      .select({ asset: assets })
      .from(folderAssets)
      .innerJoin(assets, eq(assets.id, folderAssets.assetId))
      .where(and(eq(folderAssets.folderId, folderId), eq(assets.thumbnailStatus, 'ready')))
      .orderBy(desc(folderAssets.addedAt))
      .limit(1);
    return row?.asset ?? null;
  }

  /** S3: "10 photos, 5 uploaded": what is in the folder plus what is on its way to it. Takes a folder obtained with access checked. */
  async folderStatus(folder: FolderRow): Promise<FolderStatus> {
    const folderId = folder.id;
    const [stored] = await this.deps.db
      .select({ n: sql<number>`count(*)::int`, bytes: sql<string>`coalesce(sum(${assets.size}), 0)` })
      .from(folderAssets)
      .innerJoin(assets, eq(assets.id, folderAssets.assetId))
      .where(eq(folderAssets.folderId, folderId));
    const [pending] = await this.deps.db
      .select({ n: sql<number>`count(*)::int`, bytes: sql<string>`coalesce(sum(${uploads.size}), 0)`, received: sql<string>`coalesce(sum(${uploads.receivedBytes}), 0)` })
      .from(uploads)
      .where(and(eq(uploads.folderId, folderId), inArray(uploads.state, ['open', 'completing'])));
    return {
      total: (stored?.n ?? 0) + (pending?.n ?? 0),
      done: stored?.n ?? 0,
      bytesTotal: Number(stored?.bytes ?? 0) + Number(pending?.bytes ?? 0),
      bytesDone: Number(stored?.bytes ?? 0) + Number(pending?.received ?? 0),
    };
  }

  async changed(userId: string): Promise<void> {
    await this.deps.pubsub.publish(syncTopic(userId), { at: Date.now() });
  }
}

export function quotaExceeded(usedBytes: number, quotaBytes: number, neededBytes: number): AppError {
  return new AppError('QUOTA_EXCEEDED', `Not enough space: ${neededBytes} bytes needed, ${Math.max(quotaBytes - usedBytes, 0)} of ${quotaBytes} free`, { usedBytes, quotaBytes, neededBytes });
}

export function encodeCursor(asset: AssetRow): string {
  return Buffer.from(`${asset.uploadedAt.toISOString()}|${asset.id}`).toString('base64url');
}

function decodeCursor(cursor: string): { at: Date; id: string } {
  const [at, id] = Buffer.from(cursor, 'base64url').toString().split('|');
  const date = new Date(at ?? '');
  if (!id || !/^\d{4}-\d{2}-\d{2}T[\d:.]+Z$/.test(at ?? '') || Number.isNaN(date.getTime()) || !isUuid(id)) throw new AppError('BAD_USER_INPUT', 'Invalid cursor', { field: 'after' });
  return { at: date, id };
}

/** A folder name as stored: trimmed, 1 to 200 printable characters; BAD_USER_INPUT otherwise. */
export function parseFolderName(name: string): string {
  const clean = name.trim();
  if (clean.length === 0 || clean.length > 200 || /[\u0000-\u001f\u007f]/.test(clean)) {
    throw new AppError('BAD_USER_INPUT', 'Folder names have 1 to 200 printable characters', { field: 'folder' });
  }
  return clean;
}
