import { sql } from 'drizzle-orm';
import { boolean, check, customType, index, integer, jsonb, pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { assets, folders } from './assets.js';
import { users } from './users.js';

const bytea = customType<{ data: Buffer; driverData: Buffer }>({ dataType: () => 'bytea' });

/**
 * A share (S7, G1): some of the owner's assets and folders, made visible to recipients until it
 * expires or is revoked. Nothing is copied: the items point at the owner's assets, and a shared
 * folder shows what is in it now. The edit rule (G3) is what recipients get instead of originals.
 */
export const shares = pgTable(
  'shares',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    ownerId: uuid('owner_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    /** Shown to recipients: the first item's name ("Holidays", "IMG_0001.jpg and 4 more"). */
    title: text('title').notNull(),
    message: text('message'),
    allowOriginals: boolean('allow_originals').notNull(),
    /** The normalised edit rule (see services/media/apply-edit-rule.ts). */
    editRule: jsonb('edit_rule').notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    // Millisecond precision, so a JavaScript Date in a page cursor points at exactly one row.
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().default(sql`date_trunc('milliseconds', now())`),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
    /** When the owner was reminded that the share's items go soon. */
    remindedAt: timestamp('reminded_at', { withTimezone: true }),
  },
  (t) => [index('shares_owner_idx').on(t.ownerId, t.createdAt), index('shares_expires_idx').on(t.expiresAt)],
);

/** One shared asset or folder of a share; goes with the item (a removed photo is no longer shared). */
export const shareItems = pgTable(
  'share_items',
  {
    shareId: uuid('share_id')
      .notNull()
      .references(() => shares.id, { onDelete: 'cascade' }),
    assetId: uuid('asset_id').references(() => assets.id, { onDelete: 'cascade' }),
    folderId: uuid('folder_id').references(() => folders.id, { onDelete: 'cascade' }),
  },
  (t) => [
    check('share_items_one_kind', sql`(${t.assetId} is null) <> (${t.folderId} is null)`),
    uniqueIndex('share_items_asset_key').on(t.shareId, t.assetId).where(sql`${t.assetId} is not null`),
    uniqueIndex('share_items_folder_key').on(t.shareId, t.folderId).where(sql`${t.folderId} is not null`),
    index('share_items_asset_idx').on(t.assetId),
    index('share_items_folder_idx').on(t.folderId),
  ],
);

/**
 * Who a share went to (S10): a friend (directly or through a contact group, expanded when sent) or
 * a plain email address. Each has their own link token, kept only as its SHA-256, so one recipient
 * can be revoked alone; and what the owner sees per recipient: the mail, the opens, the downloads.
 */
export const shareRecipients = pgTable(
  'share_recipients',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    shareId: uuid('share_id')
      .notNull()
      .references(() => shares.id, { onDelete: 'cascade' }),
    /** A friend's account (they also see the share under sharedWithMe); null for a plain address. */
    userId: uuid('user_id').references(() => users.id, { onDelete: 'set null' }),
    email: text('email').notNull(),
    /** How they were picked: as a friend, through a contact group, or by address. */
    via: text('via', { enum: ['friend', 'group', 'email'] }).notNull(),
    tokenHash: bytea('token_hash').notNull(),
    mailStatus: text('mail_status', { enum: ['queued', 'sent', 'failed', 'skipped'] }).notNull().default('queued'),
    mailSentAt: timestamp('mail_sent_at', { withTimezone: true }),
    mailError: text('mail_error'),
    firstOpenedAt: timestamp('first_opened_at', { withTimezone: true }),
    lastOpenedAt: timestamp('last_opened_at', { withTimezone: true }),
    opens: integer('opens').notNull().default(0),
    /** Photos fetched in full (originals or edited images, one per member of a ZIP). */
    downloads: integer('downloads').notNull().default(0),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
    /** When the recipient was reminded that the share's items go soon. */
    remindedAt: timestamp('reminded_at', { withTimezone: true }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().default(sql`date_trunc('milliseconds', now())`),
  },
  (t) => [
    uniqueIndex('share_recipients_token_key').on(t.tokenHash),
    uniqueIndex('share_recipients_email_key').on(t.shareId, t.email),
    index('share_recipients_user_idx').on(t.userId, t.createdAt),
    check('share_recipients_via_check', sql`${t.via} in ('friend', 'group', 'email')`),
  ],
);

export type ShareRow = typeof shares.$inferSelect;
export type ShareItemRow = typeof shareItems.$inferSelect;
export type ShareRecipientRow = typeof shareRecipients.$inferSelect;
