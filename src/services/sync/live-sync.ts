import { eq } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { folders } from '../../db/schema/index.js';
import type { Logger } from '../../logger.js';
import { topics, type Events, type SyncEvent } from '../events.js';
import { FolderSyncState, loadFolderSyncs, statusOf, type FolderSyncStatus, type SyncFile } from './folder-sync-state.js';

/** Something changed ('gone': the folder was removed). */
type ChangeListener = (change: 'changed' | 'gone') => void;

/** Changes kept for watchers that are behind, at least; a watcher further behind gets the whole state. */
const MIN_LOG = 1000;

/**
 * One folder's sync as this process holds it for all its watchers: read once, then kept by
 * folding the events of the owner's sync topic. A planned batch is read once (its rows changed
 * since a version); a progress event is applied as it comes. Work is done in event order.
 *
 * Every change gets a sequence number. A watcher asks for the status "since n": watchers at the
 * same place get the same message object (one GraphQL execution can then serve them all, see
 * `shareEventExecutions` in http/graphql.ts).
 */
export class LiveFolder {
  readonly state: FolderSyncState;
  readonly ready: Promise<void>;
  refs = 0;
  /** The number of the last change. */
  seq = 0;
  private log: { seq: number; file: SyncFile }[] = [];
  /** Changes after this one are all in the log. */
  private logStart = 0;
  /** Messages made for the current `seq`, by the sequence number they start after (-1: the whole state). */
  private readonly messages = new Map<number, FolderSyncStatus>();
  private messagesAt = -1;
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

  /**
   * The status with the changes after `since` (a sequence number a message carried), or the
   * whole state (`since` null, or older than the log keeps). The same object for the same question
   * until the next change.
   */
  messageSince(since: number | null): FolderSyncStatus {
    if (this.messagesAt !== this.seq) {
      this.messages.clear();
      this.messagesAt = this.seq;
    }
    const from = since === null || since < this.logStart ? -1 : since;
    let message = this.messages.get(from);
    if (!message) {
      message = statusOf(this.state, from === -1 ? null : this.changesAfter(from));
      this.messages.set(from, message);
    }
    return message;
  }

  /** Each file changed after `since`, once, as it is now. */
  private changesAfter(since: number): SyncFile[] {
    let low = 0;
    let high = this.log.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (this.log[mid]!.seq <= since) low = mid + 1;
      else high = mid;
    }
    const files = new Map<number, SyncFile>();
    for (let i = low; i < this.log.length; i++) files.set(this.log[i]!.file.id, this.log[i]!.file);
    return [...files.values()].map((file) => ({ ...file }));
  }

  private emit(changed: SyncFile[] | 'reset' | 'gone'): void {
    if (changed === 'reset') {
      // Nothing before this can be told as changes: whoever is behind gets the whole state.
      this.log = [];
      this.logStart = ++this.seq;
    } else if (changed !== 'gone') {
      for (const file of changed) this.log.push({ seq: ++this.seq, file });
      if (this.log.length > Math.max(MIN_LOG, 2 * this.state.size)) {
        this.log = this.log.slice(this.log.length >> 1);
        this.logStart = this.log[0]!.seq - 1;
      }
    }
    for (const listener of this.listeners) listener(changed === 'gone' ? 'gone' : 'changed');
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
