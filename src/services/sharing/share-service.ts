import { and, desc, eq, gt, isNull, lt, or, sql } from 'drizzle-orm';
import { z } from 'zod';
import type { Config } from '../../config.js';
import type { Db } from '../../db/client.js';
import { assets, shareItems, shareRecipients, shares, users, type ShareRecipientRow, type ShareRow } from '../../db/schema/index.js';
import type { Tx } from '../../db/transaction.js';
import { emailSchema } from '../accounts.js';
import { grantEnded, inShare, type Access, type ShareGrant } from '../access.js';
import { AppError } from '../app-error.js';
import type { AttemptLimiter } from '../attempt-limiter.js';
import type { Viewer } from '../devices.js';
import type { ContactGroupService } from '../friends/contact-group-service.js';
import type { FriendService, Person } from '../friends/friend-service.js';
import { isUuid } from '../ids.js';
import type { JobQueue } from '../jobs/job-queue.js';
import type { AssetPage, LibraryService } from '../library/library-service.js';
import { parseEditRule, type EditRule } from '../media/apply-edit-rule.js';
import type { RequestOrigin } from '../request-origin.js';
import { SealedBox } from '../sealed-box.js';
import { createToken, hashToken, looksLikeToken } from '../tokens.js';
import { checkRequestedExpiry, defaultExpiry } from '../library/expiry-rules.js';
import { decodeCursor, encodeTimeCursor } from '../library/page-cursor.js';
import { refuseMailFlood, resolveRecipients } from './share-recipients.js';

/** Items (assets and folders) one share may name. */
export const MAX_SHARE_ITEMS = 5000;
/** People and addresses one share may go to. */
export const MAX_SHARE_RECIPIENTS = 1000;
export const MAX_MESSAGE_LENGTH = 2000;

export interface CreateShareInput {
  assetIds?: readonly string[] | null;
  folderIds?: readonly string[] | null;
  friendIds?: readonly string[] | null;
  groupIds?: readonly string[] | null;
  emails?: readonly string[] | null;
  /** Default: the sender's level's expiry from now; never later than the items' own expiry. */
  expiresAt?: Date | null;
  message?: string | null;
  /** Whether recipients may download the original files (default false: they get edited images). */
  allowOriginals?: boolean | null;
  /** G3; default: JPEG, full size, without location and camera metadata unless originals are offered. */
  editRule?: unknown;
}

export interface ShareLink {
  recipient: ShareRecipientRow;
  /** The recipient's page; the token inside is shown this once (and mailed), then kept only hashed. */
  url: string;
}

export interface CreatedShare {
  share: ShareRow;
  links: ShareLink[];
}

/** A page of shares or received shares, newest first. */
export interface Page<T> {
  items: T[];
  hasNextPage: boolean;
  endCursor: string | null;
}

/** A received share as its recipient sees it (S8): the grant and who sent it. */
export interface ReceivedShare extends ShareGrant {
  sender: Pick<Person, 'id' | 'nickname'>;
}

const LINK_PREFIX = 'pxl';
/** Requests of one link this close together are one visit (`opens`). */
export const VISIT_MINUTES = 30;

/**
 * Shares (S7, S8, S10, G1): one instruction sends any mix of assets and folders to any mix of
 * friends, contact groups (expanded now: later changes to a group do not change who received it)
 * and plain addresses. Nothing is copied: recipients reach the owner's assets through Access with
 * a ShareGrant. Each recipient has their own link token (256 bits, kept only as its SHA-256), is
 * mailed by a durable job, can be revoked alone, and is tracked (mail, opens, downloads).
 */
export class ShareService {
  private readonly linkBox: SealedBox;

  constructor(
    private readonly deps: {
      db: Db;
      access: Access;
      library: LibraryService;
      friends: FriendService;
      contactGroups: ContactGroupService;
      jobs: JobQueue;
      limiter: AttemptLimiter;
      config: Pick<Config, 'publicUrl' | 'secret' | 'levels' | 'sharing'>;
    },
  ) {
    this.linkBox = new SealedBox(deps.config.secret, 'share link in a mail job');
  }

