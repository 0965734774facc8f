import { and, eq, sql, type SQL } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import {
  assets,
  contactGroups,
  folderAssets,
  folders,
  shareItems,
  uploads,
  type AssetRow,
  type ContactGroupRow,
  type FolderRow,
  type ShareRecipientRow,
  type ShareRow,
  type UploadRow,
} from '../db/schema/index.js';
import type { Tx } from '../db/transaction.js';
import { AppError } from './app-error.js';
import type { Viewer } from './devices.js';
import { isUuid } from './ids.js';

/**
 * A share recipient (S10): someone holding their link, or a signed-in friend opening what was
 * shared with them. It reaches the owner's assets and folders in that share, nothing else, and
 * only while neither the share nor this recipient is revoked and the share has not expired.
 */
export interface ShareGrant {
  kind: 'share-recipient';
  share: ShareRow;
  recipient: ShareRecipientRow;
}

/** Who is asking: a signed-in user on one of their devices, or a share recipient. */
export type Principal = Viewer | ShareGrant;

export function isShareGrant(principal: Principal): principal is ShareGrant {
  return 'kind' in principal && principal.kind === 'share-recipient';
}

/** Why a grant no longer opens anything, or null while it does. */
export function grantEnded(grant: Pick<ShareGrant, 'share' | 'recipient'>, now = new Date()): 'SHARE_REVOKED' | 'SHARE_EXPIRED' | null {
  if (grant.share.revokedAt || grant.recipient.revokedAt) return 'SHARE_REVOKED';
  if (grant.share.expiresAt <= now) return 'SHARE_EXPIRED';
  return null;
}

/** SQL: the asset (a column reference) is in this share, directly or in one of its folders (as it is now). */
export function inShare(shareId: string, assetId: typeof assets.id = assets.id) {
  return sql`(exists (select 1 from ${shareItems} where ${shareItems.shareId} = ${shareId} and ${shareItems.assetId} = ${assetId})
    or exists (select 1 from ${shareItems} join ${folderAssets} on ${folderAssets.folderId} = ${shareItems.folderId} where ${shareItems.shareId} = ${shareId} and ${folderAssets.assetId} = ${assetId}))`;
}

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

  async asset(principal: Principal, action: Action, assetId: string, options: Options = {}): Promise<AssetRow> {
    if (!isUuid(assetId)) throw notFound('asset');
    if (isShareGrant(principal)) return this.sharedAsset(principal, action, assetId);
    const query = (options.tx ?? this.deps.db).select().from(assets).where(and(eq(assets.id, assetId), eq(assets.userId, principal.user.id)));
    const [asset] = options.lock ? await query.for('update') : await query;
    if (!asset) throw notFound('asset');
    return asset;
  }

  /** The assets among `ids` the principal may act on (the others are left out), for batched loading. */
  async assets(principal: Principal, action: Action, ids: readonly string[], options: Pick<Options, 'tx'> = {}): Promise<AssetRow[]> {
    const valid = [...new Set(ids.filter(isUuid))];
    if (valid.length === 0) return [];
    const scope = this.assetScope(principal, action);
    if (!scope) return [];
    return (options.tx ?? this.deps.db)
      .select()
      .from(assets)
      .where(and(scope, sql`${assets.id} = any(${sql.param(valid)}::uuid[])`));
  }

  /**
   * SQL over `assets`: the rows the principal may act on (its own library; a live share's items),
   * for listings and searches that cannot name the ids beforehand. Null: none at all.
   */
  assetScope(principal: Principal, action: Action): SQL | null {
    const owner = this.ownerFor(principal, action);
    if (!owner) return null;
    return isShareGrant(principal) ? and(eq(assets.userId, owner), inShare(principal.share.id))! : eq(assets.userId, owner);
  }

  /** The folders among `ids` the principal may act on (the others are left out). */
  async folders(principal: Principal, action: Action, ids: readonly string[], options: Pick<Options, 'tx'> = {}): Promise<FolderRow[]> {
    const valid = [...new Set(ids.filter(isUuid))];
    if (valid.length === 0) return [];
    const owner = this.ownerFor(principal, action);
    if (!owner) return [];
    const shared = isShareGrant(principal)
      ? sql`exists (select 1 from ${shareItems} where ${shareItems.shareId} = ${principal.share.id} and ${shareItems.folderId} = ${folders.id})`
      : undefined;
    return (options.tx ?? this.deps.db)
      .select()
      .from(folders)
      .where(and(eq(folders.userId, owner), sql`${folders.id} = any(${sql.param(valid)}::uuid[])`, shared));
  }

  /**
   * A live share grant may see its items (view) and fetch originals when the share offers them
   * (download); it never changes anything. Refused the same way as a missing asset, except for a
   * download the share does not offer, which the recipient can see is not offered.
   */
  private async sharedAsset(grant: ShareGrant, action: Action, assetId: string): Promise<AssetRow> {
    if (action === 'download' && !grant.share.allowOriginals && this.ownerFor(grant, 'view')) {
      const [visible] = await this.assets(grant, 'view', [assetId]);
      if (visible) throw new AppError('FORBIDDEN', 'This share does not offer the original files');
    }
    const [asset] = await this.assets(grant, action, [assetId]);
    if (!asset) throw notFound('asset');
    return asset;
  }

  /** Whose rows the principal may reach for this action: its own, a live share's owner's, or nobody's. */
  private ownerFor(principal: Principal, action: Action): string | null {
    if (!isShareGrant(principal)) return principal.user.id;
    if (action === 'change' || grantEnded(principal) !== null) return null;
    if (action === 'download' && !principal.share.allowOriginals) return null;
    return principal.share.ownerId;
  }

  /**
   * A folder by id, or a folder row already read (from a list): checked either way, so a caller
   * cannot hand in a row it should not reach.
   */
  async folder(principal: Principal, action: Action, folder: string | FolderRow, options: Options = {}): Promise<FolderRow> {
    if (isShareGrant(principal)) {
      const [shared] = await this.folders(principal, action, [typeof folder === 'string' ? folder : folder.id], options);
      if (!shared) throw notFound('folder');
      return shared;
    }
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
    if (!isUuid(groupId) || isShareGrant(principal)) throw new AppError('NOT_FOUND', 'No such contact group');
    const query = (options.tx ?? this.deps.db).select().from(contactGroups).where(and(eq(contactGroups.id, groupId), eq(contactGroups.userId, principal.user.id)));
    const [group] = options.lock ? await query.for('update') : await query;
    if (!group) throw new AppError('NOT_FOUND', 'No such contact group');
    return group;
  }

  async upload(principal: Principal, _action: Action, uploadId: string, options: Options = {}): Promise<UploadRow> {
    if (!isUuid(uploadId) || isShareGrant(principal)) throw notFound('upload');
    const query = (options.tx ?? this.deps.db).select().from(uploads).where(and(eq(uploads.id, uploadId), eq(uploads.userId, principal.user.id)));
    const [upload] = options.lock ? await query.for('update') : await query;
    if (!upload) throw notFound('upload');
    return upload;
  }
}

function notFound(kind: 'asset' | 'folder' | 'upload'): AppError {
  return new AppError('NOT_FOUND', `No such ${kind}`);
}
