import { sql } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { folderSyncs, syncFiles, type SyncFileState } from '../../db/schema/index.js';
import type { SyncCounts } from '../../protocol/sync-counts.js';
import { AppError } from '../app-error.js';

/** A file of a folder's sync plan, as watchers hold it. */
export interface SyncFile {
  id: number;
  folderId: string;
  sha256: string;
  name: string;
  size: number;
  state: SyncFileState;
  /** Bytes received and verified (uploading), the whole size once verifying, done or instant. */
  bytesDone: number;
  uploadId: string | null;
  assetId: string | null;
  error: { code: string; message: string } | null;
  version: number;
  updatedAt: Date;
}

export type { SyncCounts };

export function emptyCounts(): SyncCounts {
  return { filesPlanned: 0, filesDone: 0, filesUploaded: 0, filesInstant: 0, filesInProgress: 0, filesPending: 0, filesFailed: 0, bytesPlanned: 0, bytesDone: 0 };
}

/** Adds (sign 1) or takes away (sign -1) one file's share of the counters. */
function count(counts: SyncCounts, file: SyncFile, sign: 1 | -1): void {
  if (file.state === 'cancelled') return; // left the plan
  counts.filesPlanned += sign;
  counts.bytesPlanned += sign * file.size;
  switch (file.state) {
    case 'pending':
      counts.filesPending += sign;
      break;
    case 'uploading':
      counts.filesInProgress += sign;
      counts.bytesDone += sign * file.bytesDone;
      break;
    case 'verifying':
      counts.filesInProgress += sign;
      counts.bytesDone += sign * file.size;
      break;
    case 'done':
      counts.filesDone += sign;
      counts.filesUploaded += sign;
      counts.bytesDone += sign * file.size;
      break;
    case 'instant':
      counts.filesDone += sign;
      counts.filesInstant += sign;
      counts.bytesDone += sign * file.size;
      break;
    case 'failed':
      counts.filesFailed += sign;
      break;
  }
}

export const SYNC_PAGE_MAX = 1000;

export interface SyncFilePage {
  nodes: SyncFile[];
  endCursor: string | null;
  hasNextPage: boolean;
}

/**
 * A folder's sync as a watcher holds it: the run, every planned file and the counters, kept up to
 * date by folding deltas. A change older than the version held is ignored, so events may arrive in
 * any order, and a state read at version n absorbs the events of changes made before it.
 */
export class FolderSyncState {
  run: number | null = null;
  startedAt: Date | null = null;
  readonly counts = emptyCounts();
  private readonly files = new Map<number, SyncFile>();
  private sorted: SyncFile[] | null = null;

  constructor(readonly folderId: string) {}

  /** Another run (or none): the plan starts over. */
  reset(run: number | null, startedAt: Date | null): void {
    this.run = run;
    this.startedAt = startedAt;
    this.files.clear();
    this.sorted = null;
    Object.assign(this.counts, emptyCounts());
  }

  get(id: number): SyncFile | undefined {
    return this.files.get(id);
  }

  /**
   * Folds in one file's state: the file as now held (one object per file, updated in place), or
   * null when what is held is as new or newer.
   */
  put(file: SyncFile): SyncFile | null {
    const held = this.files.get(file.id);
    if (held && held.version >= file.version) return null;
    if (!held) {
      this.files.set(file.id, file);
      this.sorted = null;
      count(this.counts, file, 1);
      return file;
    }
    count(this.counts, held, -1);
    Object.assign(held, file);
    count(this.counts, held, 1);
    return held;
  }

  /** Files in plan order (by id), from `after`, optionally of some states only. */
  page(args: { first?: number | null; after?: string | null; states?: readonly SyncFileState[] | null }): SyncFilePage {
    const first = Math.min(args.first ?? 100, SYNC_PAGE_MAX);
    const after = args.after ? decodeSyncCursor(args.after) : 0;
    this.sorted ??= [...this.files.values()].sort((a, b) => a.id - b.id);
    const nodes: SyncFile[] = [];
    let hasNextPage = false;
    for (const file of this.sorted) {
      if (file.id <= after || (args.states && args.states.length > 0 && !args.states.includes(file.state))) continue;
      if (nodes.length === first) {
        hasNextPage = true;
        break;
      }
      nodes.push(file);
    }
    return { nodes, hasNextPage, endCursor: nodes.length > 0 ? String(nodes[nodes.length - 1]!.id) : null };
  }

