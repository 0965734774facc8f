import { sql } from 'drizzle-orm';
import { bigint, index, integer, pgTable, primaryKey, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { assets, folders } from './assets.js';
import { devices } from './devices.js';
import { users } from './users.js';

/** A file as a client declared it in a check: who, from which device, what, and where it goes. */
const declaredFile = () => ({
  userId: uuid('user_id')
    .notNull()
    .references(() => users.id, { onDelete: 'cascade' }),
  deviceId: uuid('device_id').references(() => devices.id, { onDelete: 'set null' }),
  sha256: text('sha256').notNull(),
  size: bigint('size', { mode: 'number' }).notNull(),
  name: text('name').notNull(),
  folderId: uuid('folder_id').references(() => folders.id, { onDelete: 'set null' }),
  takenAt: timestamp('taken_at', { withTimezone: true }),
});

/**
 * An upload session: one user sending one file (sha256 + size) in chunks. Its
 * received chunks are the server's interrupt list (U6): what is missing is the
 * declared size minus their union.
 */
export const uploads = pgTable(
  'uploads',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    ...declaredFile(),
    /** The perceptual hash the client sent with its check (signed 64-bit, as assets.phash), until the server computes its own. */
    phash: bigint('phash', { mode: 'bigint' }),
    state: text('state', { enum: ['open', 'completing', 'done', 'failed'] }).notNull().default('open'),
    receivedBytes: bigint('received_bytes', { mode: 'number' }).notNull().default(0),
    assetId: uuid('asset_id').references(() => assets.id, { onDelete: 'set null' }),
    failure: text('failure'),
    /** The stable code of the failure (UPLOAD_DIGEST_MISMATCH, QUOTA_EXCEEDED, …). */
    failureCode: text('failure_code'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    lastActivityAt: timestamp('last_activity_at', { withTimezone: true }).notNull().defaultNow(),
    /** Live progress: the sync_versions value of the last change published (see db/schema/sync.ts). */
    version: bigint('version', { mode: 'number' }).notNull().default(0),
  },
  (t) => [
    // One unfinished session per user and file: a second check resumes it.
    uniqueIndex('uploads_open_key').on(t.userId, t.sha256).where(sql`${t.state} in ('open', 'completing')`),
    index('uploads_activity_idx').on(t.lastActivityAt).where(sql`${t.state} in ('open', 'completing', 'failed')`),
  ],
);

/**
 * A byte range of an upload. `writing` reserves the range while its bytes stream
 * in (so no other chunk may overlap it), `received` means durable and digest-verified.
 */
export const uploadChunks = pgTable(
  'upload_chunks',
  {
    uploadId: uuid('upload_id')
      .notNull()
      .references(() => uploads.id, { onDelete: 'cascade' }),
    offset: bigint('offset', { mode: 'number' }).notNull(),
    length: integer('length').notNull(),
    sha256: text('sha256').notNull(),
    state: text('state', { enum: ['writing', 'received'] }).notNull(),
    /** Who reserved the range; a retry of the same range takes the reservation over. */
    writer: uuid('writer'),
    /** A reservation left by a writer that died stops blocking after this. */
    leaseUntil: timestamp('lease_until', { withTimezone: true }),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.uploadId, t.offset] })],
);

/**
 * Answered proof-of-possession challenges. The challenges themselves are sealed tokens (see
 * services/challenge-tokens.ts); recording the answer makes each single-use. Kept until it expires.
 */
export const answeredChallenges = pgTable(
  'answered_challenges',
  {
    id: uuid('id').primaryKey(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    answeredAt: timestamp('answered_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('answered_challenges_expires_idx').on(t.expiresAt)],
);

export type UploadRow = typeof uploads.$inferSelect;
export type UploadChunkRow = typeof uploadChunks.$inferSelect;
