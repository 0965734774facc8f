import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { and, eq, inArray, or, sql } from 'drizzle-orm';
import { proofOfPossession } from '../protocol/proof-of-possession.js';
import type { Config } from '../config.js';
import type { Db } from '../db/client.js';
import { rowFromDriver } from '../db/rows.js';
import { answeredChallenges, assets, blobs, uploadChunks, uploads, type AssetRow, type UploadChunkRow, type UploadRow } from '../db/schema/index.js';
import { AppError, isAppError } from './app-error.js';
import { blobKey, type BlobService } from './blobs.js';
import { ChallengeTokens, type Challenge } from './challenge-tokens.js';
import { isUuid } from './ids.js';
import { missingRanges, overlaps, type ByteRange } from '../protocol/byte-ranges.js';
import type { Viewer } from './devices.js';
import { parseFolderName, quotaExceeded, syncTopic, type LibraryService } from './library.js';
import type { PubSub } from './pubsub.js';
import type { BlobStore } from './storage/blob-store.js';

export const MAX_CHECK_BATCH = 5000;
/** Up to this many distinct files, a check looks for stored blobs at once (see checkUploads). */
const SMALL_CHECK = 16;
const PROOF_RANGES = 4;
const PROOF_RANGE_BYTES = 4096;
/** A chunk reservation lives this long without renewal; writers renew it while bytes flow. */
const LEASE_SECONDS = 60;
/** A completion that has not finished after this long is taken to have died with its server. */
const STALE_COMPLETION_SECONDS = 600;

export { syncTopic };

export interface CheckFile {
  sha256: string;
  size: number;
  name: string;
  folder?: string | null;
  takenAt?: Date | null;
}

export interface ChunkLimits {
  minChunkBytes: number;
  maxChunkBytes: number;
}

export interface UploadView extends UploadRow {
  /** The byte ranges not yet received (the interrupt list's complement). */
  missing: ByteRange[];
  limits: ChunkLimits;
  expiresAt: Date;
}

export interface ChallengeView {
  id: string;
  /** Hex; the proof is SHA-256 over these 32 bytes followed by the bytes of each range in order. */
  nonce: string;
  ranges: ByteRange[];
  expiresAt: Date;
}

export type CheckAnswer =
  | { sha256: string; status: 'EXISTS'; assetId: string }
  | { sha256: string; status: 'PROOF_REQUIRED'; challenge: ChallengeView }
  | { sha256: string; status: 'UPLOAD'; upload: UploadView }
  | { sha256: string; status: 'REFUSED'; error: AppError };

export interface ChunkInput {
  uploadId: string;
  offset: number;
  length: number;
  /** Hex SHA-256 of the chunk's bytes. */
  sha256: string;
  body: Readable;
}

export interface ChunkResult {
  upload: UploadView;
  /** Set when this chunk was the last one missing and the upload completed. */
  asset: AssetRow | null;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

/**
 * For the chunk bookkeeping transactions (reservations, "received"): their commit need not wait
 * for the WAL to reach the disk. An operating-system crash could forget the last fraction of a
 * second of them; the bytes are on disk either way, and the interrupt list then asks for those
 * chunks again (U6) — re-sent, never lost. The asset a completion creates is committed durably.
 */
const ASYNC_COMMIT = sql`set local synchronous_commit = off`;

/**
 * Check-and-upload (U1–U7, S3): the detection request, instant upload after a
 * proof of possession, resumable out-of-order chunks, and verified completion.
 */
export class UploadService {
  /**
   * Statements built once: drizzle's query building costs as much as the round trip (measured:
   * authenticate went from 0.6 to 0.33 ms this way).
   */
  private readonly statements;
  /** Seals and opens proof-of-possession challenges (they are tokens, not rows). */
  private readonly challenges: ChallengeTokens;

  constructor(
    private readonly deps: {
      db: Db;
      storage: BlobStore;
      blobs: BlobService;
      library: LibraryService;
      pubsub: PubSub;
      config: Pick<Config, 'uploads' | 'secret'>;
    },
  ) {
    const { db } = deps;
    this.statements = {
      /** Sizes of the stored blobs among `hashes`. */
      storedSizes: db
        .select({ sha256: blobs.sha256, size: blobs.size })
        .from(blobs)
        .where(and(sql`${blobs.sha256} = any(${sql.placeholder('hashes')}::text[])`, eq(blobs.stored, true)))
        .prepare('stored_sizes'),
    };
    this.challenges = new ChallengeTokens(deps.config.secret);
  }

  private get limits(): ChunkLimits {
    const { minChunkBytes, maxChunkBytes } = this.deps.config.uploads;
    return { minChunkBytes, maxChunkBytes };
  }

