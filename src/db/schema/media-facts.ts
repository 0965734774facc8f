import { bigint, integer, text, timestamp } from 'drizzle-orm/pg-core';

/**
 * What is read from a photo's bytes: worked out once per blob, and copied onto each asset
 * so that library queries (paging, near-duplicates) stay inside one indexed table.
 */
export const mediaFacts = () => ({
  mimeType: text('mime_type'),
  width: integer('width'),
  height: integer('height'),
  /** EXIF capture time (on an asset: else the file time the client declared). */
  takenAt: timestamp('taken_at', { withTimezone: true }),
  /** 64-bit dHash as a signed bigint (null when the bytes are not a readable image). */
  phash: bigint('phash', { mode: 'bigint' }),
  /** Whether thumbnail and preview exist (fixed once the blob is described). */
  thumbnailStatus: text('thumbnail_status', { enum: ['none', 'ready', 'failed'] }).notNull().default('none'),
});