  async createShare(viewer: Viewer, input: CreateShareInput): Promise<CreatedShare> {
    const assetIds = unique(input.assetIds);
    const folderIds = unique(input.folderIds);
    const friendIds = unique(input.friendIds);
    const groupIds = unique(input.groupIds);
    // Counted before anything is read or parsed: a huge list is refused as such, cheaply.
    if ((input.emails ?? []).length + friendIds.length > MAX_SHARE_RECIPIENTS) {
      throw new AppError('BATCH_TOO_LARGE', `A share goes to at most ${MAX_SHARE_RECIPIENTS} people`, { limit: MAX_SHARE_RECIPIENTS });
    }
    if (groupIds.length > 100) throw new AppError('BATCH_TOO_LARGE', 'A share goes to at most 100 groups', { limit: 100 });
    const emails = unique((input.emails ?? []).map((email, i) => parseField(emailSchema, email, `emails.${i}`)));
    if (assetIds.length + folderIds.length === 0) throw new AppError('BAD_USER_INPUT', 'Pick at least one photo or folder to share', { field: 'assetIds' });
    if (assetIds.length + folderIds.length > MAX_SHARE_ITEMS) {
      throw new AppError('BATCH_TOO_LARGE', `A share holds at most ${MAX_SHARE_ITEMS} photos and folders (use a folder for more)`, { limit: MAX_SHARE_ITEMS });
    }
    if (friendIds.length + groupIds.length + emails.length === 0) throw new AppError('BAD_USER_INPUT', 'Pick at least one friend, group or email address', { field: 'friendIds' });
    const message = input.message?.trim() || null;
    if (message && message.length > MAX_MESSAGE_LENGTH) throw new AppError('BAD_USER_INPUT', `The message is too long (at most ${MAX_MESSAGE_LENGTH} characters)`, { field: 'message' });
    const allowOriginals = input.allowOriginals ?? false;
    // Without a rule of their own, recipients who may not have the originals get no location either.
    const editRule = parseEditRule(input.editRule ?? { keepLocation: allowOriginals, keepCamera: allowOriginals });
    const level = this.deps.config.levels[viewer.user.level];
    let expiresAt = input.expiresAt ? checkRequestedExpiry(level, input.expiresAt)! : defaultExpiry(level);

    const created = await this.deps.db.transaction(async (tx) => {
      // Someone else's photo or folder looks exactly like a missing one: NOT_FOUND, nothing shared.
      const sharedAssets = await this.deps.access.assets(viewer, 'view', assetIds, { tx });
      if (sharedAssets.length !== assetIds.length) throw new AppError('NOT_FOUND', 'No such asset', { assetIds: assetIds.filter((id) => !sharedAssets.some((a) => a.id === id)).slice(0, 20) });
      const sharedFolders = await this.deps.access.folders(viewer, 'view', folderIds, { tx });
      if (sharedFolders.length !== folderIds.length) throw new AppError('NOT_FOUND', 'No such folder', { folderIds: folderIds.filter((id) => !sharedFolders.some((f) => f.id === id)).slice(0, 20) });

      const recipients = await resolveRecipients(this.deps, tx, viewer, friendIds, groupIds, emails);
      if (recipients.length > MAX_SHARE_RECIPIENTS) throw new AppError('BATCH_TOO_LARGE', `A share goes to at most ${MAX_SHARE_RECIPIENTS} people`, { limit: MAX_SHARE_RECIPIENTS });
      await refuseMailFlood(tx, viewer, recipients.filter((r) => r.via === 'email').length);

      // Never later than the items: the share ends when the last of them goes (null: kept until deleted).
      const itemExpiries = [...sharedAssets, ...sharedFolders].map((item) => item.expiresAt);
      if (!itemExpiries.includes(null)) {
        const last = new Date(Math.max(...itemExpiries.map((d) => d!.getTime())));
        if (last < expiresAt) expiresAt = last;
      }
      // Named after what was picked first: folders, then photos, in the order given.
      const nameOf = new Map([...sharedFolders, ...sharedAssets].map((item) => [item.id, item.name]));
      const names = [...folderIds, ...assetIds].map((id) => nameOf.get(id)!);
      const title = names.length === 1 ? names[0]! : `${names[0]} and ${names.length - 1} more`;
      const [share] = await tx.insert(shares).values({ ownerId: viewer.user.id, title, message, allowOriginals, editRule, expiresAt }).returning();
      await tx.insert(shareItems).values([...assetIds.map((assetId) => ({ shareId: share!.id, assetId })), ...folderIds.map((folderId) => ({ shareId: share!.id, folderId }))]);
      const tokens = recipients.map(() => createToken(LINK_PREFIX));
      const rows = await tx
        .insert(shareRecipients)
        .values(recipients.map((r, i) => ({ shareId: share!.id, userId: r.userId, email: r.email, via: r.via, tokenHash: tokens[i]!.hash })))
        .returning();
      const links = rows.map((recipient) => ({ recipient, url: this.linkUrl(tokens[recipients.findIndex((r) => r.email === recipient.email)]!.token) }));
      // The mail jobs carry the links sealed: the tables keep only hashes.
      const sealed = links.map((l) => ({ recipientId: l.recipient.id, link: this.linkBox.seal(l.url) }));
      await this.deps.jobs.addManyIn(tx, 'send-share-mail', sealed);
      await this.scheduleReminder(tx, share!, sealed);
      return { share: share!, links };
    });
    return created;
  }