  /** U3: one answer per file, in the order asked. */
  async checkUploads(viewer: Viewer, files: CheckFile[]): Promise<CheckAnswer[]> {
    if (files.length > MAX_CHECK_BATCH) throw new AppError('BATCH_TOO_LARGE', `At most ${MAX_CHECK_BATCH} files per check`, { limit: MAX_CHECK_BATCH });
    const answers = new Map<number, CheckAnswer>();
    const valid: { index: number; file: CheckFile }[] = [];
    files.forEach((raw, index) => {
      try {
        valid.push({ index, file: this.validateFile(raw) });
      } catch (error) {
        if (!isAppError(error)) throw error;
        answers.set(index, { sha256: String(raw.sha256), status: 'REFUSED', error });
      }
    });

    // U4, same user: already in the library — nothing to send. The quota usage the next step may
    // need is read at the same time (a second connection): one round trip of waiting, not two.
    const quota = this.deps.library.quotaBytes(viewer.user.level);
    const refuseAll = this.deps.config.uploads.quotaPolicy === 'refuse';
    const needsUsage = valid.length > 0 && (refuseAll || valid.some((v) => v.file.size > quota));
    const globalDedup = this.deps.config.uploads.dedupScope === 'global';
    const hashes = [...new Set(valid.map((v) => v.file.sha256))];
    // A small check (a device backing up its newest photos) also asks at once which of the files the
    // server stores: they are rarely in the library yet, and the answer saves a round trip. A large one
    // (a lost sync list) is mostly files the user has; it asks about the rest only, afterwards.
    const askEarly = globalDedup && hashes.length > 0 && hashes.length <= SMALL_CHECK;
    // With the files at hand (filesystem storage), a small check also starts reading what a
    // challenge would ask for, so that the answer is ready if the server has the bytes. A file the
    // server does not have costs a failed open.
    const early = askEarly && this.deps.storage.localPath ? new Map(hashes.map((sha256) => [sha256, this.challengeFor(sha256, sizeOf(valid, sha256))])) : undefined;
    const [owned, used, storedEarly] = askEarly
      ? await this.lookUpSmall(viewer.user.id, hashes)
      : await Promise.all([this.deps.library.findAssetIdsBySha(viewer.user.id, hashes), needsUsage ? this.deps.library.usage(viewer.user.id) : 0, undefined]);
    const folderIds = new Map<string, string>();
    const folderOf = async (name: string | null | undefined) => {
      if (!name) return null;
      if (!folderIds.has(name)) folderIds.set(name, (await this.deps.library.ensureFolder(viewer, name)).id);
      return folderIds.get(name)!;
    };
    let remaining: typeof valid = [];
    const links: { folderId: string; assetId: string }[] = [];
    for (const entry of valid) {
      const assetId = owned.get(entry.file.sha256);
      if (assetId) {
        const folderId = entry.file.folder ? await folderOf(entry.file.folder) : null;
        if (folderId) links.push({ folderId, assetId });
        answers.set(entry.index, { sha256: entry.file.sha256, status: 'EXISTS', assetId });
      } else remaining.push(entry);
    }
    await this.deps.library.linkToFolders(links);

    // Quota: refuse now what cannot fit (the completion checks again, exactly).
    if (remaining.length > 0) {
      remaining = remaining.filter(({ index, file }) => {
        if (file.size <= quota && (!refuseAll || used + file.size <= quota)) return true;
        answers.set(index, { sha256: file.sha256, status: 'REFUSED', error: quotaExceeded(used, quota, file.size) });
        return false;
      });
    }

    // U4, another user: the server has the bytes; the client must prove it has them too.
    if (remaining.length > 0 && globalDedup) {
      const sizes = storedEarly ?? (await this.storedSizes([...new Set(remaining.map((r) => r.file.sha256))]));
      const claimable = remaining.filter((entry) => sizes.get(entry.file.sha256) === entry.file.size);
      // The expected answers of a few challenges are worked out now, from files at hand (filesystem
      // storage), so that their claims need no reading. A large batch, or object storage (a request
      // per range), leaves them to the claims: the check would wait for all of them.
      const answerNow = claimable.length <= SMALL_CHECK && this.deps.storage.localPath !== undefined;
      const challenges = this.createChallenges(
        viewer,
        await Promise.all(
          claimable.map(async (entry) => {
            const started = early?.get(entry.file.sha256);
            const material = started?.size === entry.file.size ? started : (answerNow ? this.challengeFor(entry.file.sha256, entry.file.size) : unanswered(entry.file.size));
            early?.delete(entry.file.sha256); // one challenge per material: a second entry of the same file gets its own
            return { file: entry.file, folderId: await folderOf(entry.file.folder), ...material, expected: await material.expected };
          }),
        ),
      );
      claimable.forEach((entry, i) => answers.set(entry.index, { sha256: entry.file.sha256, status: 'PROOF_REQUIRED', challenge: challenges[i]! }));
      remaining = remaining.filter((entry) => sizes.get(entry.file.sha256) !== entry.file.size);
    }

    // Otherwise: an upload session, new or the unfinished one (U5, U6).
    const sessions = await this.openSessions(viewer, await Promise.all(remaining.map(async (entry) => ({ file: entry.file, folderId: await folderOf(entry.file.folder) }))));
    remaining.forEach((entry, i) => {
      const session = sessions[i]!;
      answers.set(entry.index, session instanceof AppError ? { sha256: entry.file.sha256, status: 'REFUSED', error: session } : { sha256: entry.file.sha256, status: 'UPLOAD', upload: session });
    });
    if (remaining.length > 0) await this.changed(viewer.user.id);
    return files.map((_, index) => answers.get(index)!);
  }

  /** An upload session for the file, skipping deduplication (the fallback after a refused proof). */
  async startUpload(viewer: Viewer, raw: CheckFile): Promise<UploadView> {
    const file = this.validateFile(raw);
    await this.deps.library.assertFits(viewer.user.id, viewer.user.level, file.size);
    const folderId = file.folder ? (await this.deps.library.ensureFolder(viewer, file.folder)).id : null;
    const upload = await this.openSession(viewer, file, folderId);
    await this.changed(viewer.user.id);
    return upload;
  }

  async getUpload(viewer: Viewer, uploadId: string): Promise<UploadView> {
    const upload = await this.findOwnUpload(viewer, uploadId);
    return this.view(upload);
  }

