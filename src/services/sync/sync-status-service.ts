import { sql } from 'drizzle-orm';
import type { Config } from '../../config.js';
import type { Db } from '../../db/client.js';
import { folderSyncs, syncFiles, type SyncFileState, type UploadRow } from '../../db/schema/index.js';
import type { Access, Principal } from '../access.js';
import { AppError } from '../app-error.js';
import type { Viewer } from '../devices.js';
import type { SyncEvent } from '../events.js';
import { decodeCursor, encodeTimeCursor } from '../library/page-cursor.js';
import { emptyCounts, FolderSyncState, loadFolderSyncs, statusOf, type FolderSyncStatus, type SyncCounts, type SyncFile } from './folder-sync-state.js';
import { LiveStream } from './live-stream.js';
import type { LiveFolder, LiveSync } from './live-sync.js';

/** Every folder of the user with sync activity, for a dashboard. */
export interface LibrarySyncStatus {
  /** Counters over all the folders with activity. */
  counts: SyncCounts;
  /** Folders with activity. */
  folderCount: number;
  /** The folders whose status changed since the previous message (a query and a first message: a page of them all). */
  folders: FolderSyncStatus[];
  endCursor: string | null;
  hasNextPage: boolean;
}

/** One upload session's progress (U5, U6), as a query answers it and live messages carry it. */
export interface UploadProgress {
  uploadId: string;
  name: string;
  size: number;
  sha256: string;
  folderId: string | null;
  state: SyncFileState;
  bytesReceived: number;
  assetId: string | null;
  error: { code: string; message: string } | null;
  version: number;
  updatedAt: Date;
}

/**
 * Live sync status (S3) for dashboards: a folder's plan ("5 of 10", per-file states), one upload's
 * progress, and every folder with activity. Queries and subscriptions answer with the same
 * objects; subscriptions send the state first, then at most `live.messagesPerSecond` messages a
 * second, made from a state this process holds once per folder and keeps by folding events.
 * Only the owner (any of their devices) sees a sync.
 */
export class SyncStatusService {
  private readonly intervalMs: number;

  constructor(
    private readonly deps: {
      db: Db;
      access: Access;
      live: LiveSync;
      config: Pick<Config, 'live'>;
    },
  ) {
    this.intervalMs = 1000 / deps.config.live.messagesPerSecond;
  }

  async folderSyncStatus(principal: Principal, folderId: string): Promise<FolderSyncStatus> {
    const folder = await this.deps.access.folder(principal, 'change', folderId);
    const held = this.deps.live.held(folder.id);
    if (held) {
      await held.ready;
      return statusOf(held.state, null);
    }
    return statusOf(await this.read(folder.id), null);
  }

  /** The folder's status now, then its changes. */
  async watchFolderSync(principal: Principal, folderId: string): Promise<AsyncIterableIterator<FolderSyncStatus>> {
    const folder = await this.deps.access.folder(principal, 'change', folderId);
    const live = this.deps.live.acquire(folder.userId, folder.id);
    try {
      await live.ready;
    } catch (error) {
      this.deps.live.release(live);
      throw error;
    }
    const watch = new FolderWatch(live);
    const stream = new LiveStream(this.intervalMs, () => watch.message(), () => {
      watch.close();
      this.deps.live.release(live);
    });
    watch.onChange = () => (watch.gone ? stream.fail(new AppError('NOT_FOUND', 'No such folder')) : stream.changed());
    return stream;
  }

  async librarySyncStatus(viewer: Viewer, args: { first?: number | null; after?: string | null } = {}): Promise<LibrarySyncStatus> {
    const active = await this.activeFolders(viewer.user.id);
    const first = Math.min(args.first ?? 50, 200);
    const after = args.after ? decodeCursor(args.after) : null;
    // Newest first, ties by id: the page starts after the cursor's place, even if its folder left the list.
    const start = after ? indexOrEnd(active.findIndex((f) => f.updatedAt < after.at || (f.updatedAt.getTime() === after.at.getTime() && f.folderId > after.id)), active.length) : 0;
    const page = active.slice(start, start + first);
    const loaded = await loadFolderSyncs(this.deps.db, active.map((f) => f.folderId));
    const states = new Map([...loaded].map(([id, sync]) => [id, stateOf(id, sync)]));
    const last = page[page.length - 1];
    return {
      counts: sumCounts([...states.values()]),
      folderCount: active.length,
      folders: page.map((f) => statusOf(states.get(f.folderId)!, null)),
      endCursor: last ? encodeTimeCursor(last.updatedAt, last.folderId) : null,
      hasNextPage: start + first < active.length,
    };
  }

  /** Every folder with activity now, then the folders that change (a folder that starts syncing joins). */
  async watchLibrarySync(viewer: Viewer): Promise<AsyncIterableIterator<LibrarySyncStatus>> {
    const userId = viewer.user.id;
    const watches = new Map<string, { live: LiveFolder; watch: FolderWatch }>();
    const changed = new Set<string>();
    let first = true;
    let closed = false;
    const stream: LiveStream<LibrarySyncStatus> = new LiveStream(
      this.intervalMs,
      () => {
        const all = [...watches.values()];
        const folders = (first ? all : all.filter((w) => changed.has(w.live.folderId))).map((w) => w.watch.message());
        first = false;
        changed.clear();
        return { counts: sumCounts(all.map((w) => w.live.state)), folderCount: all.length, folders, endCursor: null, hasNextPage: false };
      },
      () => {
        closed = true;
        stopJoining();
        for (const { live, watch } of watches.values()) {
          watch.close();
          this.deps.live.release(live);
        }
        watches.clear();
      },
    );
    const join = async (folderId: string) => {
      if (watches.has(folderId) || closed) return;
      const live = this.deps.live.acquire(userId, folderId);
      const watch = new FolderWatch(live);
      watches.set(folderId, { live, watch });
      watch.onChange = () => {
        if (watch.gone) {
          // The folder went (expired): it leaves the dashboard.
          watch.close();
          watches.delete(folderId);
          this.deps.live.release(live);
        } else changed.add(folderId);
        stream.changed();
      };
      await live.ready;
    };
    // A folder that starts syncing after the subscription joins it.
    const stopJoining = this.deps.live.onUserEvents(userId, (event: SyncEvent) => {
      if (event.kind === 'planned' && !watches.has(event.folderId)) {
        join(event.folderId).catch((error: unknown) => stream.fail(error));
      }
    });
    try {
      await Promise.all((await this.activeFolders(userId)).map((f) => join(f.folderId)));
    } catch (error) {
      await stream.return();
      throw error;
    }
    return stream;
  }

