import { and, eq, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { assets, contactGroups, folders, uploads, type AssetRow, type ContactGroupRow, type FolderRow, type UploadRow } from '../db/schema/index.js';
import type { Tx } from '../db/transaction.js';
import { AppError } from './app-error.js';
import type { Viewer } from './devices.js';
import { isUuid } from './ids.js';

/**
 * Who is asking. Today a signed-in user on one of their devices; a share recipient holding a
 * link is the next kind, and answers here like the owner does: with the rows it may reach.
 */
export type Principal = Viewer;

/**
 * What the principal wants to do with a resource:
 * - view: see it (its facts, thumbnail and preview, a folder's contents and status);
 * - download: fetch the original bytes;
 * - change: rename, delete, file into folders, upload into, send chunks.
 */
export type Action = 'view' | 'download' | 'change';

interface Options {
  /** Read inside this transaction. */
  tx?: Tx;
  /** Lock the row (FOR UPDATE) for the rest of the transaction; needs `tx`. */
  lock?: boolean;
}

/**
 * The one answer to "may this principal do this to this asset, folder, upload or contact group". Every service
 * method that touches a user's data starts here, as Immich's services start with requireAccess.
 * Each method returns the row when allowed; otherwise NOT_FOUND — someone else's resource and a
 * missing one look exactly the same, so nothing leaks.
 */
export class Access {
  constructor(private readonly deps: { db: Db }) {}

  async asset(principal: Principal, _action: Action, assetId: string, options: Options = {}): Promise<AssetRow> {
    if (!isUuid(assetId)) throw notFound('asset');
    const query = (options.tx ?? this.deps.db).select().from(assets).where(and(eq(assets.id, assetId), eq(assets.userId, principal.user.id)));
    const [asset] = options.lock ? await query.for('update') : await query;
    if (!asset) throw notFound('asset');
    return asset;
  }

  /** The assets among `ids` the principal may act on (the others are left out), for batched loading. */
  async assets(principal: Principal, _action: Action, ids: readonly string[]): Promise<AssetRow[]> {
    const valid = ids.filter(isUuid);
    if (valid.length === 0) return [];
    return this.deps.db.select().from(assets).where(and(eq(assets.userId, principal.user.id), sql`${assets.id} = any(${sql.param(valid)}::uuid[])`));
  }

  /**
   * A folder by id, or a folder row already read (from a list): checked either way, so a caller
   * cannot hand in a row it should not reach.
   */
  async folder(principal: Principal, _action: Action, folder: string | FolderRow, options: Options = {}): Promise<FolderRow> {
    if (typeof folder !== 'string') {
      if (folder.userId !== principal.user.id) throw notFound('folder');
      return folder;
    }
    if (!isUuid(folder)) throw notFound('folder');
    const [row] = await (options.tx ?? this.deps.db).select().from(folders).where(and(eq(folders.id, folder), eq(folders.userId, principal.user.id)));
    if (!row) throw notFound('folder');
    return row;
  }

  /** A contact group (G2): its owner's alone; nobody else learns it exists. */
  async contactGroup(principal: Principal, _action: Action, groupId: string, options: Options = {}): Promise<ContactGroupRow> {
    if (!isUuid(groupId)) throw new AppError('NOT_FOUND', 'No such contact group');
    const query = (options.tx ?? this.deps.db).select().from(contactGroups).where(and(eq(contactGroups.id, groupId), eq(contactGroups.userId, principal.user.id)));
    const [group] = options.lock ? await query.for('update') : await query;
    if (!group) throw new AppError('NOT_FOUND', 'No such contact group');
    return group;
  }

  async upload(principal: Principal, _action: Action, uploadId: string, options: Options = {}): Promise<UploadRow> {
    if (!isUuid(uploadId)) throw notFound('upload');
    const query = (options.tx ?? this.deps.db).select().from(uploads).where(and(eq(uploads.id, uploadId), eq(uploads.userId, principal.user.id)));
    const [upload] = options.lock ? await query.for('update') : await query;
    if (!upload) throw notFound('upload');
    return upload;
  }
}

function notFound(kind: 'asset' | 'folder' | 'upload'): AppError {
  return new AppError('NOT_FOUND', `No such ${kind}`);
}