  /**
   * U4: answers a proof-of-possession challenge. A challenge is single-use: a right answer and a
   * wrong one both use it up; a refusal for want of room, or because the bytes were collected in
   * the meantime, does not. Refused proofs leave the client to upload.
   */
  async claimUpload(viewer: Viewer, token: string, proof: string): Promise<AssetRow> {
    const challenge = this.challenges.open(token);
    // Someone else's challenge and one that does not exist look the same.
    if (!challenge || challenge.userId !== viewer.user.id) throw claimRefused('NOT_FOUND');
    if (challenge.expiresAt.getTime() < Date.now()) throw claimRefused('CHALLENGE_EXPIRED');
    // A large batch's challenges were made without their answers: worked out now, from the stored bytes.
    const expected =
      challenge.expected ??
      (await this.expectedProof(challenge.sha256, challenge.nonce, challenge.ranges).then(
        (bytes) => bytes.toString('hex'),
        (error: unknown) => (isAppError(error) && error.code === 'NOT_FOUND' ? null : Promise.reject(error)),
      ));
    if (expected === null) throw claimRefused('NOT_STORED');
    const answered = /^[0-9a-f]{64}$/i.test(proof) ? Buffer.from(proof, 'hex') : null;
    const proven = answered !== null && timingSafeEqual(answered, Buffer.from(expected, 'hex'));
    return (await this.claimInOneStatement(viewer, challenge, proven)) ?? this.claimMakingRoom(viewer, challenge);
  }

  /**
   * The claim as one statement (pixshare_claim_upload, see its migration): the answer recorded and
   * the asset added, one round trip to the database. Null: the quota has a say (claimMakingRoom).
   */
  private async claimInOneStatement(viewer: Viewer, challenge: Challenge, proven: boolean): Promise<AssetRow | null> {
    // Delivered only with the asset (a NOTIFY waits for its transaction's commit).
    const { channel, payload } = this.deps.pubsub.notification(syncTopic(viewer.user.id), { at: Date.now() });
    let rows: Record<string, unknown>[];
    try {
      rows = await retryingConflicts(() => this.claimStatement(viewer, challenge, proven, channel, payload));
    } catch (error) {
      const reason = (error as { code?: unknown }).code === 'PX001' ? (error as Error).message : undefined;
      if (reason === 'SLOW_PATH') return null;
      if (reason && reason in CLAIM_REFUSALS) throw claimRefused(reason as keyof typeof CLAIM_REFUSALS);
      throw error;
    }
    if (rows.length === 0) throw claimRefused('PROOF_REJECTED');
    return rowFromDriver(assets, rows[0]!);
  }

  private claimStatement(viewer: Viewer, challenge: Challenge, proven: boolean, channel: string, payload: string): Promise<Record<string, unknown>[]> {
    // Not a prepared statement: preparing costs a round trip of its own on each pooled connection
    // the first time, more than planning a function call every time (the function's own plans are kept).
    return this.deps.db.$client.unsafe(
      'select * from pixshare_claim_upload($1::uuid, $2::timestamptz, $3::uuid, $4::uuid, $5::text, $6::text, $7::uuid, $8::timestamptz, $9::boolean, $10::text, $11::bigint, $12::text, $13::text)',
      [
        challenge.id,
        challenge.expiresAt.toISOString(),
        viewer.user.id,
        viewer.device.id,
        challenge.sha256,
        challenge.name,
        challenge.folderId,
        challenge.takenAt?.toISOString() ?? null,
        proven,
        viewer.user.level,
        this.deps.library.quotaBytes(viewer.user.level),
        channel,
        payload,
      ],
      { prepare: false },
    );
  }

  /**
   * The claim of a proven challenge whose file does not fit the quota as things stand (or the
   * user's level changed): the library's addAsset refuses with the numbers, or makes room.
   */
  private async claimMakingRoom(viewer: Viewer, challenge: Challenge): Promise<AssetRow> {
    const outcome = await retryingConflicts(() => this.deps.db.transaction(async (tx): Promise<AssetRow | AppError> => {
      // In pixshare_claim_upload's order: the answer, the blob (against the collector), then addAsset's locks.
      const [answered, [blob], locked] = await Promise.all([
        tx.insert(answeredChallenges).values({ id: challenge.id, userId: viewer.user.id, expiresAt: challenge.expiresAt }).onConflictDoNothing().returning({ id: answeredChallenges.id }),
        tx.select().from(blobs).where(and(eq(blobs.sha256, challenge.sha256), eq(blobs.stored, true))).for('update'),
        this.deps.library.lockForAsset(tx, viewer.user.id, challenge.sha256),
      ]);
      if (answered.length === 0) return claimRefused('CHALLENGE_USED');
      // Thrown: the answer is not recorded (as with a refusal for want of room, thrown by addAsset).
      if (!blob) throw claimRefused('NOT_STORED');
      const [{ asset }] = await Promise.all([
        this.deps.library.addAsset(
          tx,
          { userId: viewer.user.id, deviceId: viewer.device.id, blob, name: challenge.name, takenAt: challenge.takenAt, folderId: challenge.folderId, origin: 'instant' },
          Promise.resolve(locked),
        ),
        // Delivered only if this transaction commits, i.e. with the asset.
        this.deps.pubsub.publishIn(tx, syncTopic(viewer.user.id), { at: Date.now() }),
      ]);
      return asset;
    }));
    if (outcome instanceof AppError) throw outcome;
    return outcome;
  }

