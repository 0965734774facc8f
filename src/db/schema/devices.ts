import { index, integer, jsonb, pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { customType } from 'drizzle-orm/pg-core';
import { users } from './users.js';

/** A local network address an agent listens on, with its subnet (prefix length), as it reported it (D3). */
export interface AgentAddress {
  address: string;
  prefixLength: number;
}

const bytea = customType<{ data: Buffer; driverData: Buffer }>({ dataType: () => 'bytea' });

/**
 * A device is one signed-in client: a program that logged in with a name and
 * platform (G5, device token) or a browser session (cookie). Its token is kept
 * only as a SHA-256 hash. Every authenticated request updates the control list
 * columns (D1): address, port and time last seen.
 */
export const devices = pgTable(
  'devices',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    platform: text('platform').notNull(),
    kind: text('kind', { enum: ['program', 'browser'] }).notNull(),
    tokenHash: bytea('token_hash').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    lastSeenAt: timestamp('last_seen_at', { withTimezone: true }).notNull().defaultNow(),
    lastAddress: text('last_address'),
    lastPort: integer('last_port'),
    /** Browser sessions slide; program tokens never expire on their own. */
    expiresAt: timestamp('expires_at', { withTimezone: true }),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
    /** Set by `pixshare agent` (D2, D3): when it last announced itself, where it listens, the folders it offers. */
    agentSeenAt: timestamp('agent_seen_at', { withTimezone: true }),
    agentPort: integer('agent_port'),
    agentAddresses: jsonb('agent_addresses').$type<AgentAddress[]>(),
    agentFolders: jsonb('agent_folders').$type<string[]>(),
  },
  (t) => [uniqueIndex('devices_token_hash_key').on(t.tokenHash), index('devices_user_id_idx').on(t.userId)],
);

export type DeviceRow = typeof devices.$inferSelect;
