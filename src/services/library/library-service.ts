import { randomUUID } from 'node:crypto';
import { and, asc, desc, eq, isNotNull, lt, or, sql } from 'drizzle-orm';
import type { Config } from '../../config.js';
import type { Db } from '../../db/client.js';
import { assets, folderAssets, folders, users, type AssetRow, type BlobRow, type UserRow } from '../../db/schema/index.js';
import { runAgainOnConflict, type Tx } from '../../db/transaction.js';
import type { Access, Principal } from '../access.js';
import { AppError } from '../app-error.js';
import type { BlobService } from '../blobs.js';
import type { MediaProcessing } from './media-processing.js';
import type { Viewer } from '../devices.js';
import { topics, type Events } from '../events.js';
import { checkRequestedExpiry, defaultExpiry } from './expiry-rules.js';
import { decodeCursor, encodeCursor } from './page-cursor.js';
import { quotaExceeded, type Quota } from './quota.js';

export interface AssetPage {
  assets: AssetRow[];
  endCursor: string | null;
  hasNextPage: boolean;
  totalCount: number;
}

export const MAX_PAGE = 200;

export interface NewAsset {
  userId: string;
  deviceId: string | null;
  /** The stored blob the asset points at (its media facts are copied). */
  blob: BlobRow;
  name: string;
  /** The file time the client declared: used when the blob has no capture time of its own. */
  takenAt: Date | null;
  /** The perceptual hash the client sent: used until (and unless) the server computes the blob's. */
  perceptualHash?: bigint | null;
  /** One of the user's folders to file it in (a folder deleted meanwhile is skipped). */
  folderId: string | null;
  origin: AssetRow['origin'];
}

export interface AddedAsset {
  asset: AssetRow;
  /** False: the user had these bytes already, and `asset` is that one. */
  created: boolean;
  /** The user's oldest assets removed to make room (policy evict-oldest). */
  evicted: AssetRow[];
}

/**
 * A user's library: assets (each pointing at a shared blob), usage and near-duplicate search.
 * Every method that reads or changes an asset asks Access first; another user's asset looks
 * exactly like a missing one.
 */
export class LibraryService {
  constructor(
    private readonly deps: {
      db: Db;
      access: Access;
      blobs: BlobService;
      /** Queues the background processing of a blob not processed yet. */
      media: Pick<MediaProcessing, 'queueIn'>;
      events: Events;
      quota: Quota;
      config: Pick<Config, 'levels'>;
    },
  ) {}