  /**
   * U5: stores one chunk. It counts only once its bytes are durable and its digest
   * matched. Any range, any order, in parallel; a re-sent received chunk is a no-op.
   */
  async commitChunk(viewer: Viewer, input: ChunkInput): Promise<ChunkResult> {
    const sha256 = input.sha256.toLowerCase();
    if (!SHA256_HEX.test(sha256)) throw new AppError('BAD_USER_INPUT', 'Chunk digest must be a SHA-256', { field: 'sha256' });
    if (!Number.isSafeInteger(input.offset) || input.offset < 0) throw new AppError('BAD_USER_INPUT', 'Chunk offset must be a whole number ≥ 0', { field: 'offset' });
    if (!Number.isSafeInteger(input.length) || input.length < 1) throw new AppError('BAD_USER_INPUT', 'A chunk has at least one byte', { field: 'length' });
    if (input.length > this.limits.maxChunkBytes) throw new AppError('CHUNK_TOO_LARGE', `Chunks have at most ${this.limits.maxChunkBytes} bytes`, { ...this.limits });

    const writer = randomUUID();
    const reserved = await this.deps.db.transaction(async (tx) => {
      // Sent together (pipelined, run in order): the setting costs no round trip of its own.
      const [, upload] = await Promise.all([tx.execute(ASYNC_COMMIT), this.lockOwnUpload(tx, viewer, input.uploadId)]);
      if (upload.state !== 'open') return { upload, duplicate: true };
      const end = input.offset + input.length;
      if (end > upload.size) throw new AppError('CHUNK_OUT_OF_RANGE', `The chunk ends at byte ${end}, past the file's ${upload.size} bytes`, { size: upload.size });
      const chunks = await tx.select().from(uploadChunks).where(eq(uploadChunks.uploadId, upload.id));
      const live = chunks.filter((c) => c.state === 'received' || (c.leaseUntil !== null && c.leaseUntil.getTime() > Date.now()));
      const same = chunks.find((c) => c.offset === input.offset && c.length === input.length);
      if (same?.state === 'received') {
        if (same.sha256 !== sha256) throw new AppError('CHUNK_OVERLAP', 'Different bytes were already received for this range', { offset: same.offset, length: same.length });
        return { upload, duplicate: true };
      }
      const conflict = live.find((c) => c !== same && overlaps(c, input));
      if (conflict) throw new AppError('CHUNK_OVERLAP', `The chunk overlaps ${conflict.state === 'received' ? 'received' : 'in-flight'} bytes ${conflict.offset}–${conflict.offset + conflict.length - 1}`, { offset: conflict.offset, length: conflict.length });
      const startsNext = end === upload.size || chunks.some((c) => c.offset === end);
      if (input.length < this.limits.minChunkBytes && !startsNext) throw new AppError('CHUNK_TOO_SMALL', `Chunks have at least ${this.limits.minChunkBytes} bytes unless they end the file or meet a received chunk`, { ...this.limits });
      // Reservations of dead writers that overlap this chunk are cleared.
      const dead = chunks.filter((c) => c !== same && c.state === 'writing' && overlaps(c, input));
      if (dead.length > 0) await tx.delete(uploadChunks).where(and(eq(uploadChunks.uploadId, upload.id), inArray(uploadChunks.offset, dead.map((c) => c.offset))));
      await tx
        .insert(uploadChunks)
        .values({ uploadId: upload.id, offset: input.offset, length: input.length, sha256, state: 'writing', writer, leaseUntil: sql`now() + make_interval(secs => ${LEASE_SECONDS})` })
        .onConflictDoUpdate({
          target: [uploadChunks.uploadId, uploadChunks.offset],
          set: { length: input.length, sha256, state: 'writing', writer, leaseUntil: sql`now() + make_interval(secs => ${LEASE_SECONDS})`, updatedAt: sql`now()` },
        });
      await tx.update(uploads).set({ lastActivityAt: sql`now()` }).where(eq(uploads.id, upload.id));
      return { upload, duplicate: false };
    });
    if (reserved.duplicate) {
      input.body.resume();
      const upload = await this.findOwnUpload(viewer, input.uploadId);
      return { upload: await this.view(upload), asset: upload.assetId ? await this.deps.library.getAsset(viewer, upload.assetId) : null };
    }

    // A slow chunk keeps its reservation and its session alive: with a short idle limit, the
    // session (and its staged bytes) must not expire under a chunk that is still arriving.
    const renew = setInterval(() => {
      void this.deps.db
        .update(uploadChunks)
        .set({ leaseUntil: sql`now() + make_interval(secs => ${LEASE_SECONDS})` })
        .where(and(eq(uploadChunks.uploadId, input.uploadId), eq(uploadChunks.offset, input.offset), eq(uploadChunks.writer, writer)))
        .catch(() => {});
      void this.deps.db.update(uploads).set({ lastActivityAt: sql`now()` }).where(and(eq(uploads.id, input.uploadId), eq(uploads.state, 'open'))).catch(() => {});
    }, Math.min(LEASE_SECONDS / 3, this.deps.config.uploads.sessionIdleSeconds / 3) * 1000);
    try {
      await this.deps.storage.writeStagedChunk(input.uploadId, input.offset, input.length, input.body, { expectedSha256: sha256 });
    } catch (error) {
      await this.deps.db
        .delete(uploadChunks)
        .where(and(eq(uploadChunks.uploadId, input.uploadId), eq(uploadChunks.offset, input.offset), eq(uploadChunks.writer, writer)))
        .catch(() => {});
      throw error;
    } finally {
      clearInterval(renew);
    }

    const { upload, complete, received } = await this.deps.db.transaction(async (tx) => {
      const [, upload] = await Promise.all([tx.execute(ASYNC_COMMIT), this.lockOwnUpload(tx, viewer, input.uploadId)]);
      await tx
        .update(uploadChunks)
        .set({ state: 'received', leaseUntil: null, updatedAt: sql`now()` })
        .where(and(eq(uploadChunks.uploadId, upload.id), eq(uploadChunks.offset, input.offset), eq(uploadChunks.writer, writer)));
      const received = await this.receivedChunks(upload.id, tx);
      const receivedBytes = received.reduce((n, c) => n + c.length, 0);
      const complete = upload.state === 'open' && missingRanges(upload.size, received).length === 0;
      const [updated] = await tx
        .update(uploads)
        .set({ receivedBytes, lastActivityAt: sql`now()`, ...(complete ? { state: 'completing' as const } : {}) })
        .where(eq(uploads.id, upload.id))
        .returning();
      return { upload: updated!, complete, received };
    });
    this.deps.storage.noteReceived?.(upload.id, received);
    await this.changed(viewer.user.id);
    if (!complete) return { upload: this.viewWith(upload, received), asset: null };
    const asset = await this.complete(viewer, upload);
    return { upload: await this.view(await this.findOwnUpload(viewer, upload.id)), asset };
  }