  /** The link inside a mail job's payload (sealed by createShare); null when it is not one of ours. */
  openSealedLink(sealed: string): string | null {
    return this.linkBox.open<string>(sealed);
  }

  /** The owner's shares, newest first. */
  async sharesSent(viewer: Viewer, options: { first?: number | null; after?: string | null } = {}): Promise<Page<ShareRow>> {
    const first = pageSize(options.first);
    const cursor = (options.after ? decodeCursor(options.after) : null);
    const rows = await this.deps.db
      .select()
      .from(shares)
      .where(and(eq(shares.ownerId, viewer.user.id), cursor ? or(lt(shares.createdAt, cursor.at), and(eq(shares.createdAt, cursor.at), lt(shares.id, cursor.id))) : undefined))
      .orderBy(desc(shares.createdAt), desc(shares.id))
      .limit(first + 1);
    return toPage(rows, first, (s) => encodeTimeCursor(s.createdAt, s.id));
  }

  async getShare(viewer: Viewer, shareId: string): Promise<ShareRow> {
    return this.ownShare(this.deps.db, viewer, shareId);
  }

  /** Who a share went to, with what the owner may know of each: mail, opens, downloads (S10). */
  async recipientsOf(viewer: Viewer, share: ShareRow): Promise<ShareRecipientRow[]> {
    if (share.ownerId !== viewer.user.id) throw notFound();
    return this.deps.db.select().from(shareRecipients).where(eq(shareRecipients.shareId, share.id)).orderBy(shareRecipients.email);
  }

  /** How many photos a share of the viewer's shows now (a shared folder as it is now). */
  async photoCount(viewer: Viewer, share: ShareRow): Promise<number> {
    if (share.ownerId !== viewer.user.id) throw notFound();
    const [row] = await this.deps.db
      .select({ n: sql<number>`count(*)::int` })
      .from(assets)
      .where(and(eq(assets.userId, share.ownerId), inShare(share.id)));
    return row?.n ?? 0;
  }

  /** Ends a share for every recipient at once; their links answer SHARE_REVOKED. */
  async revokeShare(viewer: Viewer, shareId: string): Promise<ShareRow> {
    return this.deps.db.transaction(async (tx) => {
      const share = await this.ownShare(tx, viewer, shareId, true);
      if (share.revokedAt) return share;
      const [revoked] = await tx.update(shares).set({ revokedAt: sql`now()` }).where(eq(shares.id, share.id)).returning();
      return revoked!;
    });
  }

  /** Ends one recipient's access; the others keep theirs. */
  async revokeRecipient(viewer: Viewer, recipientId: string): Promise<ShareRecipientRow> {
    if (!isUuid(recipientId)) throw notFound('share recipient');
    const [revoked] = await this.deps.db
      .update(shareRecipients)
      .set({ revokedAt: sql`coalesce(${shareRecipients.revokedAt}, now())` })
      .where(and(eq(shareRecipients.id, recipientId), sql`${shareRecipients.shareId} in (select ${shares.id} from ${shares} where ${shares.ownerId} = ${viewer.user.id})`))
      .returning();
    if (!revoked) throw notFound('share recipient');
    return revoked;
  }

