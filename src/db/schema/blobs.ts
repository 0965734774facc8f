import { sql } from 'drizzle-orm';
import { bigint, boolean, check, index, integer, pgTable, primaryKey, text, timestamp } from 'drizzle-orm/pg-core';
import { mediaFacts } from './media-facts.js';

/**
 * A blob is one stored content: the bytes whose SHA-256 is `sha256`, kept once at
 * the content address `blobs/<sha256>` however many assets point at it. What can be
 * read from the bytes (dimensions, EXIF time, perceptual hash, thumbnails) belongs
 * here too, so it is computed once.
 */
export const blobs = pgTable(
  'blobs',
  {
    sha256: text('sha256').primaryKey(),
    size: bigint('size', { mode: 'number' }).notNull(),
    /** Number of assets pointing here; 0 makes the blob collectable after `gcAfter`. */
    refCount: integer('ref_count').notNull().default(0),
    /** When an unreferenced blob may be deleted; also pins a blob while an upload completes into it. */
    gcAfter: timestamp('gc_after', { withTimezone: true }),
    /** True once the bytes are verified and stored under the content address. */
    stored: boolean('stored').notNull().default(false),
    ...mediaFacts(),
    thumbnailError: text('thumbnail_error'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    check('blobs_sha256_check', sql`${t.sha256} ~ '^[0-9a-f]{64}$'`),
    check('blobs_ref_count_check', sql`${t.refCount} >= 0`),
    index('blobs_gc_idx').on(t.gcAfter).where(sql`${t.refCount} = 0`),
  ],
);

export type BlobRow = typeof blobs.$inferSelect;

/**
 * An image made from a blob by an edit rule (G3), stored at `derived/<sha256>/rule-<ruleKey>.<ext>`:
 * made once, on first request, and shared by every share and recipient with the same rule. The
 * row is written after the bytes, so it says they are there; the collector deletes both with the blob.
 */
export const editedImages = pgTable(
  'edited_images',
  {
    sha256: text('sha256')
      .notNull()
      .references(() => blobs.sha256, { onDelete: 'cascade' }),
    ruleKey: text('rule_key').notNull(),
    key: text('key').notNull(),
    mediaType: text('media_type').notNull(),
    size: bigint('size', { mode: 'number' }).notNull(),
    width: integer('width').notNull(),
    height: integer('height').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.sha256, t.ruleKey] })],
);

export type EditedImageRow = typeof editedImages.$inferSelect;