  /**
   * U7: finishes an upload whose bytes are all there. Idempotent: a finished upload
   * answers with its asset; one whose completion died with its server is retried.
   */
  async completeUpload(viewer: Viewer, uploadId: string): Promise<AssetRow> {
    const upload = await this.deps.db.transaction(async (tx) => {
      const upload = await this.lockOwnUpload(tx, viewer, uploadId);
      if (upload.state === 'done') return upload; // (a failed one was refused by lockOwnUpload)
      const stale = upload.state === 'completing' && Date.now() - upload.lastActivityAt.getTime() > STALE_COMPLETION_SECONDS * 1000;
      if (upload.state === 'completing' && !stale) throw new AppError('UPLOAD_NOT_OPEN', 'The upload is completing; ask again in a moment', { state: upload.state });
      const missing = missingRanges(upload.size, await this.receivedChunks(upload.id, tx));
      if (missing.length > 0) throw new AppError('UPLOAD_NOT_OPEN', 'Bytes are still missing', { missing });
      const [updated] = await tx.update(uploads).set({ state: 'completing', lastActivityAt: sql`now()` }).where(eq(uploads.id, upload.id)).returning();
      return updated!;
    });
    if (upload.state === 'done') {
      // Done, but its asset was deleted (or evicted) since: it is not brought back.
      if (!upload.assetId) throw new AppError('NOT_FOUND', 'The asset this upload made was deleted');
      return this.deps.library.getAsset(viewer, upload.assetId);
    }
    return this.complete(viewer, upload);
  }

  private async complete(viewer: Viewer, upload: UploadRow): Promise<AssetRow> {
    const { storage, blobs: blobService } = this.deps;
    const key = blobKey(upload.sha256);
    await blobService.pin(upload.sha256, upload.size);
    // A long assembly keeps the upload looking alive, so a retry does not take it for a dead one.
    const heartbeat = setInterval(() => {
      void this.deps.db.update(uploads).set({ lastActivityAt: sql`now()` }).where(eq(uploads.id, upload.id)).catch(() => {});
    }, 60_000);
    try {
      const chunks = (await this.receivedChunks(upload.id)).map(({ offset, length }) => ({ offset, length }));
      await storage.assembleStaged(upload.id, { size: upload.size, chunks, expectedSha256: upload.sha256, key });
    } catch (error) {
      if (isAppError(error) && error.code === 'DIGEST_MISMATCH') {
        await storage.dropStaged(upload.id);
        const message = `The assembled file does not match the declared SHA-256 and size; it was discarded (${String(error.details.actual ?? 'different hash')})`;
        await this.deps.db.delete(uploadChunks).where(eq(uploadChunks.uploadId, upload.id));
        await this.deps.db.update(uploads).set({ state: 'failed', failure: message, receivedBytes: 0, lastActivityAt: sql`now()` }).where(eq(uploads.id, upload.id));
        await this.changed(viewer.user.id);
        throw new AppError('UPLOAD_DIGEST_MISMATCH', message, { expected: upload.sha256, actual: error.details.actual, expectedSize: upload.size, actualSize: error.details.actualSize });
      }
      // Staging gone while the content address holds the bytes: an earlier completion
      // assembled them and died before recording it (only assembly removes a full staging).
      const stored = isAppError(error) && error.code === 'NOT_FOUND' && (await storage.stat(key))?.size === upload.size;
      if (!stored) {
        if (isAppError(error) && error.code === 'NOT_FOUND') {
          // The staged bytes are gone (e.g. a crash in the middle of assembly): forget the chunks,
          // so the interrupt list asks for them again instead of leaving the upload stuck.
          await storage.dropStaged(upload.id);
          await this.deps.db.delete(uploadChunks).where(eq(uploadChunks.uploadId, upload.id));
          await this.deps.db.update(uploads).set({ state: 'open', receivedBytes: 0, lastActivityAt: sql`now()` }).where(eq(uploads.id, upload.id));
          await this.changed(viewer.user.id);
          throw new AppError('UPLOAD_NOT_OPEN', 'The staged bytes were lost; send the file again (check it to see what is missing)', { missing: [{ offset: 0, length: upload.size }] });
        }
        await this.deps.db.update(uploads).set({ state: 'open' }).where(eq(uploads.id, upload.id));
        throw error;
      }
    } finally {
      clearInterval(heartbeat);
    }
    await blobService.markStored(upload.sha256, upload.size); // verified by assembly (or found stored with that size)
    // Media facts are a bonus: the verified bytes count even if this fails.
    await blobService.describeQuietly(upload.sha256);
    try {
      const asset = await retryingConflicts(() => this.deps.db.transaction(async (tx) => {
        const [blob] = await tx.select().from(blobs).where(eq(blobs.sha256, upload.sha256)).for('update');
        const { asset } = await this.deps.library.addAsset(tx, {
          userId: viewer.user.id,
          deviceId: upload.deviceId,
          blob: blob!,
          name: upload.name,
          takenAt: upload.takenAt,
          folderId: upload.folderId,
          origin: 'upload',
        });
        await tx.update(uploads).set({ state: 'done', assetId: asset.id, receivedBytes: upload.size, lastActivityAt: sql`now()` }).where(eq(uploads.id, upload.id));
        await tx.delete(uploadChunks).where(eq(uploadChunks.uploadId, upload.id));
        return asset;
      }));
      return asset;
    } catch (error) {
      if (isAppError(error) && error.code === 'QUOTA_EXCEEDED') {
        await this.deps.db.update(uploads).set({ state: 'failed', failure: error.message }).where(eq(uploads.id, upload.id));
      } else {
        // Anything else (a deadlock, a lost connection): the bytes are stored and pinned, the
        // chunks still counted; back to open, so that completeUpload finishes at once instead of
        // waiting out a stale completion.
        await this.deps.db.update(uploads).set({ state: 'open', lastActivityAt: sql`now()` }).where(eq(uploads.id, upload.id)).catch(() => {});
      }
      throw error;
    } finally {
      await this.changed(viewer.user.id);
    }
  }