  /**
   * S8: what friends shared with the signed-in user and is still open, newest first. A friend
   * reaches these without the link: the grant is theirs because the recipient row names their account.
   */
  async sharedWithMe(viewer: Viewer, options: { first?: number | null; after?: string | null } = {}): Promise<Page<ReceivedShare>> {
    const first = pageSize(options.first);
    const cursor = (options.after ? decodeCursor(options.after) : null);
    const rows = await this.deps.db
      .select({ share: shares, recipient: shareRecipients, sender: { id: users.id, nickname: users.nickname } })
      .from(shareRecipients)
      .innerJoin(shares, eq(shares.id, shareRecipients.shareId))
      .innerJoin(users, eq(users.id, shares.ownerId))
      .where(
        and(
          eq(shareRecipients.userId, viewer.user.id),
          isNull(shareRecipients.revokedAt),
          isNull(shares.revokedAt),
          gt(shares.expiresAt, sql`now()`),
          cursor ? or(lt(shareRecipients.createdAt, cursor.at), and(eq(shareRecipients.createdAt, cursor.at), lt(shareRecipients.id, cursor.id))) : undefined,
        ),
      )
      .orderBy(desc(shareRecipients.createdAt), desc(shareRecipients.id))
      .limit(first + 1);
    return toPage(
      rows.map((r) => ({ kind: 'share-recipient' as const, ...r })),
      first,
      (r) => encodeTimeCursor(r.recipient.createdAt, r.recipient.id),
    );
  }

  /**
   * A link's token → the grant it carries (S10), counted as an open. Unknown tokens answer
   * NOT_FOUND, ended ones SHARE_REVOKED or SHARE_EXPIRED (nothing else of the share), and each
   * failure counts against the client address: too many and it is refused for a while, whatever
   * the transport (GraphQL on any of its transports, the HTTP routes). `countOpen: false` for a
   * look that is not the recipient opening it (a chat app fetching the link's preview).
   */
  async openLink(token: string, origin: RequestOrigin, options: { countOpen?: boolean } = {}): Promise<ReceivedShare> {
    const { maxTokenFailures, tokenWindowSeconds } = this.deps.config.sharing;
    const keys = origin.address ? [`share-ip:${origin.address}`] : [];
    await this.deps.limiter.refuseIfThrottled(keys, tokenWindowSeconds, () => maxTokenFailures, 'wrong share links');
    const fail = async (error: AppError) => {
      await this.deps.limiter.recordFailure(keys, tokenWindowSeconds);
      return error;
    };
    if (typeof token !== 'string' || !token.startsWith(`${LINK_PREFIX}_`) || !looksLikeToken(token)) {
      throw await fail(new AppError('BAD_USER_INPUT', 'This is not a share link token (pxl_ and 43 characters)', { field: 'token' }));
    }
    const [row] = await this.deps.db
      .select({ share: shares, recipient: shareRecipients, sender: { id: users.id, nickname: users.nickname } })
      .from(shareRecipients)
      .innerJoin(shares, eq(shares.id, shareRecipients.shareId))
      .innerJoin(users, eq(users.id, shares.ownerId))
      .where(eq(shareRecipients.tokenHash, hashToken(token)));
    if (!row) throw await fail(new AppError('NOT_FOUND', 'No such share link'));
    endedError(row);
    if (options.countOpen === false) return { kind: 'share-recipient', share: row.share, recipient: row.recipient, sender: row.sender };
    const [opened] = await this.deps.db
      .update(shareRecipients)
      // A visit counts once: the page asking for more photos, or a reload, within VISIT_MINUTES is the same visit.
      .set({
        opens: sql`${shareRecipients.opens} + case when ${shareRecipients.lastOpenedAt} is null or ${shareRecipients.lastOpenedAt} < now() - make_interval(mins => ${VISIT_MINUTES}) then 1 else 0 end`,
        lastOpenedAt: sql`now()`,
        firstOpenedAt: sql`coalesce(${shareRecipients.firstOpenedAt}, now())`,
      })
      .where(eq(shareRecipients.id, row.recipient.id))
      .returning();
    return { kind: 'share-recipient', share: row.share, recipient: opened ?? row.recipient, sender: row.sender };
  }

