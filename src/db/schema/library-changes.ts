import { bigint, index, integer, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';

export const LIBRARY_CHANGE_OPS = ['added', 'updated', 'removed', 'moved'] as const;
export type LibraryChangeOp = (typeof LIBRARY_CHANGE_OPS)[number];

/**
 * The change feed of each user's library (D4): a row per asset added, renamed, removed, or moved
 * into or out of a folder (a folder renamed moves its assets). Written by triggers on assets,
 * folder_assets and folders (migration 0013), so no write path can forget it. `xid` is the writing
 * transaction's id: a reader takes the rows of transactions older than every transaction still
 * running, so a change committed late is never skipped (services/library/library-changes.ts).
 * No foreign key: a removed asset's row outlives it, and a deleted user's rows go with the pruning.
 */
export const libraryChanges = pgTable(
  'library_changes',
  {
    seq: bigint('seq', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    userId: uuid('user_id').notNull(),
    assetId: uuid('asset_id').notNull(),
    op: text('op', { enum: LIBRARY_CHANGE_OPS }).notNull(),
    xid: bigint('xid', { mode: 'number' }).notNull(),
    at: timestamp('at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('library_changes_user_xid_idx').on(t.userId, t.xid, t.seq), index('library_changes_at_idx').on(t.at)],
);

/** How far the feed was pruned: a cursor from before `throughXid` must start over. One row. */
export const libraryChangeFloor = pgTable('library_change_floor', {
  id: integer('id').primaryKey().default(1),
  throughXid: bigint('through_xid', { mode: 'number' }).notNull(),
});

export type LibraryChangeRow = typeof libraryChanges.$inferSelect;
