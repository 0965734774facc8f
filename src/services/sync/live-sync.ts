import { eq } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { folders } from '../../db/schema/index.js';
import type { Logger } from '../../logger.js';
import { topics, type Events, type SyncEvent } from '../events.js';
import { FolderSyncState, loadFolderSyncs, type SyncFile } from './folder-sync-state.js';

/** Files changed; or the plan started over ('reset'); or the folder was removed ('gone'). */
type ChangeListener = (changed: SyncFile[] | 'reset' | 'gone') => void;

/**
 * One folder's sync as this process holds it for all its watchers: read once, then kept by
 * folding the events of the owner's sync topic. A planned batch is read once (its rows changed
 * since a version); a progress event is applied as it comes. Work is done in event order.
 */
export class LiveFolder {
  readonly state: FolderSyncState;
  readonly ready: Promise<void>;
  refs = 0;
  private readonly listeners = new Set<ChangeListener>();
  private chain: Promise<void> = Promise.resolve();
  private stale = false;
  private readonly stop: () => void;

  constructor(
    private readonly hub: LiveSync,
    readonly userId: string,
    readonly folderId: string,
  ) {
    this.state = new FolderSyncState(folderId);
    // Listening before the first read: a change made meanwhile is folded after it (or ignored, as older).
    this.stop = hub.onUserEvents(userId, (event) => this.enqueue(() => this.handle(event)));
    this.ready = this.enqueue(() => this.reload());
  }

  listen(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  close(): void {
    this.stop();
    this.listeners.clear();
  }

  private enqueue(work: () => Promise<void>): Promise<void> {
    const run = this.chain.then(work);
    this.chain = run.catch((error: unknown) => {
      // The state may have missed a change: the next event reads it all again.
      this.stale = true;
      this.hub.log.error(`live sync status: could not read the sync of folder ${this.folderId}`, error);
    });
    return run;
  }

  private async handle(event: SyncEvent): Promise<void> {
    if (this.stale) return this.reload();
    if (event.kind === 'planned') {
      if (event.folderId !== this.folderId) return;
      return event.run === this.state.run ? this.fetch(event.since) : this.reload();
    }
    // Assets or folders were removed (deleted, evicted, expired): the folder may be gone.
    if (event.kind === 'library') return this.checkExists();
    if (event.kind !== 'progress') return;
    const changed: SyncFile[] = [];
    for (const ref of event.files) {
      if (ref.folderId !== this.folderId) continue;
      const held = this.state.get(ref.id);
      // A file not held yet: its planned event was not folded (another run, a lost event): read it.
      if (!held) return this.fetch(ref.v);
      const file = this.state.put({
        ...held,
        state: event.state,
        bytesDone: event.bytes,
        assetId: event.assetId ?? held.assetId,
        error: event.error,
        version: ref.v,
        updatedAt: new Date(event.at),
      });
      if (file) changed.push(file);
    }
    if (changed.length > 0) this.emit(changed);
  }

  private async checkExists(): Promise<void> {
    const [row] = await this.hub.db.select({ id: folders.id }).from(folders).where(eq(folders.id, this.folderId));
    if (!row) this.emit('gone');
  }

  private async reload(): Promise<void> {
    const loaded = (await loadFolderSyncs(this.hub.db, [this.folderId])).get(this.folderId)!;
    this.stale = false;
    this.state.reset(loaded.run, loaded.startedAt);
    for (const file of loaded.files) this.state.put(file);
    this.emit('reset');
  }

  private async fetch(since: number): Promise<void> {
    const loaded = (await loadFolderSyncs(this.hub.db, [this.folderId], since)).get(this.folderId)!;
    if (loaded.run !== this.state.run) return this.reload();
    const changed: SyncFile[] = [];
    for (const file of loaded.files) {
      const held = this.state.put(file);
      if (held) changed.push(held);
    }
    if (changed.length > 0) this.emit(changed);
  }

  private emit(changed: SyncFile[] | 'reset' | 'gone'): void {
    for (const listener of this.listeners) listener(changed);
  }
}

/**
 * What this process watches of live sync status: each watched folder once (whatever its number
 * of subscribers), and one listener per user topic fanning events out to them.
 */
export class LiveSync {
  private readonly folders = new Map<string, LiveFolder>();
  private readonly users = new Map<string, Set<(event: SyncEvent) => void>>();
  private readonly stops = new Map<string, () => void>();

  constructor(
    readonly db: Db,
    private readonly events: Events,
    readonly log: Logger,
  ) {}

  /** The folder's live sync, shared; `release` it when done. */
  acquire(userId: string, folderId: string): LiveFolder {
    let live = this.folders.get(folderId);
    if (!live) {
      live = new LiveFolder(this, userId, folderId);
      this.folders.set(folderId, live);
    }
    live.refs++;
    return live;
  }

  release(live: LiveFolder): void {
    if (--live.refs > 0) return;
    live.close();
    if (this.folders.get(live.folderId) === live) this.folders.delete(live.folderId);
  }

  /** The folder's live state when this process holds one already (a query can answer from it). */
  held(folderId: string): LiveFolder | undefined {
    return this.folders.get(folderId);
  }

  /** The user's sync events, through one listener on the topic per process. */
  onUserEvents(userId: string, listener: (event: SyncEvent) => void): () => void {
    let listeners = this.users.get(userId);
    if (!listeners) {
      const set = new Set<(event: SyncEvent) => void>();
      listeners = set;
      this.users.set(userId, set);
      this.stops.set(
        userId,
        this.events.on(topics.sync(userId), (event) => {
          for (const each of [...set]) each(event);
        }),
      );
    }
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
      if (listeners.size === 0 && this.users.get(userId) === listeners) {
        this.users.delete(userId);
        this.stops.get(userId)?.();
        this.stops.delete(userId);
      }
    };
  }

  /** How many folders and user topics this process holds (for tests and the benchmark). */
  stats(): { folders: number; users: number } {
    return { folders: this.folders.size, users: this.users.size };
  }
}
