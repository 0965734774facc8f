import { EventEmitter } from 'node:events';
import { sql, type SQL } from 'drizzle-orm';
import type postgres from 'postgres';

const CHANNEL = 'pixshare_events';
/** PostgreSQL's NOTIFY payload limit is 8000 bytes; events are small by design (ids and counters). */
const MAX_PAYLOAD = 7900;

function payloadOf(topic: string, data: unknown): string {
  const payload = JSON.stringify({ topic, data });
  if (Buffer.byteLength(payload) > MAX_PAYLOAD) throw new Error(`event on ${topic} is too large for NOTIFY`);
  return payload;
}

/** A string literal PostgreSQL reads the same whatever standard_conforming_strings says (E'' escapes). */
function quoteLiteral(text: string): string {
  if (text.includes('\0')) throw new Error('PostgreSQL text cannot contain NUL');
  return `E'${text.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
}

/**
 * Events for live subscriptions, carried by PostgreSQL LISTEN/NOTIFY so that an
 * event published on one server instance reaches subscribers on every instance,
 * with no extra server to run. One LISTEN connection per process; topics fan out
 * locally.
 */
export class PubSub {
  private readonly local = new EventEmitter();
  private listening?: Promise<unknown>;
  private unlisten?: () => Promise<void>;

  constructor(private readonly sql: postgres.Sql) {
    this.local.setMaxListeners(0);
  }

  async start(): Promise<void> {
    this.listening ??= this.sql
      .listen(CHANNEL, (payload) => {
        let event: { topic: string; data: unknown };
        try {
          event = JSON.parse(payload) as { topic: string; data: unknown };
        } catch {
          return;
        }
        this.local.emit(event.topic, event.data);
      })
      .then((meta) => {
        this.unlisten = meta.unlisten;
      });
    await this.listening;
  }

  async publish(topic: string, data: unknown): Promise<void> {
    await this.sql.notify(CHANNEL, payloadOf(topic, data));
  }

  /**
   * Publishes as part of a transaction: PostgreSQL delivers a NOTIFY only when its transaction
   * commits, so subscribers hear of the change exactly when it is there to be read, and never of
   * one rolled back. It can be sent alongside the transaction's other statements (no round trip of its own).
   */
  async publishIn(tx: { execute(query: SQL): PromiseLike<unknown> }, topic: string, data: unknown): Promise<void> {
    const payload = payloadOf(topic, data);
    // The payload goes in as a literal, not a parameter: a statement without parameters is sent in
    // one go (postgres.js first asks the server to describe an unprepared statement's parameters,
    // a round trip of its own that would also hold back the statements pipelined after it).
    await tx.execute(sql`select pg_notify(${sql.raw(quoteLiteral(CHANNEL))}, ${sql.raw(quoteLiteral(payload))})`);
  }


  /** How many listeners this process has on the topic (subscriptions, watchers). */
  listenerCount(topic: string): number {
    return this.local.listenerCount(topic);
  }

  /** Calls `listener` with each event of the topic until the returned function is called. */
  on<T>(topic: string, listener: (data: T) => void): () => void {
    this.local.on(topic, listener);
    return () => void this.local.off(topic, listener);
  }

  /**
   * Events of one topic until the consumer returns. The listener is attached at
   * once (not on the first next()), so a caller can subscribe, read the current
   * state, then consume without missing a change made in between.
   */
  subscribe<T>(topic: string): AsyncIterableIterator<T> {
    const queue: T[] = [];
    let wake: (() => void) | undefined;
    let done = false;
    const listener = (data: T) => {
      queue.push(data);
      wake?.();
    };
    this.local.on(topic, listener);
    const finish = () => {
      done = true;
      this.local.off(topic, listener);
      wake?.();
    };
    const iterator: AsyncIterableIterator<T> = {
      next: async () => {
        while (!done && queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
        if (queue.length > 0) return { value: queue.shift()!, done: false };
        return { value: undefined, done: true };
      },
      return: async () => {
        finish();
        queue.length = 0;
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  async close(): Promise<void> {
    await this.unlisten?.().catch(() => {});
    this.local.removeAllListeners();
  }
}
