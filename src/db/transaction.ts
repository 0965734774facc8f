import { sql } from 'drizzle-orm';
import type { Db } from './client.js';

/** A transaction as drizzle hands it to `db.transaction(async (tx) => …)`. */
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

/**
 * For bookkeeping transactions (chunk reservations, "received"): their commit need not wait for
 * the WAL to reach the disk. An operating-system crash could forget the last fraction of a second
 * of them; the bytes are on disk either way, and the interrupt list then asks for those chunks
 * again (U6) — re-sent, never lost. Never for user data: an asset is committed durably.
 */
export const ASYNC_COMMIT = sql`set local synchronous_commit = off`;

/**
 * Put in a statement's RETURNING (or select list), this lets the commit of the statement's
 * transaction skip the wait for the WAL flush: `set_config(…, true)` holds until the transaction
 * ends, and the commit reads it. For bookkeeping a crash may lose (the last fraction of a second
 * of it), never for user data. One statement stays one round trip, where `set local` needs an
 * explicit transaction around it (three more). Inside an explicit transaction it applies to all of it.
 */
export const withoutWaitingForDisk = sql<string>`set_config('synchronous_commit', 'off', true)`;

/** The SQLSTATE of a failed statement: drizzle wraps the driver's error (cause); postgres.js's own carries it. */
export function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | undefined)?.code ?? (error as { cause?: { code?: unknown } } | undefined)?.cause?.code;
  return typeof code === 'string' ? code : undefined;
}

/** PostgreSQL undid the transaction to break a deadlock, or for a serialization failure. */
const RETRYABLE = new Set(['40P01', '40001']);

/**
 * Runs `work` again, up to three runs in all, when PostgreSQL undid it for a deadlock or a
 * serialization failure (nothing of it holds then). Adding an asset takes the blob row before
 * the user row; a delete or an eviction of the same user's assets takes them the other way.
 */
export async function runAgainOnConflict<T>(work: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      const code = sqlState(error);
      if (attempt >= 3 || code === undefined || !RETRYABLE.has(code)) throw error;
    }
  }
}

const committed = new WeakMap<object, (() => void)[]>();

/**
 * Runs `callback` once the transaction `tx` has committed (never if it rolls back). Outside a
 * transaction of `trackCommits`' database (the database itself, say), at once. For effects that
 * must not be seen before the change is, beside PostgreSQL: e.g. an event sent through Redis.
 */
export function afterCommit(tx: object, callback: () => void): void {
  const callbacks = committed.get(tx);
  if (callbacks) callbacks.push(callback);
  else callback();
}

/** Makes `db.transaction` run the `afterCommit` callbacks of its transactions when they commit. */
export function trackCommits(db: Db): Db {
  const transaction = db.transaction.bind(db);
  db.transaction = (async (work: (tx: Tx) => Promise<unknown>, config?: Parameters<Db['transaction']>[1]) => {
    const callbacks: (() => void)[] = [];
    const result = await transaction(async (tx) => {
      committed.set(tx, callbacks);
      return work(tx);
    }, config);
    for (const callback of callbacks) callback();
    return result;
  }) as Db['transaction'];
  return db;
}