  /**
   * The grant behind a recipient id, read fresh (for a signed file URL, which names the recipient):
   * ended shares and recipients answer SHARE_REVOKED / SHARE_EXPIRED, unknown ones NOT_FOUND.
   */
  async grantFor(recipientId: string): Promise<ReceivedShare> {
    if (!isUuid(recipientId)) throw notFound('share link');
    const [row] = await this.deps.db
      .select({ share: shares, recipient: shareRecipients, sender: { id: users.id, nickname: users.nickname } })
      .from(shareRecipients)
      .innerJoin(shares, eq(shares.id, shareRecipients.shareId))
      .innerJoin(users, eq(users.id, shares.ownerId))
      .where(eq(shareRecipients.id, recipientId));
    if (!row) throw notFound('share link');
    endedError(row);
    return { kind: 'share-recipient', ...row };
  }

  /** The photos a grant shows, page by page, newest first (a shared folder as it is now). */
  async sharedAssets(grant: ShareGrant, options: { first?: number | null; after?: string | null } = {}): Promise<AssetPage> {
    endedError(grant);
    return this.deps.library.listAssets(grant, options);
  }

  /** The edit rule of a share, as stored (normalised when the share was made). */
  editRuleOf(share: ShareRow): EditRule {
    return parseEditRule(share.editRule);
  }

  /** Counts photos a recipient fetched in full (originals or edited images; a ZIP counts its members). */
  async countDownloads(grant: ShareGrant, photos: number): Promise<void> {
    if (photos <= 0) return;
    await this.deps.db
      .update(shareRecipients)
      .set({ downloads: sql`${shareRecipients.downloads} + ${photos}` })
      .where(eq(shareRecipients.id, grant.recipient.id));
  }

  /** The page a recipient opens: the link in their mail. */
  linkUrl(token: string): string {
    return `${this.deps.config.publicUrl}/s/${token}`;
  }

  // -- internals -------------------------------------------------------------

  private async ownShare(db: Db | Tx, viewer: Viewer, shareId: string, lock = false): Promise<ShareRow> {
    if (!isUuid(shareId)) throw notFound();
    const query = db.select().from(shares).where(and(eq(shares.id, shareId), eq(shares.ownerId, viewer.user.id)));
    const [share] = lock ? await query.for('update') : await query;
    if (!share) throw notFound();
    return share;
  }

  /** The reminder mail, a setting's number of days before the share's items go (if that is still ahead). */
  private async scheduleReminder(tx: Tx, share: ShareRow, links: { recipientId: string; link: string }[]): Promise<void> {
    const days = this.deps.config.sharing.reminderDays;
    if (days === 0) return;
    const runAt = new Date(share.expiresAt.getTime() - days * 86_400_000);
    if (runAt <= new Date()) return;
    await this.deps.jobs.addIn(tx, 'remind-share-expiry', { shareId: share.id, expiresAt: share.expiresAt.toISOString(), links }, { runAt });
  }
}

/** SHARE_REVOKED or SHARE_EXPIRED for a grant that no longer opens anything. */
function endedError(grant: Pick<ShareGrant, 'share' | 'recipient'>): void {
  const ended = grantEnded(grant);
  if (ended === 'SHARE_REVOKED') throw new AppError('SHARE_REVOKED', 'This share was withdrawn by its sender');
  if (ended === 'SHARE_EXPIRED') throw new AppError('SHARE_EXPIRED', 'This share has expired', { expiredAt: grant.share.expiresAt.toISOString() });
}

function notFound(what = 'share'): AppError {
  return new AppError('NOT_FOUND', `No such ${what}`);
}

function unique(values: readonly string[] | null | undefined): string[] {
  return [...new Set((values ?? []).map(String))];
}

function parseField<T>(schema: z.ZodType<T>, value: unknown, field: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new AppError('BAD_USER_INPUT', result.error.issues[0]?.message ?? `Invalid ${field}`, { field });
}

function pageSize(first: number | null | undefined): number {
  return Math.min(Math.max(first ?? 20, 1), 100);
}

function toPage<T>(rows: T[], first: number, cursorOf: (row: T) => string): Page<T> {
  const items = rows.slice(0, first);
  const last = items.at(-1);
  return { items, hasNextPage: rows.length > first, endCursor: last ? cursorOf(last) : null };
}