  get size(): number {
    return this.files.size;
  }
}

function decodeSyncCursor(cursor: string): number {
  const id = Number(cursor);
  if (!/^\d{1,18}$/.test(cursor) || !Number.isSafeInteger(id)) throw new AppError('BAD_USER_INPUT', 'Invalid cursor', { field: 'after' });
  return id;
}

/** A folder's sync status (S3) as a query answers it and as each live message carries it. */
export interface FolderSyncStatus {
  folderId: string;
  /** The current run (null: the folder never synced). */
  run: number | null;
  startedAt: Date | null;
  counts: SyncCounts;
  /**
   * Files changed since the previous message of this subscription. A query, a first message and
   * the first message of a new run list every file of the run (up to SYNC_PAGE_MAX; see `changesComplete`).
   */
  changes: SyncFile[];
  changesComplete: boolean;
  /** The run's files, paged, as they are when the message is sent. */
  files(args: { first?: number | null; after?: string | null; states?: readonly SyncFileState[] | null }): SyncFilePage;
}

/** The status to send: counters copied now; `changes` null: every file (a query, a first message). */
export function statusOf(state: FolderSyncState, changes: SyncFile[] | null): FolderSyncStatus {
  const all = changes === null ? state.page({ first: SYNC_PAGE_MAX }) : null;
  return {
    folderId: state.folderId,
    run: state.run,
    startedAt: state.startedAt,
    counts: { ...state.counts },
    changes: all ? all.nodes : changes!.map((file) => ({ ...file })),
    changesComplete: all ? !all.hasNextPage : true,
    files: (args) => state.page(args),
  };
}

export interface LoadedSync {
  run: number | null;
  startedAt: Date | null;
  files: SyncFile[];
}

/**
 * The folders' runs and their files changed at or after version `since` (0: all), in one read.
 * A folder that never synced loads as no run.
 */
export async function loadFolderSyncs(db: Db, folderIds: string[], since = 0): Promise<Map<string, LoadedSync>> {
  const loaded = new Map<string, LoadedSync>(folderIds.map((id) => [id, { run: null, startedAt: null, files: [] }]));
  if (folderIds.length === 0) return loaded;
  const rows = (await db.execute(sql`
    select fs.folder_id, fs.run, fs.started_at, f.id, f.sha256, f.name, f.size, f.state, f.bytes_done, f.upload_id, f.asset_id, f.error_code, f.error_message, f.version, f.updated_at
    from ${folderSyncs} fs left join ${syncFiles} f on f.folder_id = fs.folder_id and f.version >= ${since}
    where fs.folder_id = any(${sql.param(folderIds)}::uuid[])`)) as unknown as RawRow[];
  for (const row of rows) {
    const sync = loaded.get(row.folder_id)!;
    sync.run = Number(row.run);
    sync.startedAt = new Date(row.started_at);
    if (row.id === null) continue;
    sync.files.push({
      id: Number(row.id),
      folderId: row.folder_id,
      sha256: row.sha256!,
      name: row.name!,
      size: Number(row.size),
      state: row.state!,
      bytesDone: Number(row.bytes_done),
      uploadId: row.upload_id,
      assetId: row.asset_id,
      error: row.error_code ? { code: row.error_code, message: row.error_message ?? '' } : null,
      version: Number(row.version),
      updatedAt: new Date(row.updated_at!),
    });
  }
  return loaded;
}

interface RawRow {
  folder_id: string;
  run: string;
  started_at: string | Date;
  id: string | null;
  sha256: string | null;
  name: string | null;
  size: string | null;
  state: SyncFileState | null;
  bytes_done: string | null;
  upload_id: string | null;
  asset_id: string | null;
  error_code: string | null;
  error_message: string | null;
  version: string | null;
  updated_at: string | Date | null;
}
