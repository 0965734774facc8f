import { integer, pgTable, text, timestamp } from 'drizzle-orm/pg-core';

/**
 * Failed log-ins counted per key ("email:<address>" or "ip:<address>") inside a
 * fixed window; kept in PostgreSQL so every server instance sees the same count.
 */
export const loginFailures = pgTable('login_failures', {
  key: text('key').primaryKey(),
  failures: integer('failures').notNull(),
  windowStartedAt: timestamp('window_started_at', { withTimezone: true }).notNull(),
});
