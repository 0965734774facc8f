import { and, eq, lt, sql } from 'drizzle-orm';
import { Readable } from 'node:stream';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { Db } from '../db/client.js';
import type { Tx } from '../db/transaction.js';
import { assets, blobs, editedImages, type BlobRow, type EditedImageRow } from '../db/schema/index.js';
import { AppError } from './app-error.js';
import { applyEditRule, EDIT_RULE_EXTENSIONS, editRuleKey, type EditRule } from './media/apply-edit-rule.js';
import { withImageSlot } from './media/sharp-runtime.js';
import { localTakenAt } from './media/read-media-facts.js';
import { isDecodableImageType } from './media/sniff-media-type.js';
import type { BlobStore } from './storage/blob-store.js';

export type DerivedImage = 'thumbnail' | 'preview';

/** The content address of a blob's bytes. */
export const blobKey = (sha256: string) => `blobs/${sha256}`;
/** Images made from a blob are content-derived too, so users sharing a blob share them. */
export const derivedKey = (sha256: string, kind: DerivedImage) => `derived/${sha256}/${kind}.webp`;


/**
 * Blobs: stored content with a reference count. Completing an upload pins the
 * blob row first (so the collector cannot delete the bytes underneath it), stores
 * and verifies the bytes, reads what media facts it can, and only then is an asset
 * pointed at it. The collector deletes blobs nobody referenced for the grace period.
 */
export class BlobService {
  constructor(
    private readonly deps: {
      db: Db;
      storage: BlobStore;
      config: Pick<Config, 'uploads'>;
      log: Pick<Logger, 'error'>;
    },
  ) {}

  /**
   * Marks the blob as in use by a completion for the grace period. Waits for a
   * collector holding the row, and re-creates the row if the collector removed it.
   */
  async pin(sha256: string, size: number): Promise<void> {
    const grace = Math.max(this.deps.config.uploads.blobGraceSeconds, 3600);
    await this.deps.db
      .insert(blobs)
      .values({ sha256, size, gcAfter: sql`now() + make_interval(secs => ${grace})` })
      .onConflictDoUpdate({ target: blobs.sha256, set: { gcAfter: sql`greatest(${blobs.gcAfter}, now() + make_interval(secs => ${grace}))` } });
  }

  /**
   * After assembly verified the bytes: their size is the verified one. The row may have been
   * made by an earlier completion that failed, with whatever size that client declared.
   */
  async markStored(sha256: string, size: number): Promise<void> {
    await this.deps.db.update(blobs).set({ stored: true, size }).where(eq(blobs.sha256, sha256));
  }

  /**
   * One more asset points at the blob (in the transaction that adds it). Blob reference counts
   * are written here and nowhere else (the collector repairs a wrong one from the assets).
   */
  async addReference(tx: Tx, sha256: string): Promise<void> {
    await tx.update(blobs).set({ refCount: sql`${blobs.refCount} + 1`, gcAfter: null }).where(eq(blobs.sha256, sha256)).prepare('blob_add_reference').execute();
  }

  /**
   * One asset fewer points at each of these blobs (one entry per removed asset). A blob nobody
   * points at any more is collected after the grace period, unless an asset points at it again.
   */
  async releaseReferences(tx: Tx, sha256s: readonly string[]): Promise<void> {
    const grace = this.deps.config.uploads.blobGraceSeconds;
    // In hash order, so that two transactions releasing shared blobs lock them in the same order.
    for (const sha256 of [...sha256s].sort()) {
      await tx
        .update(blobs)
        .set({
          refCount: sql`${blobs.refCount} - 1`,
          gcAfter: sql`case when ${blobs.refCount} = 1 then now() + make_interval(secs => ${grace}) else ${blobs.gcAfter} end`,
        })
        .where(eq(blobs.sha256, sha256));
    }
  }