  /** Removes sessions idle past the limit, with their staged bytes. Safe on several instances. */
  async expireIdleSessions(limit = 100): Promise<number> {
    const idle = this.deps.config.uploads.sessionIdleSeconds;
    const doomed = await this.deps.db.transaction(async (tx) => {
      const rows = await tx
        .select({ id: uploads.id, userId: uploads.userId })
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
      if (rows.length > 0) await tx.delete(uploads).where(inArray(uploads.id, rows.map((r) => r.id)));
      // Answers are kept while their challenges could still be answered again.
      await tx.delete(answeredChallenges).where(sql`${answeredChallenges.expiresAt} < now() - interval '1 hour'`);
      return rows;
    });
    // Bytes go only once the sessions are gone for good (a failed commit keeps both). One that
    // cannot be removed does not keep the others: each is tried, and the failures reported together.
    const failed: { id: string; error: unknown }[] = [];
    for (const { id } of doomed) await this.deps.storage.dropStaged(id).catch((error: unknown) => failed.push({ id, error }));
    for (const userId of new Set(doomed.map((d) => d.userId))) await this.changed(userId);
    if (failed.length > 0) {
      throw new AggregateError(
        failed.map((f) => f.error),
        `the staged bytes of ${failed.length} expired upload(s) could not be removed: ${failed.map((f) => f.id).join(', ')}`,
      );
    }
    return doomed.length;
  }

  // -- internals -------------------------------------------------------------

  private validateFile(raw: CheckFile): CheckFile {
    const sha256 = String(raw.sha256 ?? '').toLowerCase();
    if (!SHA256_HEX.test(sha256)) throw new AppError('BAD_USER_INPUT', 'sha256 must be 64 hexadecimal characters', { field: 'sha256' });
    if (!Number.isSafeInteger(raw.size) || raw.size < 0) throw new AppError('BAD_USER_INPUT', 'size must be a whole number of bytes', { field: 'size' });
    const max = this.deps.config.uploads.maxFileBytes;
    if (raw.size > max) throw new AppError('FILE_TOO_LARGE', `Files have at most ${max} bytes`, { maxFileBytes: max });
    const name = String(raw.name ?? '').trim();
    if (name.length === 0 || name.length > 255 || /[\u0000-\u001f]/.test(name)) throw new AppError('BAD_USER_INPUT', 'name must have 1 to 255 printable characters', { field: 'name' });
    // Checked here, so that one bad folder name refuses its file alone, not the whole batch.
    const folder = raw.folder?.trim() ? parseFolderName(raw.folder) : null;
    return { sha256, size: raw.size, name, folder, takenAt: raw.takenAt ?? null };
  }

  private async openSession(viewer: Viewer, file: CheckFile, folderId: string | null): Promise<UploadView> {
    const values = { userId: viewer.user.id, deviceId: viewer.device.id, sha256: file.sha256, size: file.size, name: file.name, folderId, takenAt: file.takenAt ?? null };
    for (let attempt = 0; attempt < 3; attempt++) {
      const [existing] = await this.resumeSessions(viewer.user.id, [file.sha256]);
      if (existing) {
        if (existing.size !== file.size) throw new AppError('CONFLICT', `An unfinished upload of this file declared ${existing.size} bytes`, { uploadId: existing.id, size: existing.size });
        return this.view(existing);
      }
      const [created] = await this.deps.db.insert(uploads).values(values).onConflictDoNothing().returning();
      if (created) return this.view(created);
    }
    throw new AppError('CONFLICT', 'Could not open an upload session; try again');
  }

  /**
   * A small check's three questions in one statement: which of the hashes the user has (as which
   * asset), the user's usage, and which of them the server stores (with their sizes). One round
   * trip to one connection, and not a prepared statement: it would be prepared anew on each pooled
   * connection, a round trip of its own each time.
   */
  private async lookUpSmall(userId: string, hashes: string[]): Promise<[Map<string, string>, number, Map<string, number>]> {
    const rows = await this.deps.db.$client.unsafe<{ kind: 'owned' | 'stored' | 'used'; sha256: string | null; id: string | null; size: string }[]>(
      `select 'owned' as kind, sha256, id::text as id, null::bigint as size from assets where user_id = $1 and sha256 = any($2::text[])
       union all select 'stored', sha256, null, size from blobs where sha256 = any($2::text[]) and stored
       union all select 'used', null, null, used_bytes from users where id = $1`,
      [userId, hashes],
      { prepare: false },
    );
    const owned = new Map<string, string>();
    const stored = new Map<string, number>();
    let used = 0;
    for (const row of rows) {
      if (row.kind === 'owned') owned.set(row.sha256!, row.id!);
      else if (row.kind === 'stored') stored.set(row.sha256!, Number(row.size));
      else used = Number(row.size);
    }
    return [owned, used, stored];
  }

