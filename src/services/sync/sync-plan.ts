import { sql } from 'drizzle-orm';
import type { Config } from '../../config.js';
import type { Db } from '../../db/client.js';
import { folderSyncs, syncFiles, uploads, type SyncFileState } from '../../db/schema/index.js';
import type { Tx } from '../../db/transaction.js';
import { topics, type Events, type SyncFileRef } from '../events.js';

/**
 * The plan of a folder sync (S3) as the upload steps write it, each change with the event that
 * tells watchers what changed (a delta: ids, states and counters), published in the same
 * transaction so it arrives exactly when the change can be read.
 *
 * A check for a folder plans its files; later checks extend the plan. A file leaves the plan
 * (reaches a final state) when it is stored (done), claimed (instant) or refused (failed, with
 * why); a failed file planned again is retried. A check that brings files the plan does not have,
 * to a sync with nothing in flight and no change for `live.runGapMinutes` (or that started more than
 * MAX_RUN_HOURS ago: a folder synced all day long gets a run a day, not one plan that grows for ever), starts a new run.
 */

/** A file as a check plans it. `done`: found in the library already (only a planned file of the folder moves to done; none is added). */
export interface PlannedFile {
  sha256: string;
  name: string;
  size: number;
  state: 'pending' | 'uploading' | 'failed' | 'done';
  uploadId?: string | null;
  bytesDone?: number;
  error?: { code: string; message: string } | null;
}

export interface ProgressChange {
  state: SyncFileState;
  bytes: number;
  assetId?: string | null;
  error?: { code: string; message: string } | null;
}

type Executor = Pick<Tx, 'execute'>;

export const MAX_RUN_HOURS = 24;

const IN_FLIGHT = sql.raw(`('pending', 'uploading', 'verifying')`);
const FINAL_OK = sql.raw(`('done', 'instant')`);

export class SyncPlan {
  constructor(private readonly deps: { db: Db; events: Events; config: Pick<Config, 'live'> }) {}

  /** Records what a check answered for files declared in one folder. */
  async plan(userId: string, folderId: string, files: PlannedFile[]): Promise<void> {
    if (files.length === 0) return;
    const added = dedupe(files.filter((f) => f.state !== 'done'));
    const found = [...new Set(files.filter((f) => f.state === 'done').map((f) => f.sha256))];
    await this.deps.db.transaction(async (tx) => {
      await tx.insert(folderSyncs).values({ folderId, userId }).onConflictDoNothing();
      const [current] = await rows<{ run: string; ongoing: boolean; known: number }>(
        tx,
        sql`select fs.run,
            exists (select 1 from ${syncFiles} f where f.folder_id = fs.folder_id and f.state in ${IN_FLIGHT})
              or (greatest(fs.updated_at, (select f.updated_at from ${syncFiles} f where f.folder_id = fs.folder_id order by f.version desc limit 1))
                > now() - make_interval(mins => ${this.deps.config.live.runGapMinutes}) and fs.started_at > now() - make_interval(hours => ${MAX_RUN_HOURS})) as ongoing,
            (select count(*)::int from ${syncFiles} f where f.folder_id = fs.folder_id and f.sha256 = any(${sql.param(added.map((f) => f.sha256))}::text[])) as known
          from ${folderSyncs} fs where fs.folder_id = ${folderId} for update`,
      );
      let run = Number(current!.run);
      const versions: number[] = [];
      if (added.length > 0 && !current!.ongoing && current!.known < added.length) {
        // New files after a pause: a new run replaces the plan.
        await tx.execute(sql`delete from ${syncFiles} where folder_id = ${folderId}`);
        const [started] = await rows<{ run: string }>(
          tx,
          sql`update ${folderSyncs} set run = nextval('sync_versions'), started_at = date_trunc('milliseconds', now()), updated_at = date_trunc('milliseconds', now()) where folder_id = ${folderId} returning run`,
        );
        run = Number(started!.run);
      } else {
        await tx.execute(sql`update ${folderSyncs} set updated_at = date_trunc('milliseconds', now()) where folder_id = ${folderId}`);
      }
      if (added.length > 0) {
        const column = <T>(pick: (f: PlannedFile) => T) => sql.param(added.map(pick));
        const written = await rows<{ version: string }>(
          tx,
          sql`insert into ${syncFiles} (folder_id, sha256, name, size, state, bytes_done, upload_id, error_code, error_message)
            select ${folderId}, * from unnest(${column((f) => f.sha256)}::text[], ${column((f) => f.name)}::text[], ${column((f) => f.size)}::bigint[],
              ${column((f) => f.state)}::text[], ${column((f) => f.bytesDone ?? 0)}::bigint[], ${column((f) => f.uploadId ?? null)}::uuid[],
              ${column((f) => f.error?.code ?? null)}::text[], ${column((f) => f.error?.message ?? null)}::text[])
            on conflict (folder_id, sha256) do update set
              name = excluded.name, size = excluded.size,
              upload_id = coalesce(excluded.upload_id, ${syncFiles.uploadId}),
              -- A file stored or claimed stays so; any other is planned anew (a failed one is retried).
              state = case when ${syncFiles.state} in ${FINAL_OK} then ${syncFiles.state} else excluded.state end,
              bytes_done = case when ${syncFiles.state} in ${FINAL_OK} then ${syncFiles.bytesDone} else excluded.bytes_done end,
              error_code = case when ${syncFiles.state} in ${FINAL_OK} then null else excluded.error_code end,
              error_message = case when ${syncFiles.state} in ${FINAL_OK} then null else excluded.error_message end,
              version = nextval('sync_versions'), updated_at = date_trunc('milliseconds', now())
            -- A file checked again as it is (a client checking each file before sending it) changes nothing: no event.
            where ${syncFiles.name} <> excluded.name or ${syncFiles.uploadId} is distinct from coalesce(excluded.upload_id, ${syncFiles.uploadId})
              or (${syncFiles.state} not in ${FINAL_OK} and (${syncFiles.state} <> excluded.state or ${syncFiles.bytesDone} <> excluded.bytes_done or ${syncFiles.errorCode} is distinct from excluded.error_code))
            returning version`,
        );
        versions.push(...written.map((r) => Number(r.version)));
      }
      if (found.length > 0) {
        const moved = await rows<{ version: string }>(
          tx,
          sql`update ${syncFiles} set state = 'done', bytes_done = size, error_code = null, error_message = null,
              asset_id = (select a.id from assets a where a.user_id = ${userId} and a.sha256 = ${syncFiles.sha256}),
              version = nextval('sync_versions'), updated_at = date_trunc('milliseconds', now())
            where folder_id = ${folderId} and sha256 = any(${sql.param(found)}::text[]) and state not in ${FINAL_OK}
            returning version`,
        );
        versions.push(...moved.map((r) => Number(r.version)));
      }
      if (versions.length === 0) return;
      await this.deps.events.publishIn(tx, topics.sync(userId), { kind: 'planned', userId, folderId, run, since: Math.min(...versions) });
    });
  }

