import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { and, eq, sql } from 'drizzle-orm';
import type { Config } from '../../config.js';
import type { Db } from '../../db/client.js';
import { runAgainOnConflict, type Tx } from '../../db/transaction.js';
import { assets, blobs, type AssetRow, type BlobRow } from '../../db/schema/index.js';
import type { Logger } from '../../logger.js';
import type { Access } from '../access.js';
import { blobKey, derivedKey } from '../blobs.js';
import type { Viewer } from '../devices.js';
import { topics, type Events } from '../events.js';
import type { ForegroundActivity } from '../jobs/foreground-activity.js';
import type { JobQueue, JobRun } from '../jobs/job-queue.js';
import { processMedia, type ProcessedMedia } from '../media/process-media.js';
import type { TakenAt } from '../media/read-media-facts.js';
import { ffmpegPath } from '../media/video-poster.js';
import type { BlobStore } from '../storage/blob-store.js';

/**
 * Background processing of stored files (S12): an upload counts as soon as its bytes are
 * verified; its thumbnail, preview, facts (capture time, camera, place, a video's length) and
 * perceptual hash follow from a `process-media` job — durable (a row of the job queue, added
 * in the transaction that adds the asset), retried, run once across instances, at most
 * PIXSHARE_MEDIA_CONCURRENCY at a time per instance. The work is per blob: every asset of the
 * same bytes gets the facts in the transaction that records them, and each owner hears of it.
 */
/** How long no chunk must have arrived before a media job starts (while it gives way to uploads). */
const FOREGROUND_QUIET_MS = 250;

export class MediaProcessing {
  private readonly ffmpeg: string | null;

  constructor(private readonly deps: { db: Db; storage: BlobStore; access: Access; events: Events; jobs: JobQueue; foreground: ForegroundActivity; config: Pick<Config, 'media' | 'uploads'>; log: Pick<Logger, 'error'> }) {
    this.ffmpeg = ffmpegPath(deps.config.media.ffmpegPath);
    deps.jobs.handle('process-media', ({ sha256, force }, run) => this.run(sha256, run, force === true));
  }

  /** Queues the blob's processing with the caller's transaction (once: the job is keyed by the blob). */
  async queueIn(tx: Tx, sha256: string, options: { force?: boolean } = {}): Promise<void> {
    await this.deps.jobs.addIn(tx, 'process-media', options.force ? { sha256, force: true } : { sha256 }, { key: jobKey(sha256), maxAttempts: MEDIA_ATTEMPTS });
  }

  /** queueIn for many blobs in one statement per thousand (a whole library's reprocessing). */
  private async queueManyIn(tx: Tx, sha256s: readonly string[], options: { force?: boolean } = {}): Promise<void> {
    for (let i = 0; i < sha256s.length; i += 1000) {
      const payloads = sha256s.slice(i, i + 1000).map((sha256) => (options.force ? { sha256, force: true } : { sha256 }));
      await this.deps.jobs.addManyIn(tx, 'process-media', payloads, { key: (payload) => jobKey(payload.sha256), maxAttempts: MEDIA_ATTEMPTS });
    }
  }

  /**
   * Queues every stored blob still pending (e.g. files stored before an upgrade that moved
   * processing to the background, or whose job was lost with a database restore). Keyed jobs:
   * those already queued stay as they are. Returns how many were looked at.
   */
  async queuePending(limit = 10_000): Promise<number> {
    return this.deps.db.transaction(async (tx) => {
      const pending = await tx
        .select({ sha256: blobs.sha256 })
        .from(blobs)
        .where(and(eq(blobs.stored, true), eq(blobs.thumbnailStatus, 'pending'), sql`${blobs.refCount} > 0`))
        .limit(limit);
      await this.queueManyIn(tx, pending.map((row) => row.sha256));
      return pending.length;
    });
  }

