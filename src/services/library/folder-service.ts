import { and, desc, eq, inArray, sql } from 'drizzle-orm';
import type { Config } from '../../config.js';
import type { Db } from '../../db/client.js';
import { assets, folderAssets, folders, uploads, type AssetRow, type FolderRow } from '../../db/schema/index.js';
import type { Access, Principal } from '../access.js';
import { AppError } from '../app-error.js';
import type { Viewer } from '../devices.js';
import { topics, type Events } from '../events.js';
import { checkRequestedExpiry, defaultExpiry } from './expiry-rules.js';

export interface FolderStatus {
  /** Files planned for the folder: in it already, or on their way. */
  total: number;
  /** Files stored ("5 of 10 uploaded"). */
  done: number;
  bytesTotal: number;
  bytesDone: number;
}

/**
 * Folders (S1): a user's named groups of assets, their covers (S4) and their sync status (S3).
 * Every method that reads a folder asks Access first.
 */
export class FolderService {
  constructor(
    private readonly deps: {
      db: Db;
      access: Access;
      events: Events;
      config: Pick<Config, 'levels'>;
    },
  ) {}

  /** S1: the viewer's folder of this name, created on first use. */
  async ensureFolder(viewer: Viewer, name: string): Promise<FolderRow> {
    const clean = parseFolderName(name);
    await this.deps.db.insert(folders).values({ userId: viewer.user.id, name: clean, expiresAt: this.defaultExpiry(viewer) }).onConflictDoNothing();
    const [folder] = await this.deps.db.select().from(folders).where(and(eq(folders.userId, viewer.user.id), eq(folders.name, clean)));
    return folder!;
  }

  /** S1: a new folder; its default name is the user's nickname (numbered when taken). */
  async createFolder(viewer: Viewer, name?: string | null): Promise<FolderRow> {
    if (name !== undefined && name !== null) return this.ensureFolder(viewer, name);
    for (let n = 1; ; n++) {
      const candidate = n === 1 ? viewer.user.nickname : `${viewer.user.nickname} (${n})`;
      const [folder] = await this.deps.db.insert(folders).values({ userId: viewer.user.id, name: candidate, expiresAt: this.defaultExpiry(viewer) }).onConflictDoNothing().returning();
      if (folder) return folder;
    }
  }

  /** S2: the owner moves a folder's expiry within what their level allows (null: kept until deleted, where allowed). */
  async setFolderExpiry(viewer: Viewer, folderId: string, expiresAt: Date | null): Promise<FolderRow> {
    const folder = await this.deps.access.folder(viewer, 'change', folderId);
    const at = checkRequestedExpiry(this.deps.config.levels[viewer.user.level], expiresAt);
    const [updated] = await this.deps.db.update(folders).set({ expiresAt: at }).where(eq(folders.id, folder.id)).returning();
    if (!updated) throw new AppError('NOT_FOUND', 'No such folder');
    return updated;
  }

  private defaultExpiry(viewer: Viewer): Date {
    return defaultExpiry(this.deps.config.levels[viewer.user.level]);
  }

  async addToFolder(principal: Principal, folderId: string, assetId: string): Promise<void> {
    const folder = await this.deps.access.folder(principal, 'change', folderId);
    const asset = await this.deps.access.asset(principal, 'change', assetId);
    await this.deps.db.insert(folderAssets).values({ folderId: folder.id, assetId: asset.id }).onConflictDoNothing();
  }

  /**
   * Files the check found already in the viewer's library join the folders they were declared in.
   * Both sides are checked in the statement itself: the viewer's own folders and assets only.
   */
  async fileExisting(viewer: Viewer, links: { folderId: string; assetId: string }[]): Promise<void> {
    if (links.length === 0) return;
    await this.deps.db.execute(sql`
      insert into ${folderAssets} (folder_id, asset_id)
      select f.id, a.id
      from unnest(${sql.param(links.map((l) => l.folderId))}::uuid[], ${sql.param(links.map((l) => l.assetId))}::uuid[]) as l(folder_id, asset_id)
      join ${folders} f on f.id = l.folder_id and f.user_id = ${viewer.user.id}
      join ${assets} a on a.id = l.asset_id and a.user_id = ${viewer.user.id}
      on conflict do nothing`);
  }

