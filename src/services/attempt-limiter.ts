import { and, eq, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { loginFailures } from '../db/schema/index.js';
import { AppError } from './app-error.js';

/**
 * Failed attempts counted per key ("email:<address>", "ip:<address>", "share-ip:<address>") inside
 * a fixed window, in PostgreSQL so that every server instance sees the same count: log-ins and
 * share-link token guesses are refused with TOO_MANY_ATTEMPTS once a key has failed too often.
 */
export class AttemptLimiter {
  constructor(private readonly deps: { db: Db }) {}

  /** TOO_MANY_ATTEMPTS when one of the keys failed `limitFor(key)` times inside the window. */
  async refuseIfThrottled(keys: readonly string[], windowSeconds: number, limitFor: (key: string) => number, what: string): Promise<void> {
    for (const key of keys) {
      const [row] = await this.deps.db
        .select({
          failures: loginFailures.failures,
          retryAfter: sql<number>`ceil(extract(epoch from (${loginFailures.windowStartedAt} + make_interval(secs => ${windowSeconds}) - now())))::int`,
        })
        .from(loginFailures)
        .where(and(eq(loginFailures.key, key), sql`${loginFailures.windowStartedAt} > now() - make_interval(secs => ${windowSeconds})`));
      if (row && row.failures >= limitFor(key)) {
        throw new AppError('TOO_MANY_ATTEMPTS', `Too many ${what}; try again in ${row.retryAfter} s`, { retryAfterSeconds: row.retryAfter });
      }
    }
  }

  async recordFailure(keys: readonly string[], windowSeconds: number): Promise<void> {
    for (const key of keys) {
      // A new window starts when the old one has passed; otherwise the count grows.
      await this.deps.db
        .insert(loginFailures)
        .values({ key, failures: 1, windowStartedAt: sql`now()` })
        .onConflictDoUpdate({
          target: loginFailures.key,
          set: {
            failures: sql`case when ${loginFailures.windowStartedAt} > now() - make_interval(secs => ${windowSeconds}) then ${loginFailures.failures} + 1 else 1 end`,
            windowStartedAt: sql`case when ${loginFailures.windowStartedAt} > now() - make_interval(secs => ${windowSeconds}) then ${loginFailures.windowStartedAt} else now() end`,
          },
        });
    }
  }

  async clear(key: string): Promise<void> {
    await this.deps.db.delete(loginFailures).where(eq(loginFailures.key, key));
  }
}