  /**
   * Runs the processing again (after an upgrade that reads more formats, say) for one of the
   * viewer's assets, or for all of them. What exists stays visible until the new images replace it.
   * Returns the number of files queued.
   */
  async reprocess(viewer: Viewer, assetId: string | null): Promise<number> {
    const hashes = assetId
      ? [(await this.deps.access.asset(viewer, 'change', assetId)).sha256]
      : (await this.deps.db.selectDistinct({ sha256: assets.sha256 }).from(assets).where(eq(assets.userId, viewer.user.id))).map((row) => row.sha256);
    await this.deps.db.transaction((tx) => this.queueManyIn(tx, hashes, { force: true }));
    return hashes.length;
  }

  /** The viewer's assets each time their processing finished (thumbnails ready, or failed). */
  async *watchProcessed(viewer: Viewer): AsyncGenerator<AssetRow[]> {
    const events = this.deps.events.subscribe(topics.media(viewer.user.id));
    try {
      for await (const event of events) {
        const rows = await this.deps.access.assets(viewer, 'view', event.assetIds);
        if (rows.length > 0) yield rows;
      }
    } finally {
      await events.return?.();
    }
  }

  /** The job: one blob. Bad files end as `failed`; trouble reading the bytes is retried. */
  private async run(sha256: string, run: JobRun, force: boolean): Promise<void> {
    const [blob] = await this.deps.db.select().from(blobs).where(eq(blobs.sha256, sha256));
    // Collected since, or done by an earlier run of the same job.
    if (!blob?.stored || (blob.thumbnailStatus !== 'pending' && !force)) return;
    // Uploads receiving bytes here go first (their files count once stored; thumbnails can follow).
    const { yieldSeconds } = this.deps.config.media;
    if (yieldSeconds > 0) await this.deps.foreground.quiet(FOREGROUND_QUIET_MS, yieldSeconds * 1000);
    let processed: ProcessedMedia;
    try {
      processed = await this.withLocalFile(blob, (file) =>
        processMedia(file, {
          maxPixels: this.deps.config.uploads.maxImagePixels,
          maxInputBytes: this.deps.config.media.maxInputBytes,
          timeoutSeconds: this.deps.config.media.timeoutSeconds,
          ffmpeg: this.ffmpeg,
        }),
      );
      if (processed.failure?.reason === 'read_error') throw new Error(processed.failure.message);
    } catch (error) {
      if (!run.lastAttempt) throw error;
      // Given up: the file stays stored and counted, marked as having no images.
      this.deps.log.error(`processing blob ${sha256} failed for good`, error);
      await this.record(sha256, { thumbnailStatus: blob.thumbnailStatus === 'ready' ? 'ready' : 'failed', thumbnailError: `gave up: ${String(error instanceof Error ? error.message : error).slice(0, 400)}` });
      return;
    }
    const { storage } = this.deps;
    if (processed.images) {
      const { thumbnail, preview } = processed.images;
      await Promise.all([
        storage.put(derivedKey(sha256, 'thumbnail'), Readable.from([thumbnail.data]), { contentType: 'image/webp' }),
        storage.put(derivedKey(sha256, 'preview'), Readable.from([preview.data]), { contentType: 'image/webp' }),
      ]);
    }
    const { facts } = processed;
    const recorded = await this.record(sha256, {
      mimeType: processed.mediaType,
      width: facts.width,
      height: facts.height,
      ...takenAtColumns(facts.takenAt),
      make: facts.make,
      model: facts.model,
      latitude: facts.location?.latitude ?? null,
      longitude: facts.location?.longitude ?? null,
      altitude: facts.location?.altitude ?? null,
      durationMs: facts.durationMs,
      videoCodec: facts.videoCodec,
      phash: processed.images?.perceptualHash.value ?? null,
      // A reprocess that fails keeps the images an earlier run made.
      thumbnailStatus: processed.images || blob.thumbnailStatus === 'ready' ? 'ready' : 'failed',
      thumbnailError: processed.failure ? `${processed.failure.reason}: ${processed.failure.message}`.slice(0, 500) : null,
    });
    // Collected while it was processed: what was made for it goes too (the collector may have run before the put).
    if (!recorded && processed.images) {
      await storage.delete(derivedKey(sha256, 'thumbnail'));
      await storage.delete(derivedKey(sha256, 'preview'));
    }
  }