  async getFolder(principal: Principal, folderId: string): Promise<FolderRow> {
    return this.deps.access.folder(principal, 'view', folderId);
  }

  async listFolders(viewer: Viewer): Promise<FolderRow[]> {
    return this.deps.db.select().from(folders).where(eq(folders.userId, viewer.user.id)).orderBy(desc(folders.createdAt));
  }

  /** S4: the folder's cover: its most recently added asset that has a thumbnail. */
  async folderCover(principal: Principal, folderOrId: string | FolderRow): Promise<AssetRow | null> {
    const folder = await this.deps.access.folder(principal, 'view', folderOrId);
    const [row] = await this.deps.db
      .select({ asset: assets })
      .from(folderAssets)
      .innerJoin(assets, eq(assets.id, folderAssets.assetId))
      .where(and(eq(folderAssets.folderId, folder.id), eq(assets.thumbnailStatus, 'ready')))
      .orderBy(desc(folderAssets.addedAt))
      .limit(1);
    return row?.asset ?? null;
  }

  /** S3: "10 photos, 5 uploaded": what is in the folder plus what is on its way to it. */
  async folderStatus(principal: Principal, folderOrId: string | FolderRow): Promise<FolderStatus> {
    const folder = await this.deps.access.folder(principal, 'view', folderOrId);
    return this.statusOf(folder);
  }

  /** S3, live: the folder's status now, then after every change of the owner's library or uploads. */
  async watchFolderStatus(principal: Principal, folderId: string): Promise<AsyncIterableIterator<FolderStatus>> {
    const folder = await this.deps.access.folder(principal, 'view', folderId);
    return this.deps.events.watch(
      topics.sync(folder.userId),
      () => this.statusOf(folder),
      (event) => event.kind === 'library' || (event.kind === 'planned' ? event.folderId === folder.id : event.files.some((f) => f.folderId === folder.id) || event.uploadId !== null),
    );
  }

  private async statusOf(folder: FolderRow): Promise<FolderStatus> {
    const [stored] = await this.deps.db
      .select({ n: sql<number>`count(*)::int`, bytes: sql<string>`coalesce(sum(${assets.size}), 0)` })
      .from(folderAssets)
      .innerJoin(assets, eq(assets.id, folderAssets.assetId))
      .where(eq(folderAssets.folderId, folder.id));
    const [pending] = await this.deps.db
      .select({ n: sql<number>`count(*)::int`, bytes: sql<string>`coalesce(sum(${uploads.size}), 0)`, received: sql<string>`coalesce(sum(${uploads.receivedBytes}), 0)` })
      .from(uploads)
      .where(and(eq(uploads.folderId, folder.id), inArray(uploads.state, ['open', 'completing'])));
    return {
      total: (stored?.n ?? 0) + (pending?.n ?? 0),
      done: stored?.n ?? 0,
      bytesTotal: Number(stored?.bytes ?? 0) + Number(pending?.bytes ?? 0),
      bytesDone: Number(stored?.bytes ?? 0) + Number(pending?.received ?? 0),
    };
  }
}

/** A folder name as stored: trimmed, 1 to 200 printable characters; BAD_USER_INPUT otherwise. */
export function parseFolderName(name: string): string {
  const clean = name.trim();
  if (clean.length === 0 || clean.length > 200 || /[\u0000-\u001f\u007f]/.test(clean)) {
    throw new AppError('BAD_USER_INPUT', 'Folder names have 1 to 200 printable characters', { field: 'folder' });
  }
  return clean;
}
