import { sql } from 'drizzle-orm';
import { bigint, check, pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';

export const users = pgTable(
  'users',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    /** Stored lower-cased and trimmed; unique. */
    email: text('email').notNull(),
    passwordHash: text('password_hash').notNull(),
    /** Shown to friends and used as the default name of an uploaded folder (S1). */
    nickname: text('nickname').notNull(),
    /** Decides quota and default expiry (S2, S5); the numbers are settings. */
    level: text('level', { enum: ['member', 'standard'] }).notNull().default('standard'),
    /** Sum of the sizes of the user's assets (S5), kept with every change under the user-row lock. */
    usedBytes: bigint('used_bytes', { mode: 'number' }).notNull().default(0),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [uniqueIndex('users_email_key').on(t.email), check('users_level_check', sql`${t.level} in ('member', 'standard')`)],
);

export type UserRow = typeof users.$inferSelect;
