import type { SQL } from 'drizzle-orm';
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

export interface SyncEvent {
  userId: string;
}

export interface DevicesEvent {
  userId: string;
}

export interface DeviceRevokedEvent {
  deviceId: string;
}

export const topics = {
  /**
   * Anything a sync view of the user shows changed: an upload opened, moved, completed or failed;
   * an asset added, deleted or evicted. Upload and folder-status subscriptions listen here.
   */
  sync: (userId: string) => topic<SyncEvent>(`user:${userId}:sync`),
  /** The user's control list changed: a device signed in, out or was revoked. */
  devices: (userId: string) => topic<DevicesEvent>(`user:${userId}:devices`),
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
  watch<S>(from: Topic<unknown>, load: () => Promise<S>): AsyncIterableIterator<S> {
    return liveState(this.pubsub.subscribe(from.name), load);
  }
}

/**
 * The current state first, then the state again after each event. return() reaches the event
 * source at once, so a client that unsubscribes while nothing happens frees its listener
 * immediately (an async generator would stay suspended in its await until the next event).
 */
function liveState<S>(events: AsyncIterableIterator<unknown>, load: () => Promise<S>): AsyncIterableIterator<S> {
  let first = true;
  const iterator: AsyncIterableIterator<S> = {
    async next() {
      if (!first) {
        const event = await events.next();
        if (event.done) return { value: undefined, done: true };
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
