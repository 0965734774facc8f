import { EventEmitter } from 'node:events';
import { sql, type SQL } from 'drizzle-orm';
import { Redis } from 'ioredis';
import type postgres from 'postgres';
import { afterCommit } from '../db/transaction.js';
import type { Logger } from '../logger.js';

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

/** A transaction (or the database) a transactional publish is part of. */
type Executor = { execute(query: SQL): PromiseLike<unknown> };

/**
 * Events for live subscriptions, between every server instance: one connection per process
 * receives them, and topics fan out locally. Two carriers: PostgreSQL LISTEN/NOTIFY (the default,
 * nothing more to run) and Redis pub/sub (`REDIS_URL`, for large deployments: NOTIFY serialises
 * committing transactions that notify).
 */
export abstract class PubSub {
  protected readonly local = new EventEmitter();

  constructor() {
    this.local.setMaxListeners(0);
  }

  abstract start(): Promise<void>;
  abstract publish(topic: string, data: unknown): Promise<void>;
  /**
   * Publishes as part of a transaction: delivered when (and only if) it commits, so subscribers
   * hear of a change exactly when it is there to be read, and never of one rolled back.
   */
  abstract publishIn(tx: Executor, topic: string, data: unknown): Promise<void>;
  abstract close(): Promise<void>;

  /** An event as it arrives from the carrier: handed to this process's listeners of its topic. */
  protected deliver(payload: string): void {
    let event: { topic: string; data: unknown };
    try {
      event = JSON.parse(payload) as { topic: string; data: unknown };
    } catch {
      return;
    }
    this.local.emit(event.topic, event.data);
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
}

/** Events through PostgreSQL LISTEN/NOTIFY: one LISTEN connection per process. */
export class PostgresPubSub extends PubSub {
  private listening?: Promise<unknown>;
  private unlisten?: () => Promise<void>;

  constructor(private readonly sql: postgres.Sql) {
    super();
  }

  async start(): Promise<void> {
    this.listening ??= this.sql
      .listen(CHANNEL, (payload) => this.deliver(payload))
      .then((meta) => {
        this.unlisten = meta.unlisten;
      });
    await this.listening;
  }

  async publish(topic: string, data: unknown): Promise<void> {
    await this.sql.notify(CHANNEL, payloadOf(topic, data));
  }

  /** A NOTIFY in the transaction: PostgreSQL delivers it on commit. Sent alongside the transaction's other statements (no round trip of its own). */
  async publishIn(tx: Executor, topic: string, data: unknown): Promise<void> {
    const payload = payloadOf(topic, data);
    // The payload goes in as a literal, not a parameter: a statement without parameters is sent in
    // one go (postgres.js first asks the server to describe an unprepared statement's parameters,
    // a round trip of its own that would also hold back the statements pipelined after it).
    await tx.execute(sql`select pg_notify(${sql.raw(quoteLiteral(CHANNEL))}, ${sql.raw(quoteLiteral(payload))})`);
  }

  async close(): Promise<void> {
    await this.unlisten?.().catch(() => {});
    this.local.removeAllListeners();
  }
}

/**
 * Events through Redis pub/sub (`REDIS_URL`): one subscribing connection and one publishing
 * connection per process. A transactional publish goes out when the transaction has committed
 * (afterCommit), in order; one Redis could not take is logged (its subscribers are then behind
 * until the next event of the same state, or their reconnection).
 */
export class RedisPubSub extends PubSub {
  private readonly publisher: Redis;
  private readonly subscriber: Redis;

  constructor(
    url: string,
    private readonly log: Logger,
  ) {
    super();
    const options = { lazyConnect: true, maxRetriesPerRequest: 3, connectionName: 'pixshare' };
    this.publisher = new Redis(url, options);
    this.subscriber = new Redis(url, options);
    for (const connection of [this.publisher, this.subscriber]) connection.on('error', (error: Error) => this.log.error('Redis connection error', error));
  }

  async start(): Promise<void> {
    await Promise.all([this.publisher.connect(), this.subscriber.connect()]);
    this.subscriber.on('message', (_channel: string, payload: string) => this.deliver(payload));
    await this.subscriber.subscribe(CHANNEL);
  }

  async publish(topic: string, data: unknown): Promise<void> {
    await this.publisher.publish(CHANNEL, payloadOf(topic, data));
  }

  async publishIn(tx: Executor, topic: string, data: unknown): Promise<void> {
    const payload = payloadOf(topic, data);
    afterCommit(tx, () => {
      this.publisher.publish(CHANNEL, payload).catch((error: unknown) => this.log.error(`could not publish an event on ${topic} through Redis`, error));
    });
  }

  async close(): Promise<void> {
    this.local.removeAllListeners();
    await Promise.all([this.subscriber.quit().catch(() => {}), this.publisher.quit().catch(() => {})]);
  }
}

/** The carrier the configuration asks for: Redis when `REDIS_URL` is set, else PostgreSQL. */
export function createPubSub(options: { redisUrl?: string; sql: postgres.Sql; log: Logger }): PubSub {
  return options.redisUrl ? new RedisPubSub(options.redisUrl, options.log) : new PostgresPubSub(options.sql);
}
