import type { SQL } from 'drizzle-orm';
import type { SyncFileState } from '../db/schema/index.js';
import type { PubSub } from './pubsub.js';

/**
 * Live events: the one list of topics, and a typed way to publish and to watch them. Events are
 * small (ids and counters) and travel through PostgreSQL LISTEN/NOTIFY (pubsub.ts), so an event
 * published on one server instance reaches subscribers on every instance.
 */

/** A topic and the shape of its events (the type parameter exists for the compiler only). */
export interface Topic<T> {
  readonly name: string;
  /** Never set: carries T, so that publish and watch agree on the event's shape. */
  readonly _event?: T;
}

const topic = <T>(name: string): Topic<T> => ({ name });

/** A planned file an event changed: which row, in which folder's plan, at which version. */
export interface SyncFileRef {
  id: number;
  folderId: string;
  v: number;
}

/**
 * What changed in a user's sync, as a delta a watcher folds into the state it holds:
 * - planned: a check (re)planned files of a folder; the rows changed have versions ≥ `since`
 *   (a watcher reads them once, whatever its number of subscribers); another `run` replaced the plan;
 * - progress: an upload (or an instant claim, `uploadId` null) reached a state; `files` are the
 *   planned files it moved, each with its new version;
 * - library: assets were added or removed otherwise (deleted, evicted, expired).
 */
export type SyncEvent =
  | { kind: 'planned'; userId: string; folderId: string; run: number; since: number }
  | {
      kind: 'progress';
      userId: string;
      uploadId: string | null;
      /** The upload's own version (0 for a claim). */
      v: number;
      state: SyncFileState;
      bytes: number;
      assetId: string | null;
      error: { code: string; message: string } | null;
      /** When it happened (ms since the epoch, the publishing server's clock). */
      at: number;
      files: SyncFileRef[];
    }
  | { kind: 'library'; userId: string };

export interface DevicesEvent {
  userId: string;
}

/** Assets whose background processing finished (thumbnails ready, or failed). */
export interface MediaEvent {
  assetIds: string[];
}

/** A command to a device was given, relayed, taken up, reported on or ended (D2). */
export interface DeviceCommandEvent {
  commandId: string;
  targetDeviceId: string;
}

export interface DeviceRevokedEvent {
  deviceId: string;
}

export const topics = {
  /**
   * Anything a sync view of the user shows changed: files planned, an upload or a claim moved on,
   * an asset added, deleted or evicted. Live sync status, upload and folder subscriptions listen here.
   */
  sync: (userId: string) => topic<SyncEvent>(`user:${userId}:sync`),
  /** Background processing of some of the user's assets finished: their thumbnails and facts are there. */
  media: (userId: string) => topic<MediaEvent>(`user:${userId}:media`),
  /** The user's control list changed: a device signed in, out or was revoked. */
  devices: (userId: string) => topic<DevicesEvent>(`user:${userId}:devices`),
  /** A command of the user's devices moved on: its requester, its target's agent and dashboards listen here. */
  deviceCommands: (userId: string) => topic<DeviceCommandEvent>(`user:${userId}:commands`),
  /** A device was revoked: every instance stops trusting its token at once. */
  deviceRevoked: topic<DeviceRevokedEvent>('devices:revoked'),
} as const;

export class Events {
  constructor(private readonly pubsub: PubSub) {}

  async publish<T>(to: Topic<T>, event: T): Promise<void> {
    await this.pubsub.publish(to.name, event);
  }

  /**
   * Publishes as part of a transaction: delivered only when (and if) it commits, so subscribers
   * hear of a change exactly when it is there to be read. Sent alongside the transaction's other
   * statements, with no round trip of its own.
   */
  async publishIn<T>(tx: { execute(query: SQL): PromiseLike<unknown> }, to: Topic<T>, event: T): Promise<void> {
    await this.pubsub.publishIn(tx, to.name, event);
  }

  /** Calls `listener` with each event of the topic until the returned function is called. */
  on<T>(from: Topic<T>, listener: (event: T) => void): () => void {
    return this.pubsub.on(from.name, listener);
  }

  /** The events of one topic, from now on, until the consumer returns. */
  subscribe<T>(from: Topic<T>): AsyncIterableIterator<T> {
    return this.pubsub.subscribe<T>(from.name);
  }

  /**
   * A live view for subscriptions: the state now, then the state again after each event of the
   * topic. The listener is attached before the first load, so no change made in between is missed.
   */
  watch<S, T>(from: Topic<T>, load: () => Promise<S>, relevant: (event: T) => boolean = () => true): AsyncIterableIterator<S> {
    return liveState(this.pubsub.subscribe<T>(from.name), load, relevant);
  }
}

/**
 * The current state first, then the state again after each event. return() reaches the event
 * source at once, so a client that unsubscribes while nothing happens frees its listener
 * immediately (an async generator would stay suspended in its await until the next event).
 */
function liveState<S, T>(events: AsyncIterableIterator<T>, load: () => Promise<S>, relevant: (event: T) => boolean): AsyncIterableIterator<S> {
  let first = true;
  const iterator: AsyncIterableIterator<S> = {
    async next() {
      if (!first) {
        for (;;) {
          const event = await events.next();
          if (event.done) return { value: undefined, done: true };
          if (relevant(event.value)) break;
        }
      }
      first = false;
      try {
        return { value: await load(), done: false };
      } catch (error) {
        // The subscription ends with the error (the upload expired, the folder went): its listener goes too.
        await events.return?.();
        throw error;
      }
    },
    async return() {
      await events.return?.();
      return { value: undefined, done: true };
    },
    [Symbol.asyncIterator]: () => iterator,
  };
  return iterator;
}