  /**
   * The one way an asset enters a library — an upload's completion and an instant upload's claim
   * alike. Runs inside the caller's transaction and, with the user row locked: returns the asset the
   * user already has for these bytes, or asks the quota, removes the oldest assets when it says so,
   * and adds the asset, counting its bytes and its blob reference. Statements that do not wait for
   * each other go out together (pipelined on the transaction's connection, still run in order).
   * The caller publishes the sync event (with publishIn, so it goes out with the commit).
   */
  async addAsset(tx: Tx, input: NewAsset, locked: ReturnType<LibraryService['lockForAsset']> = this.lockForAsset(tx, input.userId, input.blob.sha256)): Promise<AddedAsset> {
    const [[user], [existing]] = await locked;
    if (!user) throw new AppError('NOT_FOUND', 'No such user');
    // The user's own folder only; one deleted since the check is skipped.
    const fileInFolder = (assetId: string) =>
      input.folderId
        ? tx
            .insert(folderAssets)
            .select(
              tx
                .select({ folderId: folders.id, assetId: sql<string>`${sql.placeholder('assetId')}::uuid`.as('asset_id'), addedAt: sql<Date>`now()`.as('added_at') })
                .from(folders)
                .where(and(eq(folders.id, sql.placeholder('folderId')), eq(folders.userId, sql.placeholder('userId')))),
            )
            .onConflictDoNothing()
            .prepare('add_asset_folder')
            .execute({ assetId, folderId: input.folderId, userId: input.userId })
        : undefined;
    if (existing) {
      await fileInFolder(existing.id);
      return { asset: existing, created: false, evicted: [] };
    }
    const verdict = this.deps.quota.decide(user.level, user.usedBytes, input.blob.size);
    if (!verdict.fits && 'error' in verdict) throw verdict.error;
    const evicted = verdict.fits ? [] : await this.evictOldest(tx, input.userId, verdict.freeBytes, () => quotaExceeded(user.usedBytes, this.deps.quota.bytesFor(user.level), input.blob.size));
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
          ...blobFacts(input.blob),
          phash: input.blob.phash ?? input.perceptualHash ?? null,
          // The file's own capture time, else the file time the client sent (an exact instant).
          takenAt: input.blob.takenAt ?? input.takenAt,
          takenAtZone: input.blob.takenAt ? input.blob.takenAtZone : input.takenAt ? 'Z' : null,
          deviceId: input.deviceId,
          origin: input.origin,
          // S2: a loose upload's lifetime; in a folder it lives as long as a live folder holds it.
          expiresAt: defaultExpiry(this.deps.config.levels[user.level]),
        })
        .returning()
        .prepare('add_asset_insert')
        .execute(),
      this.deps.blobs.addReference(tx, input.blob.sha256),
      tx.update(users).set({ usedBytes: sql`${users.usedBytes} + ${input.blob.size}` }).where(eq(users.id, input.userId)).prepare('add_asset_usage').execute(),
      fileInFolder(assetId),
      // Its thumbnails and facts, unless an earlier upload of the same bytes made them already.
      input.blob.thumbnailStatus === 'pending' ? this.deps.media.queueIn(tx, input.blob.sha256) : undefined,
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
      // NO KEY UPDATE, not UPDATE: it serialises this user's additions just as well, and does not
      // conflict with the KEY SHARE locks that inserting rows referencing the user takes (a claim's
      // answer is inserted before this lock: with FOR UPDATE, two claims of one user deadlocked).
      tx.select({ level: users.level, usedBytes: users.usedBytes }).from(users).where(eq(users.id, userId)).for('no key update').prepare('add_asset_lock_user').execute(),
      // Runs after the lock above (same connection, in order), so it sees what a concurrent completion of this user committed.
      tx.select().from(assets).where(and(eq(assets.userId, userId), eq(assets.sha256, sha256))).prepare('add_asset_existing').execute(),
    ]);
  }

  /** S5, policy evict-oldest: removes the user's oldest assets until at least `freeBytes` are free. */
  private async evictOldest(tx: Tx, userId: string, freeBytes: number, refusal: () => AppError): Promise<AssetRow[]> {
    const evicted: AssetRow[] = [];
    let freed = 0;
    while (freed < freeBytes) {
      const batch = await tx.select().from(assets).where(eq(assets.userId, userId)).orderBy(asc(assets.uploadedAt), asc(assets.id)).limit(50).offset(evicted.length);
      // Only when the counter says more than the assets hold: refused (with the numbers as the
      // counter has them); housekeeping repairs the counter (recomputeUsedBytes).
      if (batch.length === 0) throw refusal();
      for (const asset of batch) {
        if (freed >= freeBytes) break;
        evicted.push(asset);
        freed += asset.size;
      }
    }
    await this.removeAssets(tx, evicted);
    return evicted;
  }

  /** Removes assets with their counts: the owners' usage and the blobs' references. */
  private async removeAssets(tx: Tx, candidates: AssetRow[]): Promise<void> {
    if (candidates.length === 0) return;
    // Counts follow the rows this statement really deleted: an asset removed meanwhile by another
    // transaction (a delete racing an eviction) must not be subtracted twice.
    const doomed = await tx.delete(assets).where(sql`${assets.id} = any(${sql.param(candidates.map((a) => a.id))}::uuid[])`).returning();
    const freed = new Map<string, number>();
    for (const asset of doomed) freed.set(asset.userId, (freed.get(asset.userId) ?? 0) + asset.size);
    for (const [userId, bytes] of freed) await tx.update(users).set({ usedBytes: sql`${users.usedBytes} - ${bytes}` }).where(eq(users.id, userId));
    await this.deps.blobs.releaseReferences(tx, doomed.map((a) => a.sha256));
  }

  async deleteAsset(principal: Principal, assetId: string): Promise<AssetRow> {
    // Run again if PostgreSQL picked it as a deadlock's victim (nothing of it holds then).
    const asset = await runAgainOnConflict(() => this.deps.db.transaction(async (tx) => {
      const found = await this.deps.access.asset(principal, 'change', assetId, { tx });
      // The owner's row first, as addAsset locks it: a delete and an eviction of the same asset
      // then queue up instead of deadlocking. Then the asset again, locked: it may have gone meanwhile.
      await tx.select({ id: users.id }).from(users).where(eq(users.id, found.userId)).for('no key update');
      const [asset] = await tx.select().from(assets).where(eq(assets.id, found.id)).for('update');
      if (!asset) throw new AppError('NOT_FOUND', 'No such asset');
      await this.removeAssets(tx, [asset]);
      await this.deps.events.publishIn(tx, topics.sync(asset.userId), { kind: 'library', userId: asset.userId });
      return asset;
    }));
    return asset;
  }

  /** S2: the owner moves an asset's expiry within what their level allows (null: kept until deleted, where allowed). */
  async setAssetExpiry(viewer: Viewer, assetId: string, expiresAt: Date | null): Promise<AssetRow> {
    const asset = await this.deps.access.asset(viewer, 'change', assetId);
    const at = checkRequestedExpiry(this.deps.config.levels[viewer.user.level], expiresAt);
    const [updated] = await this.deps.db.update(assets).set({ expiresAt: at }).where(eq(assets.id, asset.id)).returning();
    if (!updated) throw new AppError('NOT_FOUND', 'No such asset');
    return updated;
  }

  /**
   * The expiry sweep (S2), as of `now`: folders whose time has come go, taking their photos that
   * no live folder also holds; loose photos past their own expiry go; a photo whose expiry the
   * owner cleared stays. Usage and blob references follow (blobs someone else still uses stay).
   * Shares left without items end. Safe with several instances (folders are taken with SKIP
   * LOCKED, owners locked in id order as addAsset and deleteAsset lock them). Returns what went.
   */
  async removeExpired(now = new Date(), batch = 50): Promise<{ folders: number; assets: number }> {
    const removed = { folders: 0, assets: 0 };
    for (;;) {
      const at = sql`${now.toISOString()}::timestamptz`;
      const round = await this.deps.db.transaction(async (tx) => {
        const due = await tx
          .select({ id: folders.id, userId: folders.userId })
          .from(folders)
          .where(sql`${folders.expiresAt} <= ${at}`)
          .orderBy(folders.expiresAt)
          .limit(batch)
          .for('update', { skipLocked: true });
        const dueIds = due.map((f) => f.id);
        const candidates = await tx
          .select()
          .from(assets)
          .where(
            sql`${assets.expiresAt} is not null
              and (${assets.expiresAt} <= ${at} or exists (select 1 from ${folderAssets} fa where fa.asset_id = ${assets.id} and fa.folder_id = any(${sql.param(dueIds)}::uuid[])))
              and not exists (select 1 from ${folderAssets} fa join ${folders} f on f.id = fa.folder_id
                where fa.asset_id = ${assets.id} and f.id <> all(${sql.param(dueIds)}::uuid[]) and (f.expires_at is null or f.expires_at > ${at}))`,
          )
          .limit(batch * 100);
        const owners = [...new Set([...due.map((f) => f.userId), ...candidates.map((a) => a.userId)])].sort();
        for (const id of owners) await tx.select({ id: users.id }).from(users).where(eq(users.id, id)).for('no key update');
        await this.removeAssets(tx, candidates);
        if (dueIds.length > 0) await tx.delete(folders).where(sql`${folders.id} = any(${sql.param(dueIds)}::uuid[])`);
        for (const userId of owners) await this.deps.events.publishIn(tx, topics.sync(userId), { kind: 'library', userId });
        return { folders: dueIds.length, assets: candidates.length };
      });
      removed.folders += round.folders;
      removed.assets += round.assets;
      if (round.folders === 0 && round.assets === 0) return removed;
    }
  }

  async getAsset(principal: Principal, assetId: string): Promise<AssetRow> {
    return this.deps.access.asset(principal, 'view', assetId);
  }

  /** The assets with these ids the principal may see (the others are left out), for batched loading. */
  async getAssetsByIds(principal: Principal, ids: readonly string[]): Promise<AssetRow[]> {
    return this.deps.access.assets(principal, 'view', ids);
  }

  /**
   * The check's hot path (thousands of hashes per call): which of these hashes the user already
   * has, as sha256 → asset id — the user's own library, so no one else's rows can answer. One array
   * parameter (not one per hash) keeps it one index-driven plan, and only two columns cross the wire.
   */
  async findAssetIdsBySha(viewer: Viewer, sha256s: string[]): Promise<Map<string, string>> {
    if (sha256s.length === 0) return new Map();
    const rows = await this.deps.db.execute<{ id: string; sha256: string }>(
      sql`select id, sha256 from ${assets} where user_id = ${viewer.user.id} and sha256 = any(${sql.param(sha256s)}::text[])`,
    );
    return new Map(rows.map((r) => [r.sha256, r.id]));
  }

  /** U9: the library page by page, newest first; optionally one folder's. */
  async listAssets(principal: Principal, options: { first?: number | null; after?: string | null; folderId?: string | null }): Promise<AssetPage> {
    const first = Math.min(Math.max(options.first ?? 50, 1), MAX_PAGE);
    const cursor = options.after ? decodeCursor(options.after) : null;
    const inFolder = options.folderId ? await this.deps.access.folder(principal, 'view', options.folderId) : null;
    const visible = this.deps.access.assetScope(principal, 'view');
    if (!visible) return { assets: [], hasNextPage: false, endCursor: null, totalCount: 0 };
    const scope = and(
      visible,
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
  async similarAssets(principal: Principal, assetId: string, options: { maxDistance?: number | null; first?: number | null }): Promise<{ asset: AssetRow; distance: number }[]> {
    const target = await this.deps.access.asset(principal, 'view', assetId);
    if (target.phash === null) return [];
    const maxDistance = Math.min(Math.max(options.maxDistance ?? 8, 0), 32);
    const first = Math.min(Math.max(options.first ?? 20, 1), MAX_PAGE);
    const distance = sql<number>`bit_count((${assets.phash} # ${target.phash})::bit(64))::int`;
    return this.deps.db
      .select({ asset: assets, distance })
      .from(assets)
      .where(and(this.deps.access.assetScope(principal, 'view') ?? sql`false`, isNotNull(assets.phash), sql`${assets.id} <> ${target.id}`, sql`${distance} <= ${maxDistance}`))
      .orderBy(distance, desc(assets.uploadedAt))
      .limit(first);
  }

  /**
   * Bytes used by the user's library (kept with every change; see recomputeUsedBytes). Asked for
   * the signed-in user's own account (the viewer's row, or the account just signed up).
   */
  async usage(user: Pick<UserRow, 'id'>): Promise<number> {
    const [row] = await this.deps.db.select({ used: users.usedBytes }).from(users).where(eq(users.id, user.id));
    return row?.used ?? 0;
  }

  /**
   * Repair: sets each user's `used_bytes` to the sum of the sizes of their assets, and reports the
   * users whose counter was wrong. Each user in a transaction of its own that holds the user row,
   * as every change of assets does, so the sum cannot miss an asset added meanwhile. Without
   * `userIds`: the users whose counter differs from their assets in one aggregate read (a
   * difference can be an addition under way), each then checked again under its lock.
   */
  async recomputeUsedBytes(userIds?: readonly string[]): Promise<{ userId: string; was: number; now: number }[]> {
    const corrected: { userId: string; was: number; now: number }[] = [];
    const repair = async (userId: string) => {
      const result = await this.deps.db.transaction(async (tx) => {
        const [user] = await tx.select({ used: users.usedBytes }).from(users).where(eq(users.id, userId)).for('no key update');
        if (!user) return null;
        // A statement after the lock: it sees every asset committed before the lock was granted.
        const [sum] = await tx.select({ bytes: sql<string>`coalesce(sum(${assets.size}), 0)` }).from(assets).where(eq(assets.userId, userId));
        const now = Number(sum?.bytes ?? 0);
        if (now !== user.used) await tx.update(users).set({ usedBytes: now }).where(eq(users.id, userId));
        return { was: user.used, now };
      });
      if (result && result.was !== result.now) corrected.push({ userId, ...result });
    };
    const candidates =
      userIds ??
      (
        await this.deps.db.execute<{ id: string }>(sql`
          select ${users.id} as id from ${users}
          left join (select ${assets.userId} as user_id, sum(${assets.size}) as bytes from ${assets} group by ${assets.userId}) held on held.user_id = ${users.id}
          where ${users.usedBytes} <> coalesce(held.bytes, 0)`)
      ).map((row) => row.id);
    for (const userId of candidates) await repair(userId);
    return corrected;
  }
}

/** What an asset copies of its blob's facts (media-facts.ts), the capture time aside. */
function blobFacts(blob: BlobRow) {
  const { mimeType, width, height, make, model, latitude, longitude, altitude, durationMs, videoCodec, phash, thumbnailStatus } = blob;
  return { mimeType, width, height, make, model, latitude, longitude, altitude, durationMs, videoCodec, phash, thumbnailStatus };
}