  /**
   * The image an edit rule makes of this blob (G3): made on first request and stored under a key
   * that names the rule, then reused by every share and recipient with the same rule. Never made
   * twice at the same time: callers in this process share one making, and an advisory lock keeps
   * other instances waiting until it is there. The blob row is held (FOR SHARE) meanwhile, so the
   * collector cannot take the original away. MEDIA_UNREADABLE when the bytes do not decode.
   */
  async editedImage(sha256: string, rule: EditRule): Promise<EditedImageRow> {
    const ruleKey = editRuleKey(rule);
    const [made] = await this.deps.db.select().from(editedImages).where(and(eq(editedImages.sha256, sha256), eq(editedImages.ruleKey, ruleKey)));
    if (made) return made;
    const flight = `${sha256}:${ruleKey}`;
    let making = this.editing.get(flight);
    if (!making) {
      making = this.makeEditedImage(sha256, rule, ruleKey).finally(() => this.editing.delete(flight));
      this.editing.set(flight, making);
    }
    return making;
  }

  /** The images this rule has made already of these blobs (by hash); the others are not made yet. */
  async editedImagesMade(sha256s: readonly string[], rule: EditRule): Promise<Map<string, EditedImageRow>> {
    if (sha256s.length === 0) return new Map();
    const rows = await this.deps.db
      .select()
      .from(editedImages)
      .where(and(eq(editedImages.ruleKey, editRuleKey(rule)), sql`${editedImages.sha256} = any(${sql.param([...new Set(sha256s)])}::text[])`));
    return new Map(rows.map((row) => [row.sha256, row]));
  }

  private readonly editing = new Map<string, Promise<EditedImageRow>>();