  async uploadProgress(principal: Principal, uploadId: string): Promise<UploadProgress> {
    return progressOf(await this.deps.access.upload(principal, 'view', uploadId));
  }

  /** The upload's progress now, then as it moves on (folded from events: no read per change). */
  async watchUploadProgress(principal: Principal, uploadId: string): Promise<AsyncIterableIterator<UploadProgress>> {
    // Listening before reading: a change made meanwhile is folded after the read (or ignored, as older).
    const upload = await this.deps.access.upload(principal, 'view', uploadId);
    let current: UploadProgress | null = null;
    const early: SyncEvent[] = [];
    const fold = (event: SyncEvent) => {
      if (event.kind !== 'progress' || event.uploadId !== upload.id) return;
      if (!current) return void early.push(event);
      if (event.v <= current.version) return;
      current = { ...current, state: event.state, bytesReceived: event.bytes, assetId: event.assetId ?? current.assetId, error: event.error, version: event.v, updatedAt: new Date(event.at) };
      stream.changed();
    };
    const stop = this.deps.live.onUserEvents(upload.userId, fold);
    const stream = new LiveStream(this.intervalMs, () => current!, stop);
    try {
      current = await this.uploadProgress(principal, uploadId);
    } catch (error) {
      await stream.return();
      throw error;
    }
    for (const event of early.splice(0)) fold(event);
    return stream;
  }

  /** A folder's sync read from the database. */
  private async read(folderId: string): Promise<FolderSyncState> {
    return stateOf(folderId, (await loadFolderSyncs(this.deps.db, [folderId])).get(folderId)!);
  }

  /** The user's folders with a sync in flight or changed within the activity window, newest first. */
  private async activeFolders(userId: string): Promise<{ folderId: string; updatedAt: Date }[]> {
    const hours = this.deps.config.live.activityHours;
    const rows = (await this.deps.db.execute(sql`
      select fs.folder_id, fs.updated_at from ${folderSyncs} fs
      where fs.user_id = ${userId} and (fs.updated_at > now() - make_interval(hours => ${hours})
        or exists (select 1 from ${syncFiles} f where f.folder_id = fs.folder_id and (f.state in ('pending', 'uploading', 'verifying') or f.updated_at > now() - make_interval(hours => ${hours}))))
      order by fs.updated_at desc, fs.folder_id
      limit 1000`)) as unknown as { folder_id: string; updated_at: string | Date }[];
    return rows.map((r) => ({ folderId: r.folder_id, updatedAt: new Date(r.updated_at) }));
  }
}

/**
 * One subscription's view of a live folder: the files changed since its previous message, or
 * everything after a (re)start.
 */
class FolderWatch {
  onChange: () => void = () => {};
  gone = false;
  /** The last change its previous message carried (null: none sent yet). */
  private sent: number | null = null;
  private readonly stop: () => void;

  constructor(private readonly live: LiveFolder) {
    this.stop = live.listen((change) => {
      if (change === 'gone') this.gone = true;
      this.onChange();
    });
  }

  message(): FolderSyncStatus {
    const message = this.live.messageSince(this.sent);
    this.sent = this.live.seq;
    return message;
  }

  close(): void {
    this.stop();
  }
}

function stateOf(folderId: string, sync: { run: number | null; startedAt: Date | null; files: SyncFile[] }): FolderSyncState {
  const state = new FolderSyncState(folderId);
  state.reset(sync.run, sync.startedAt);
  for (const file of sync.files) state.put(file);
  return state;
}

function indexOrEnd(index: number, length: number): number {
  return index < 0 ? length : index;
}

function sumCounts(states: FolderSyncState[]): SyncCounts {
  const total = emptyCounts();
  for (const state of states) for (const key of Object.keys(total) as (keyof SyncCounts)[]) total[key] += state.counts[key];
  return total;
}

/** An upload session's progress in the words of a sync plan. */
export function progressOf(upload: UploadRow): UploadProgress {
  const state: SyncFileState =
    upload.state === 'done' ? 'done' : upload.state === 'failed' ? 'failed' : upload.state === 'completing' ? 'verifying' : upload.receivedBytes > 0 ? 'uploading' : 'pending';
  return {
    uploadId: upload.id,
    name: upload.name,
    size: upload.size,
    sha256: upload.sha256,
    folderId: upload.folderId,
    state,
    bytesReceived: upload.state === 'done' || upload.state === 'completing' ? upload.size : upload.receivedBytes,
    assetId: upload.assetId,
    error: upload.state === 'failed' ? { code: upload.failureCode ?? 'UPLOAD_FAILED', message: upload.failure ?? 'The upload failed' } : null,
    version: upload.version,
    updatedAt: upload.lastActivityAt,
  };
}
