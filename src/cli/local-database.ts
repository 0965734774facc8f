import { mkdirSync, rmdirSync, statSync } from 'node:fs';
import path from 'node:path';
import sqlite from 'node-sqlite3-wasm';

/**
 * The client's local database in the config folder (the sync list, what `pull` wrote): SQLite
 * compiled to WebAssembly (node-sqlite3-wasm), which ships inside its npm package (nothing native to
 * build or download) and writes its database file directly. Several pixshare processes may share it
 * (an agent running as a service and a push by hand): a statement waits up to 5 s for another's lock.
 */
export function openLocalDatabase(file: string): sqlite.Database {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  clearStaleLock(file);
  const db = new sqlite.Database(file);
  db.exec(`pragma busy_timeout = ${BUSY_TIMEOUT_MS}`);
  return db;
}

/** Runs `work` again once when it found the database locked by a process that died holding the lock. */
export function locking<T>(file: string, work: () => T): T {
  try {
    return work();
  } catch (error) {
    if (!isLocked(error) || !clearStaleLock(file)) throw error;
    return work();
  }
}

/** How long another process may wait on the database's lock; every transaction here takes milliseconds. */
const BUSY_TIMEOUT_MS = 5000;
/**
 * A lock this old, found after waiting that long for it, was left by a process that died holding
 * it: a live one takes a new lock (a new directory) for each transaction, each a matter of milliseconds.
 */
const STALE_LOCK_MS = BUSY_TIMEOUT_MS;

/**
 * node-sqlite3-wasm locks the database with a directory beside it, made and removed around each
 * transaction; a process killed while holding it (SIGKILL, power loss) leaves it behind, and every
 * later open would find the database locked for good. A lock that old is removed. Says whether it was.
 */
function clearStaleLock(file: string): boolean {
  const lock = `${file}.lock`;
  try {
    if (Date.now() - statSync(lock).mtimeMs < STALE_LOCK_MS) return false;
    rmdirSync(lock);
    return true;
  } catch {
    return false;
  }
}

const isLocked = (error: unknown) => error instanceof Error && /database is locked/i.test(error.message);