  private makeEditedImage(sha256: string, rule: EditRule, ruleKey: string): Promise<EditedImageRow> {
    // The image slot first, the database connection second: at most as many connections wait on
    // image work as images are made at once (two), however many edits are asked for.
    return withImageSlot(() => this.deps.db.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(hashtextextended(${`edited:${sha256}:${ruleKey}`}, 0))`);
      // Made by another instance while this one waited for the lock.
      const [made] = await tx.select().from(editedImages).where(and(eq(editedImages.sha256, sha256), eq(editedImages.ruleKey, ruleKey)));
      if (made) return made;
      const [blob] = await tx.select().from(blobs).where(and(eq(blobs.sha256, sha256), eq(blobs.stored, true))).for('share');
      if (!blob) throw new AppError('NOT_FOUND', 'No such blob');
      // Made once and kept: not before the facts it carries (camera, time) and the preview it may start from exist.
      if (blob.thumbnailStatus === 'pending') throw new AppError('MEDIA_PENDING', 'This photo is still being processed; ask again in a moment');
      const { storage } = this.deps;
      // HEIC, RAW and video originals are not sharp's to decode: the rule starts from their preview.
      const source = isDecodableImageType(blob.mimeType) || blob.thumbnailStatus !== 'ready' ? blobKey(sha256) : derivedKey(sha256, 'preview');
      const input = storage.localPath?.(source) ?? (blob.size === 0 ? Buffer.alloc(0) : await storage.get(source));
      const camera = { make: blob.make, model: blob.model, takenAtLocal: localTakenAt(blob.takenAt, blob.takenAtZone) };
      const result = await applyEditRule(input, rule, { limitInputPixels: this.deps.config.uploads.maxImagePixels }, camera);
      if (!result.ok) throw new AppError('MEDIA_UNREADABLE', `This file cannot be edited (${result.reason})`, { reason: result.reason });
      const key = `derived/${sha256}/rule-${ruleKey}.${EDIT_RULE_EXTENSIONS[rule.format]}`;
      await storage.put(key, Readable.from([result.data]), { contentType: result.mediaType });
      const [row] = await tx
        .insert(editedImages)
        .values({ sha256, ruleKey, key, mediaType: result.mediaType, size: result.data.length, width: result.width, height: result.height })
        .returning();
      return row!;
    }));
  }

  async get(sha256: string): Promise<BlobRow | undefined> {
    const [row] = await this.deps.db.select().from(blobs).where(eq(blobs.sha256, sha256));
    return row;
  }

  /**
   * Deletes blobs unreferenced past their grace period, with their derived images. Safe with
   * several instances (SKIP LOCKED) and with a crash at any point:
   * 1. One short transaction takes the candidates and marks them not stored (and not described),
   *    committed before any byte goes: from then on no check offers them and no claim or
   *    completion counts on them. A row some asset still points at gets its counter repaired instead.
   * 2. Each blob then goes in a transaction of its own that holds its row while the bytes are
   *    deleted, and only if it is still unreferenced, not stored and not pinned (a completion of
   *    the same file pins it and waits). A failed delete leaves the row for a retry an hour later.
   */
  async collectGarbage(limit = 100): Promise<number> {
    const { storage } = this.deps;
    const unreferenced = sql`${blobs.refCount} = 0 and ${blobs.gcAfter} < now() and not exists (select 1 from ${assets} where ${assets.sha256} = ${blobs.sha256})`;
    const doomed = await this.deps.db.transaction(async (tx) => {
      const due = await tx
        .select({ sha256: blobs.sha256 })
        .from(blobs)
        .where(and(eq(blobs.refCount, 0), lt(blobs.gcAfter, sql`now()`)))
        .limit(limit)
        .for('update', { skipLocked: true });
      if (due.length === 0) return [];
      const hashes = due.map((d) => d.sha256);
      const marked = await tx
        .update(blobs)
        .set({ stored: false, thumbnailStatus: 'pending' })
        .where(and(sql`${blobs.sha256} = any(${sql.param(hashes)}::text[])`, unreferenced))
        .returning({ sha256: blobs.sha256 });
      // The others are still pointed at: the counter was wrong; repair it from the assets.
      const kept = hashes.filter((sha256) => !marked.some((m) => m.sha256 === sha256));
      if (kept.length > 0) {
        await tx
          .update(blobs)
          .set({ refCount: sql`(select count(*) from ${assets} where ${assets.sha256} = ${blobs.sha256})::int`, gcAfter: null })
          .where(sql`${blobs.sha256} = any(${sql.param(kept)}::text[])`);
      }
      return marked.map((m) => m.sha256);
    });
    let collected = 0; // a failure does not count, so a sweep that only fails stops
    for (const sha256 of doomed) {
      try {
        const gone = await this.deps.db.transaction(async (tx) => {
          const [row] = await tx
            .select({ sha256: blobs.sha256 })
            .from(blobs)
            .where(and(eq(blobs.sha256, sha256), eq(blobs.stored, false), unreferenced))
            .for('update', { skipLocked: true });
          if (!row) return false; // pinned, stored again or taken by another instance meanwhile
          // Images made by edit rules go with the blob (their rows with it, by cascade).
          for (const edited of await tx.select({ key: editedImages.key }).from(editedImages).where(eq(editedImages.sha256, sha256))) await storage.delete(edited.key);
          await storage.delete(derivedKey(sha256, 'thumbnail'));
          await storage.delete(derivedKey(sha256, 'preview'));
          await storage.delete(blobKey(sha256));
          await tx.delete(blobs).where(eq(blobs.sha256, sha256));
          return true;
        });
        if (gone) collected++;
      } catch (error) {
        // Some of the bytes may be gone already; the row says not stored, so a later upload of
        // the same file stores and describes it again. The next attempt comes an hour later at the earliest.
        this.deps.log.error(`deleting blob ${sha256} failed; will retry later`, error);
        const retry = Math.max(this.deps.config.uploads.blobGraceSeconds, 3600);
        await this.deps.db
          .update(blobs)
          .set({ gcAfter: sql`now() + make_interval(secs => ${retry})` })
          .where(and(eq(blobs.sha256, sha256), eq(blobs.stored, false), eq(blobs.refCount, 0)))
          .catch((retryError: unknown) => this.deps.log.error(`postponing blob ${sha256} failed`, retryError));
      }
    }
    return collected;
  }
}