  /** Sizes of the stored blobs among these hashes. */
  private async storedSizes(sha256s: string[]): Promise<Map<string, number>> {
    const stored = await this.statements.storedSizes.execute({ hashes: sha256s });
    return new Map(stored.map((b) => [b.sha256, b.size]));
  }

  /** A challenge's nonce and ranges for a file of `size` bytes, and the right answer from the stored bytes (null: not stored). */
  private challengeFor(sha256: string, size: number): ChallengeMaterial {
    const nonce = randomBytes(32).toString('hex');
    const ranges = proofRanges(size);
    const expected = this.expectedProof(sha256, nonce, ranges).then(
      (proof) => proof.toString('hex'),
      () => null, // not stored (or unreadable): the claim works it out, or refuses, itself
    );
    return { size, nonce, ranges, expected };
  }

  /** Sealed challenge tokens (nothing is written: see challenge-tokens.ts). */
  private createChallenges(viewer: Viewer, files: { file: CheckFile; folderId: string | null; nonce: string; ranges: ByteRange[]; expected: string | null }[]): ChallengeView[] {
    const expiresAt = new Date(Date.now() + this.deps.config.uploads.challengeSeconds * 1000);
    return files.map(({ file, folderId, nonce, ranges, expected }) => {
      const challenge: Challenge = {
        id: randomUUID(),
        userId: viewer.user.id,
        deviceId: viewer.device.id,
        sha256: file.sha256,
        size: file.size,
        name: file.name,
        folderId,
        takenAt: file.takenAt ?? null,
        nonce,
        ranges,
        expiresAt,
        expected,
      };
      return { id: this.challenges.seal(challenge), nonce, ranges, expiresAt };
    });
  }

  /**
   * Upload sessions for many files in a few statements: the unfinished ones are
   * resumed, the others created together. A file whose session another request
   * creates at the same moment falls back to the one-by-one path.
   */
  private async openSessions(viewer: Viewer, files: { file: CheckFile; folderId: string | null }[]): Promise<(UploadView | AppError)[]> {
    if (files.length === 0) return [];
    const shas = [...new Set(files.map((f) => f.file.sha256))];
    const open = await this.resumeSessions(viewer.user.id, shas);
    const bySha = new Map(open.map((u) => [u.sha256, u]));
    const fresh = files.filter(({ file }, i) => !bySha.has(file.sha256) && files.findIndex((f) => f.file.sha256 === file.sha256) === i);
    if (fresh.length > 0) {
      const created = await this.deps.db
        .insert(uploads)
        .values(fresh.map(({ file, folderId }) => ({ userId: viewer.user.id, deviceId: viewer.device.id, sha256: file.sha256, size: file.size, name: file.name, folderId, takenAt: file.takenAt ?? null })))
        .onConflictDoNothing()
        .returning();
      for (const upload of created) bySha.set(upload.sha256, upload);
    }
    const received = await this.receivedChunksOf(open.map((u) => u.id));
    return Promise.all(
      files.map(async ({ file, folderId }) => {
        const upload = bySha.get(file.sha256);
        if (!upload) return this.openSession(viewer, file, folderId).catch((error: unknown) => (isAppError(error) ? error : Promise.reject(error)));
        if (upload.size !== file.size) return new AppError('CONFLICT', `An unfinished upload of this file declared ${upload.size} bytes`, { uploadId: upload.id, size: upload.size });
        return this.viewWith(upload, received.get(upload.id) ?? []);
      }),
    );
  }

  /**
   * The user's unfinished sessions for these files. Finding one is activity: an open session a
   * check hands out gets its idle time back, so the client can use it (one past the limit that
   * housekeeping has not removed yet would otherwise answer UPLOAD_EXPIRED to every chunk, and
   * the next check would hand it out again). A completing one is left alone, so that a dead
   * completion still goes stale.
   */
  private resumeSessions(userId: string, shas: string[]): Promise<UploadRow[]> {
    return this.deps.db
      .update(uploads)
      .set({ lastActivityAt: sql`case when ${uploads.state} = 'open' then now() else ${uploads.lastActivityAt} end` })
      .where(and(eq(uploads.userId, userId), sql`${uploads.sha256} = any(${sql.param(shas)}::text[])`, inArray(uploads.state, ['open', 'completing'])))
      .returning();
  }

  private async expectedProof(sha256: string, nonce: string, ranges: ByteRange[]): Promise<Buffer> {
    const key = blobKey(sha256);
    const wanted = ranges.filter((range) => range.length > 0);
    // Filesystem storage: one open file for all the ranges; S3: the range requests in parallel.
    const local = this.deps.storage.localPath?.(key);
    let pieces: Buffer[];
    if (local) {
      const handle = await open(local, 'r').catch((error: NodeJS.ErrnoException) => {
        throw error.code === 'ENOENT' ? new AppError('NOT_FOUND', 'No such blob') : error;
      });
      try {
        pieces = await Promise.all(
          wanted.map(async (range) => {
            const buffer = Buffer.alloc(range.length);
            const { bytesRead } = await handle.read(buffer, 0, range.length, range.offset);
            if (bytesRead !== range.length) throw new AppError('NOT_FOUND', 'The stored file is shorter than declared');
            return buffer;
          }),
        );
      } finally {
        // Not waited for: the answer does not depend on it.
        handle.close().catch(() => {});
      }
    } else {
      pieces = await Promise.all(wanted.map(async (range) => buffer(await this.deps.storage.get(key, { start: range.offset, end: range.offset + range.length - 1 }))));
    }
    return Buffer.from(proofOfPossession(nonce, pieces), 'hex');
  }

