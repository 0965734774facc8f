import { and, gt, lt, or, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { shareItems, shares } from '../../db/schema/index.js';

/** Ended shares are kept this long (their links answer SHARE_EXPIRED or SHARE_REVOKED), then deleted (NOT_FOUND). */
export const SHARE_RETENTION_DAYS = 90;

/**
 * For the expiry sweep: shares whose items are all gone end now (their links answer
 * SHARE_EXPIRED), and shares ended more than SHARE_RETENTION_DAYS ago are deleted with their recipients.
 */
export async function endEmptyShares(db: Db, now = new Date()): Promise<{ ended: number; deleted: number }> {
  // Ended at once, even when the sweep judges by a clock ahead of the database's (tests).
  const endAt = sql`least(now(), ${now.toISOString()}::timestamptz)`;
  const ended = await db
    .update(shares)
    .set({ expiresAt: endAt })
    .where(and(gt(shares.expiresAt, endAt), sql`not exists (select 1 from ${shareItems} where ${shareItems.shareId} = ${shares.id})`))
    .returning({ id: shares.id });
  const longAgo = new Date(now.getTime() - SHARE_RETENTION_DAYS * 86_400_000);
  const deleted = await db
    .delete(shares)
    .where(or(lt(shares.expiresAt, longAgo), lt(shares.revokedAt, longAgo)))
    .returning({ id: shares.id });
  return { ended: ended.length, deleted: deleted.length };
}
