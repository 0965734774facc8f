import { sql } from 'drizzle-orm';
import { check, index, pgTable, primaryKey, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { users } from './users.js';

/**
 * A request to be friends (S6), by email: the addressee may not have signed up yet, and sees the
 * request once they sign up with that address (matched by `to_email` until then).
 */
export const friendRequests = pgTable(
  'friend_requests',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    fromUserId: uuid('from_user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    /** Lower-cased and trimmed, as users.email is stored. */
    toEmail: text('to_email').notNull(),
    /**
     * pending: waiting for the addressee; accepted / declined: answered; cancelled: withdrawn by the
     * sender; blocked: the addressee blocks the sender — shown to the sender as pending, never to the addressee.
     */
    status: text('status', { enum: ['pending', 'accepted', 'declined', 'cancelled', 'blocked'] }).notNull().default('pending'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    respondedAt: timestamp('responded_at', { withTimezone: true }),
  },
  (t) => [
    // One open request per sender and address.
    uniqueIndex('friend_requests_open_key').on(t.fromUserId, t.toEmail).where(sql`${t.status} in ('pending', 'blocked')`),
    index('friend_requests_to_email_idx').on(t.toEmail),
    check('friend_requests_status_check', sql`${t.status} in ('pending', 'accepted', 'declined', 'cancelled', 'blocked')`),
  ],
);

/** A friendship, one row per direction: (a, b) and (b, a) are written and removed together. */
export const friendships = pgTable(
  'friendships',
  {
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    friendId: uuid('friend_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.friendId] }), index('friendships_friend_idx').on(t.friendId)],
);

/** A user refuses every further request from another. */
export const blocks = pgTable(
  'blocks',
  {
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    blockedUserId: uuid('blocked_user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.blockedUserId] })],
);

/** A named group of a user's friends (G2): "family", "colleagues". */
export const contactGroups = pgTable(
  'contact_groups',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  // Names are unique per user whatever their case: "Family" and "family" would be one group to a person.
  (t) => [uniqueIndex('contact_groups_user_name_key').on(t.userId, sql`lower(${t.name})`)],
);

export const contactGroupMembers = pgTable(
  'contact_group_members',
  {
    groupId: uuid('group_id')
      .notNull()
      .references(() => contactGroups.id, { onDelete: 'cascade' }),
    memberId: uuid('member_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    addedAt: timestamp('added_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.groupId, t.memberId] }), index('contact_group_members_member_idx').on(t.memberId)],
);

export type FriendRequestRow = typeof friendRequests.$inferSelect;
export type ContactGroupRow = typeof contactGroups.$inferSelect;