  private async findOwnUpload(viewer: Viewer, uploadId: string): Promise<UploadRow> {
    if (!isUuid(uploadId)) throw new AppError('NOT_FOUND', 'No such upload');
    const [upload] = await this.deps.db.select().from(uploads).where(and(eq(uploads.id, uploadId), eq(uploads.userId, viewer.user.id)));
    if (!upload) throw new AppError('NOT_FOUND', 'No such upload');
    return upload;
  }

  private async lockOwnUpload(tx: Parameters<Parameters<Db['transaction']>[0]>[0], viewer: Viewer, uploadId: string): Promise<UploadRow> {
    if (!isUuid(uploadId)) throw new AppError('NOT_FOUND', 'No such upload');
    const [upload] = await tx.select().from(uploads).where(and(eq(uploads.id, uploadId), eq(uploads.userId, viewer.user.id))).for('update');
    // Someone else's session and a missing one look the same.
    if (!upload) throw new AppError('NOT_FOUND', 'No such upload');
    if (upload.state === 'open' && upload.lastActivityAt.getTime() + this.deps.config.uploads.sessionIdleSeconds * 1000 < Date.now()) {
      throw new AppError('UPLOAD_EXPIRED', 'The upload expired after being idle; check the file again to start over');
    }
    if (upload.state === 'failed') throw new AppError('UPLOAD_NOT_OPEN', upload.failure ?? 'The upload failed; check the file again to start over', { state: upload.state });
    return upload;
  }

  private async receivedChunks(uploadId: string, tx: Pick<Db, 'select'> = this.deps.db): Promise<UploadChunkRow[]> {
    return tx.select().from(uploadChunks).where(and(eq(uploadChunks.uploadId, uploadId), eq(uploadChunks.state, 'received')));
  }

  private async receivedChunksOf(uploadIds: string[]): Promise<Map<string, ByteRange[]>> {
    const byUpload = new Map<string, ByteRange[]>();
    if (uploadIds.length === 0) return byUpload;
    const rows = await this.deps.db
      .select({ uploadId: uploadChunks.uploadId, offset: uploadChunks.offset, length: uploadChunks.length })
      .from(uploadChunks)
      .where(and(sql`${uploadChunks.uploadId} = any(${sql.param(uploadIds)}::uuid[])`, eq(uploadChunks.state, 'received')));
    for (const row of rows) byUpload.set(row.uploadId, [...(byUpload.get(row.uploadId) ?? []), row]);
    return byUpload;
  }

  private async view(upload: UploadRow): Promise<UploadView> {
    return this.viewWith(upload, upload.state === 'open' || upload.state === 'completing' ? await this.receivedChunks(upload.id) : []);
  }

  private viewWith(upload: UploadRow, received: readonly ByteRange[]): UploadView {
    return {
      ...upload,
      missing: upload.state === 'done' ? [] : missingRanges(upload.size, received),
      limits: this.limits,
      expiresAt: new Date(upload.lastActivityAt.getTime() + this.deps.config.uploads.sessionIdleSeconds * 1000),
    };
  }

  private async changed(userId: string): Promise<void> {
    await this.deps.pubsub.publish(syncTopic(userId), { at: Date.now() });
  }
}

interface ChallengeMaterial {
  /** The file size the ranges were picked for. */
  size: number;
  nonce: string;
  ranges: ByteRange[];
  /** Hex SHA-256 of the nonce and the ranges' stored bytes; null: not worked out. */
  expected: Promise<string | null>;
}

function unanswered(size: number): ChallengeMaterial {
  return { size, nonce: randomBytes(32).toString('hex'), ranges: proofRanges(size), expected: Promise.resolve(null) };
}

function sizeOf(files: { file: CheckFile }[], sha256: string): number {
  return files.find((entry) => entry.file.sha256 === sha256)!.file.size;
}

/**
 * Runs `work` again, up to three runs in all, when PostgreSQL undid it for a deadlock or a
 * serialization failure (nothing of it holds then). A claim or a completion takes the blob row
 * before the user row; a delete or an eviction of the same user's assets takes them the other way.
 */
async function retryingConflicts<T>(work: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      // drizzle wraps the driver's error (cause); postgres.js's own carries the SQLSTATE.
      const code = (error as { code?: unknown }).code ?? (error as { cause?: { code?: unknown } }).cause?.code;
      if (attempt >= 3 || (code !== '40P01' && code !== '40001')) throw error;
    }
  }
}

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

/** Random ranges the client must read from its copy: a few small windows, or the whole file when it is small. */
export function proofRanges(size: number): ByteRange[] {
  if (size <= PROOF_RANGES * PROOF_RANGE_BYTES) return [{ offset: 0, length: size }];
  const ranges: ByteRange[] = [];
  for (let i = 0; i < PROOF_RANGES; i++) {
    const offset = randomBytes(6).readUIntBE(0, 6) % (size - PROOF_RANGE_BYTES + 1);
    ranges.push({ offset, length: PROOF_RANGE_BYTES });
  }
  // The last bytes of the file are always asked for: prefixes are the easiest thing to have by accident.
  ranges.push({ offset: size - PROOF_RANGE_BYTES, length: PROOF_RANGE_BYTES });
  return ranges;
}
