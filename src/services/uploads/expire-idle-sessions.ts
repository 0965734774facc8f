import { and, eq, inArray, or, sql } from 'drizzle-orm';
import { answeredChallenges, uploads } from '../../db/schema/index.js';
import { STALE_COMPLETION_SECONDS } from './complete-upload.js';
import type { UploadContext } from './upload-context.js';

/**
 * Removes sessions idle past the limit, with their staged bytes, and the records of challenges
 * that can no longer be answered. Safe on several instances (SKIP LOCKED); returns how many
 * sessions went, so housekeeping can drain in batches.
 */
export async function expireIdleSessions(ctx: UploadContext, limit = 100): Promise<number> {
  const idle = ctx.config.uploads.sessionIdleSeconds;
  const doomed = await ctx.db.transaction(async (tx) => {
    const rows = await tx
      .select({ id: uploads.id, userId: uploads.userId, state: uploads.state })
      .from(uploads)
      // A completing session is someone assembling it: it is left alone until it is also stale
      // as a completion (its heartbeat stopped), whatever the idle limit.
      .where(
        or(
          and(inArray(uploads.state, ['open', 'failed']), sql`${uploads.lastActivityAt} < now() - make_interval(secs => ${idle})`),
          and(eq(uploads.state, 'completing'), sql`${uploads.lastActivityAt} < now() - make_interval(secs => ${Math.max(idle, STALE_COMPLETION_SECONDS)})`),
        ),
      )
      .limit(limit)
      .for('update', { skipLocked: true });
    // Planned files still waiting for these sessions fail, retried by the next check of the file.
    for (const row of rows.filter((r) => r.state !== 'failed')) {
      await ctx.syncPlan.uploadProgress(tx, row, { state: 'failed', bytes: 0, error: { code: 'UPLOAD_EXPIRED', message: 'The upload was idle too long; check the file again to send it' } }, { inFlightOnly: true });
    }
    if (rows.length > 0) await tx.delete(uploads).where(inArray(uploads.id, rows.map((r) => r.id)));
    // Answers are kept while their challenges could still be answered again.
    await tx.delete(answeredChallenges).where(sql`${answeredChallenges.expiresAt} < now() - interval '1 hour'`);
    return rows;
  });
  // Bytes go only once the sessions are gone for good (a failed commit keeps both). One that
  // cannot be removed does not keep the others: each is tried, and the failures reported together.
  const failed: { id: string; error: unknown }[] = [];
  for (const { id } of doomed) await ctx.storage.dropStaged(id).catch((error: unknown) => failed.push({ id, error }));
  if (failed.length > 0) {
    throw new AggregateError(
      failed.map((f) => f.error),
      `the staged bytes of ${failed.length} expired upload(s) could not be removed: ${failed.map((f) => f.id).join(', ')}`,
    );
  }
  return doomed.length;
}