  /**
   * An upload moved on (a chunk received, verifying, stored, failed): the upload's version and its
   * planned files follow, and one event says so. Inside the transaction that makes the change.
   * `inFlightOnly`: leave files that already failed as they are (an expiring session).
   */
  async uploadProgress(tx: Executor, upload: { id: string; userId: string }, change: ProgressChange, options: { inFlightOnly?: boolean } = {}): Promise<void> {
    const states = options.inFlightOnly ? IN_FLIGHT : sql.raw(`('pending', 'uploading', 'verifying', 'failed')`);
    const [result] = await rows<{ v: string | null; files: SyncFileRef[] }>(
      tx,
      sql`with up as (update ${uploads} set version = nextval('sync_versions') where id = ${upload.id} returning version),
        f as (update ${syncFiles} set state = ${change.state}, bytes_done = ${change.bytes}, asset_id = coalesce(${change.assetId ?? null}::uuid, asset_id),
            error_code = ${change.error?.code ?? null}, error_message = ${change.error?.message ?? null},
            version = nextval('sync_versions'), updated_at = date_trunc('milliseconds', now())
          where upload_id = ${upload.id} and state in ${states}
          returning id, folder_id, version)
      select (select version from up) as v,
        coalesce((select json_agg(json_build_object('id', f.id, 'folderId', f.folder_id, 'v', f.version)) from f), '[]') as files`,
    );
    await this.publish(tx, upload.userId, upload.id, Number(result?.v ?? 0), change, result?.files ?? []);
  }

  /** An instant upload (U4) of a file planned in this folder: it is there, nothing sent. Inside the claim's transaction. */
  async claimed(tx: Executor, userId: string, folderId: string, sha256: string, assetId: string): Promise<void> {
    const files = await rows<{ id: string; folderId: string; v: string; size: string }>(
      tx,
      sql`update ${syncFiles} set state = 'instant', bytes_done = size, asset_id = ${assetId}, error_code = null, error_message = null,
          version = nextval('sync_versions'), updated_at = date_trunc('milliseconds', now())
        where folder_id = ${folderId} and sha256 = ${sha256} and state not in ${FINAL_OK}
        returning id, folder_id as "folderId", version as v, size`,
    );
    if (files.length === 0) return;
    const refs = files.map((f) => ({ id: Number(f.id), folderId: f.folderId, v: Number(f.v) }));
    await this.publish(tx, userId, null, 0, { state: 'instant', bytes: Number(files[0]!.size), assetId }, refs);
  }

  private async publish(tx: Executor, userId: string, uploadId: string | null, v: number, change: ProgressChange, files: SyncFileRef[]): Promise<void> {
    await this.deps.events.publishIn(tx, topics.sync(userId), {
      kind: 'progress',
      userId,
      uploadId,
      v,
      state: change.state,
      bytes: change.bytes,
      assetId: change.assetId ?? null,
      error: change.error ? { code: change.error.code, message: change.error.message.slice(0, 1000) } : null,
      at: Date.now(),
      files: files.map((f) => ({ id: Number(f.id), folderId: f.folderId, v: Number(f.v) })),
    });
  }
}

/** The last declaration of each file wins (a batch may name a file twice). */
function dedupe(files: PlannedFile[]): PlannedFile[] {
  return [...new Map(files.map((f) => [f.sha256, f])).values()];
}

async function rows<T>(tx: Executor, query: ReturnType<typeof sql>): Promise<T[]> {
  return (await tx.execute(query)) as unknown as T[];
}
