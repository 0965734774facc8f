import { sql } from 'drizzle-orm';
import { bigint, index, pgTable, primaryKey, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { blobs } from './blobs.js';
import { mediaFacts } from './media-facts.js';
import { devices } from './devices.js';
import { users } from './users.js';

/** One photo in one user's library: a name and facts pointing at a shared blob. */
export const assets = pgTable(
  'assets',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    sha256: text('sha256')
      .notNull()
      .references(() => blobs.sha256),
    name: text('name').notNull(),
    size: bigint('size', { mode: 'number' }).notNull(),
    /** Copied from the blob (takenAt: else the file time the client declared). */
    ...mediaFacts(),
    deviceId: uuid('device_id').references(() => devices.id, { onDelete: 'set null' }),
    /** How it arrived: uploaded bytes, or an instant upload after a proof of possession. */
    origin: text('origin', { enum: ['upload', 'instant'] }).notNull(),
    // Millisecond precision, so a JavaScript Date in a page cursor points at exactly one row.
    uploadedAt: timestamp('uploaded_at', { withTimezone: true }).notNull().default(sql`date_trunc('milliseconds', now())`),
    /**
     * S2: when the photo goes if it is in no folder that is still live (from the owner's level when
     * added; null: kept until deleted). In a folder it goes with the folder unless another live folder holds it.
     */
    expiresAt: timestamp('expires_at', { withTimezone: true }),
  },
  (t) => [
    uniqueIndex('assets_user_sha256_key').on(t.userId, t.sha256),
    // Answers the check's "which of these do I have, as which asset" from the index alone.
    index('assets_user_sha256_id_idx').on(t.userId, t.sha256, t.id),
    index('assets_user_uploaded_idx').on(t.userId, t.uploadedAt, t.id),
    index('assets_sha256_idx').on(t.sha256),
    index('assets_user_phash_idx').on(t.userId).where(sql`${t.phash} is not null`),
    index('assets_expires_idx').on(t.expiresAt).where(sql`${t.expiresAt} is not null`),
  ],
);

/** A user's named group of assets (S1); an asset may be in several. */
export const folders = pgTable(
  'folders',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    /** S2: when the folder goes, taking its photos that no other live folder holds (null: kept). */
    expiresAt: timestamp('expires_at', { withTimezone: true }),
  },
  (t) => [uniqueIndex('folders_user_name_key').on(t.userId, t.name), index('folders_expires_idx').on(t.expiresAt).where(sql`${t.expiresAt} is not null`)],
);

export const folderAssets = pgTable(
  'folder_assets',
  {
    folderId: uuid('folder_id')
      .notNull()
      .references(() => folders.id, { onDelete: 'cascade' }),
    assetId: uuid('asset_id')
      .notNull()
      .references(() => assets.id, { onDelete: 'cascade' }),
    addedAt: timestamp('added_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.folderId, t.assetId] }), index('folder_assets_asset_idx').on(t.assetId)],
);

export type AssetRow = typeof assets.$inferSelect;
export type FolderRow = typeof folders.$inferSelect;