  /**
   * Writes the blob's facts and copies them onto every asset of it, in one transaction, and tells
   * each owner. Completions and claims hold the blob row while they add an asset: an asset added
   * meanwhile is either copied here or copies the facts itself.
   */
  private async record(sha256: string, facts: Partial<BlobRow>): Promise<boolean> {
    return runAgainOnConflict(() => this.deps.db.transaction(async (tx) => {
      // The blob's assets first, then the blob: the order a deletion takes them in (asset, then its
      // blob's reference count). An asset a claim or completion adds meanwhile is not among them,
      // but it waits for the blob row and the update below sees it.
      await tx.select({ id: assets.id }).from(assets).where(eq(assets.sha256, sha256)).orderBy(assets.id).for('update');
      const [blob] = await tx.update(blobs).set(facts).where(and(eq(blobs.sha256, sha256), eq(blobs.stored, true))).returning();
      if (!blob) return false;
      const updated = await tx
        .update(assets)
        .set({
          ...(blob.mimeType ? { mimeType: blob.mimeType } : {}),
          width: blob.width,
          height: blob.height,
          // The file's own capture time wins over the file time the client sent (kept otherwise).
          ...(blob.takenAt ? { takenAt: blob.takenAt, takenAtZone: blob.takenAtZone } : {}),
          make: blob.make,
          model: blob.model,
          latitude: blob.latitude,
          longitude: blob.longitude,
          altitude: blob.altitude,
          durationMs: blob.durationMs,
          videoCodec: blob.videoCodec,
          // A hash the client sent stays when the server could not compute one (a format it cannot decode).
          ...(blob.phash !== null ? { phash: blob.phash } : {}),
          thumbnailStatus: blob.thumbnailStatus,
        })
        .where(eq(assets.sha256, sha256))
        .returning({ id: assets.id, userId: assets.userId });
      const byUser = new Map<string, string[]>();
      for (const { id, userId } of updated) byUser.set(userId, [...(byUser.get(userId) ?? []), id]);
      for (const [userId, assetIds] of byUser) await this.deps.events.publishIn(tx, topics.media(userId), { assetIds: assetIds.slice(0, 1000) });
      return true;
    }));
  }

  /** The blob as a file on this machine: where filesystem storage keeps it, else a temporary copy. */
  private async withLocalFile<T>(blob: BlobRow, work: (file: string) => Promise<T>): Promise<T> {
    const { storage } = this.deps;
    const local = storage.localPath?.(blobKey(blob.sha256));
    if (local) return work(local);
    const dir = await mkdtemp(path.join(tmpdir(), 'pixshare-media-'));
    try {
      const file = path.join(dir, 'original');
      await pipeline(blob.size === 0 ? Readable.from([]) : await storage.get(blobKey(blob.sha256)), createWriteStream(file));
      return await work(file);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}

/** One job per blob, however many assets and requests ask for it. */
const jobKey = (sha256: string) => `media:${sha256}`;

/**
 * Bad files do not throw (they end as failed); what is retried is trouble reading the stored
 * bytes, given up after five tries over about a minute and a half (backoff e^n seconds).
 */
const MEDIA_ATTEMPTS = 5;

/** takenAt as stored: exact with its zone, or the camera's wall-clock time as if it were UTC (zone null). */
function takenAtColumns(takenAt: TakenAt | null): Pick<BlobRow, 'takenAt' | 'takenAtZone'> {
  if (!takenAt) return { takenAt: null, takenAtZone: null };
  if (takenAt.instant && takenAt.offset) return { takenAt: takenAt.instant, takenAtZone: takenAt.offset === '+00:00' ? 'Z' : takenAt.offset };
  const date = new Date(`${takenAt.local}Z`);
  return Number.isNaN(date.getTime()) ? { takenAt: null, takenAtZone: null } : { takenAt: date, takenAtZone: null };
}
