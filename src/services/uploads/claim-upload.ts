import { timingSafeEqual } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import { answeredChallenges, blobs, type AssetRow } from '../../db/schema/index.js';
import { runAgainOnConflict, type Tx } from '../../db/transaction.js';
import { normalizeSha256 } from '../../protocol/sha256.js';
import { AppError, isAppError } from '../app-error.js';
import type { Viewer } from '../devices.js';
import { topics } from '../events.js';
import type { Challenge } from './challenge-tokens.js';
import { expectedProof } from './proof-challenges.js';
import type { UploadContext } from './upload-context.js';

/** Why a claim was refused; after any of them the client uploads the file instead. */
const CLAIM_REFUSALS = {
  NOT_FOUND: ['NOT_FOUND', 'No such challenge'],
  CHALLENGE_USED: ['CHALLENGE_USED', 'This challenge was already answered; check the file again or upload it'],
  CHALLENGE_EXPIRED: ['CHALLENGE_EXPIRED', 'The challenge expired; check the file again or upload it'],
  NOT_STORED: ['NOT_FOUND', 'The file is no longer stored; upload it'],
  PROOF_REJECTED: ['PROOF_REJECTED', 'The proof does not match the file; upload it instead'],
} as const;

function claimRefused(reason: keyof typeof CLAIM_REFUSALS): AppError {
  const [code, message] = CLAIM_REFUSALS[reason];
  return new AppError(code, message);
}

/**
 * U4, instant upload: answers a proof-of-possession challenge and, when the proof holds, adds the
 * stored file to the viewer's library without a byte sent. A challenge is single-use: a right
 * answer and a wrong one both use it up; a refusal for want of room, or because the bytes were
 * collected in the meantime, does not. Refused proofs leave the client to upload.
 */
export async function claimUpload(ctx: UploadContext, viewer: Viewer, token: string, proof: string): Promise<AssetRow> {
  const challenge = ctx.challenges.open(token);
  // Someone else's challenge and one that does not exist look the same.
  if (!challenge || challenge.userId !== viewer.user.id) throw claimRefused('NOT_FOUND');
  if (challenge.expiresAt.getTime() < Date.now()) throw claimRefused('CHALLENGE_EXPIRED');
  // A large batch's challenges were made without their answers: worked out now, from the stored bytes.
  const expected =
    challenge.expected ??
    (await expectedProof(ctx, challenge.sha256, challenge.nonce, challenge.ranges).then(
      (bytes) => bytes.toString('hex'),
      (error: unknown) => (isAppError(error) && error.code === 'NOT_FOUND' ? null : Promise.reject(error)),
    ));
  if (expected === null) throw claimRefused('NOT_STORED');
  const answered = normalizeSha256(proof);
  const proven = answered !== null && timingSafeEqual(Buffer.from(answered, 'hex'), Buffer.from(expected, 'hex'));
  if (!proven) {
    // A wrong answer uses the challenge up all the same: guessing has one try per challenge.
    const [recorded] = await recordAnswer(ctx.db, viewer, challenge);
    throw claimRefused(recorded ? 'PROOF_REJECTED' : 'CHALLENGE_USED');
  }
  const outcome = await runAgainOnConflict(() =>
    ctx.db.transaction(async (tx): Promise<AssetRow | AppError> => {
      // Sent together, in this order: the answer, the blob (against the collector), then addAsset's
      // locks (the user row, the asset the user may have already).
      const [recorded, [blob], locked] = await Promise.all([
        recordAnswer(tx, viewer, challenge),
        tx.select().from(blobs).where(and(eq(blobs.sha256, challenge.sha256), eq(blobs.stored, true))).for('update').prepare('claim_blob').execute(),
        ctx.library.lockForAsset(tx, viewer.user.id, challenge.sha256),
      ]);
      if (recorded.length === 0) return claimRefused('CHALLENGE_USED');
      // Thrown: the transaction and with it the answer are undone (as with a refusal for want of room, thrown by addAsset).
      if (!blob) throw claimRefused('NOT_STORED');
      const { asset } = await ctx.library.addAsset(
        tx,
        { userId: viewer.user.id, deviceId: viewer.device.id, blob, name: challenge.name, takenAt: challenge.takenAt, folderId: challenge.folderId, origin: 'instant' },
        Promise.resolve(locked),
      );
      // Delivered only if this transaction commits, i.e. with the asset.
      if (challenge.folderId) await ctx.syncPlan.claimed(tx, viewer.user.id, challenge.folderId, challenge.sha256, asset.id);
      else await ctx.events.publishIn(tx, topics.sync(viewer.user.id), { kind: 'library', userId: viewer.user.id });
      return asset;
    }),
  );
  if (outcome instanceof AppError) throw outcome;
  return outcome;
}

/** Records the answer; no row: the challenge was answered before. */
function recordAnswer(db: Pick<Tx, 'insert'>, viewer: Viewer, challenge: Challenge) {
  return db
    .insert(answeredChallenges)
    .values({ id: challenge.id, userId: viewer.user.id, expiresAt: challenge.expiresAt })
    .onConflictDoNothing()
    .returning({ id: answeredChallenges.id })
    .prepare('claim_record_answer')
    .execute();
}
