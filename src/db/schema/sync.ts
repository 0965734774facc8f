import { sql } from 'drizzle-orm';
import { bigint, index, pgSequence, pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { assets, folders } from './assets.js';
import { uploads } from './uploads.js';
import { users } from './users.js';

/**
 * Versions of live sync state: every change of a planned file or an upload takes the next value,
 * so a watcher that holds a state read at version n folds only the changes made after it, in
 * whatever order their events arrive.
 */
export const syncVersions = pgSequence('sync_versions');

/**
 * A folder's current sync (S3): the run its plan belongs to. A run starts when a check plans files
 * for a folder whose previous run has nothing left in flight; its plan is then replaced.
 */
export const folderSyncs = pgTable('folder_syncs', {
  folderId: uuid('folder_id')
    .primaryKey()
    .references(() => folders.id, { onDelete: 'cascade' }),
  userId: uuid('user_id')
    .notNull()
    .references(() => users.id, { onDelete: 'cascade' }),
  /** Which run: grows with each new one (from sync_versions). */
  run: bigint('run', { mode: 'number' })
    .notNull()
    .default(sql`nextval('sync_versions')`),
  startedAt: timestamp('started_at', { withTimezone: true }).notNull().default(sql`date_trunc('milliseconds', now())`),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().default(sql`date_trunc('milliseconds', now())`),
}, (t) => [index('folder_syncs_user_idx').on(t.userId, t.updatedAt)]);

export const SYNC_FILE_STATES = ['pending', 'uploading', 'verifying', 'done', 'instant', 'failed', 'cancelled'] as const;
export type SyncFileState = (typeof SYNC_FILE_STATES)[number];

/** One file of a folder's sync plan and where it is: pending, uploading (bytes), verifying, done, instant, failed (why), cancelled (left the plan). */
export const syncFiles = pgTable(
  'sync_files',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    folderId: uuid('folder_id')
      .notNull()
      .references(() => folderSyncs.folderId, { onDelete: 'cascade' }),
    sha256: text('sha256').notNull(),
    name: text('name').notNull(),
    size: bigint('size', { mode: 'number' }).notNull(),
    state: text('state', { enum: SYNC_FILE_STATES }).notNull(),
    bytesDone: bigint('bytes_done', { mode: 'number' }).notNull().default(0),
    uploadId: uuid('upload_id').references(() => uploads.id, { onDelete: 'set null' }),
    assetId: uuid('asset_id').references(() => assets.id, { onDelete: 'set null' }),
    errorCode: text('error_code'),
    errorMessage: text('error_message'),
    version: bigint('version', { mode: 'number' })
      .notNull()
      .default(sql`nextval('sync_versions')`),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().default(sql`date_trunc('milliseconds', now())`),
  },
  (t) => [
    uniqueIndex('sync_files_folder_sha256_key').on(t.folderId, t.sha256),
    index('sync_files_upload_idx').on(t.uploadId).where(sql`${t.uploadId} is not null`),
    index('sync_files_folder_version_idx').on(t.folderId, t.version),
  ],
);

export type FolderSyncRow = typeof folderSyncs.$inferSelect;
export type SyncFileRow = typeof syncFiles.$inferSelect;
