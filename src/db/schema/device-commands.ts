import { sql } from 'drizzle-orm';
import { index, integer, jsonb, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import type { SyncCounts } from '../../protocol/sync-counts.js';
import { devices } from './devices.js';
import { users } from './users.js';

export const DEVICE_COMMAND_STATES = ['pending', 'running', 'done', 'failed', 'cancelled'] as const;
export type DeviceCommandState = (typeof DEVICE_COMMAND_STATES)[number];
export const DEVICE_COMMAND_PATHS = ['direct', 'relayed'] as const;
export type DeviceCommandPath = (typeof DEVICE_COMMAND_PATHS)[number];

/** What an upload command's run did, as the agent reported it at the end (the CLI's push summary). */
export interface DeviceCommandResult {
  files: number;
  uploaded: number;
  instant: number;
  exists: number;
  unchanged: number;
  failed: number;
  /** Left out for being taken before the command's `since`. */
  older: number;
  sentBytes: number;
}

/**
 * A command one device gave another of the same account (D2): "upload this folder" or "upload what
 * you took since". Stored first, then delivered — directly over the local network (D3) or through
 * the server — and run by the target's agent under a lease, so that it runs once even when the agent
 * reconnects or two agents serve the device. A pending command past `expiresAt` never runs.
 */
export const deviceCommands = pgTable(
  'device_commands',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    requesterDeviceId: uuid('requester_device_id').references(() => devices.id, { onDelete: 'set null' }),
    targetDeviceId: uuid('target_device_id')
      .notNull()
      .references(() => devices.id, { onDelete: 'cascade' }),
    kind: text('kind', { enum: ['upload'] }).notNull(),
    /** The offered folder to upload (its name on the target); null: every folder it offers. */
    folder: text('folder'),
    /** Only what was taken at or after this time. */
    since: timestamp('since', { withTimezone: true }),
    state: text('state', { enum: DEVICE_COMMAND_STATES }).notNull().default('pending'),
    /** How the command reached the target: over its local endpoint, or through the server. */
    path: text('path', { enum: DEVICE_COMMAND_PATHS }),
    /** While the requester tries the direct path, the server holds the command back until then. */
    relayAfter: timestamp('relay_after', { withTimezone: true }).notNull().defaultNow(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    startedAt: timestamp('started_at', { withTimezone: true }),
    finishedAt: timestamp('finished_at', { withTimezone: true }),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
    /** The agent run holding the command, and until when (renewed with each progress report). */
    leaseId: text('lease_id'),
    leaseUntil: timestamp('lease_until', { withTimezone: true }),
    /** Runs started: more than one when an agent died and the command was taken up again. */
    attempts: integer('attempts').notNull().default(0),
    progress: jsonb('progress').$type<SyncCounts>(),
    /** The server folders the run uploads into (their folder syncs show it file by file). */
    folderIds: jsonb('folder_ids').$type<string[]>().notNull().default(sql`'[]'::jsonb`),
    result: jsonb('result').$type<DeviceCommandResult>(),
    errorCode: text('error_code'),
    errorMessage: text('error_message'),
  },
  (t) => [index('device_commands_target_idx').on(t.targetDeviceId, t.state), index('device_commands_user_idx').on(t.userId, t.createdAt)],
);

export type DeviceCommandRow = typeof deviceCommands.$inferSelect;
