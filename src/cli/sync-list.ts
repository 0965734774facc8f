import type sqlite from 'node-sqlite3-wasm';
import { locking, openLocalDatabase } from './local-database.js';

/**
 * The sync list (U2): what this device has uploaded to which server, so that a file that has not
 * changed is neither hashed nor checked again. A file is known by its path, size, modification
 * time and inode; a file renamed or moved keeps its inode, size and time, so it is found under
 * its new path too and not sent again. Losing the list is safe: the files are hashed again and
 * the server's check answers that it has them.
 *
 * Kept in the config folder's local database (local-database.ts).
 */
export interface KnownFile {
  sha256: string;
  assetId: string;
}

export interface FileIdentity {
  path: string;
  size: number;
  mtimeMs: number;
  inode: number;
}

export class SyncList {
  private readonly db: sqlite.Database;
  private readonly byPath: sqlite.Statement;
  private readonly byInode: sqlite.Statement;
  private readonly upsert: sqlite.Statement;
  private readonly hashOf: sqlite.Statement;
  private readonly rememberHash: sqlite.Statement;
  private readonly forgetHash: sqlite.Statement;
  private readonly pending: { file: FileIdentity; known: KnownFile }[] = [];
  private flushTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly file: string,
    private readonly server: string,
  ) {
    this.db = openLocalDatabase(file);
    this.locking(() =>
      this.db.exec(`
      create table if not exists uploaded (
        server text not null,
        path text not null,
        size integer not null,
        mtime_ms real not null,
        inode integer not null,
        sha256 text not null,
        asset_id text not null,
        uploaded_at text not null default (datetime('now')),
        primary key (server, path)
      );
      create index if not exists uploaded_inode on uploaded (server, inode, size, mtime_ms);
      create table if not exists hashed (
        path text primary key,
        size integer not null,
        mtime_ms real not null,
        inode integer not null,
        sha256 text not null
      );
    `),
    );
    this.hashOf = this.db.prepare('select sha256 from hashed where path = ? and size = ? and mtime_ms = ? and inode = ?');
    this.rememberHash = this.db.prepare('insert or replace into hashed (path, size, mtime_ms, inode, sha256) values (?, ?, ?, ?, ?)');
    this.forgetHash = this.db.prepare('delete from hashed where path = ?');
    this.byPath = this.db.prepare('select sha256, asset_id from uploaded where server = ? and path = ? and size = ? and mtime_ms = ? and inode = ?');
    this.byInode = this.db.prepare('select sha256, asset_id from uploaded where server = ? and inode = ? and size = ? and mtime_ms = ? limit 1');
    this.upsert = this.db.prepare('insert or replace into uploaded (server, path, size, mtime_ms, inode, sha256, asset_id) values (?, ?, ?, ?, ?, ?, ?)');
  }

  /**
   * `lookup` for many files in one read transaction: SQLite takes its lock once, not once per
   * statement (with this build each lock is a directory made and removed).
   */
  lookupMany<T extends FileIdentity>(files: readonly T[]): (KnownFile | null)[] {
    if (files.length === 0) return [];
    this.flush();
    return this.locking(() => {
      this.db.exec('begin');
      try {
        return files.map((file) => this.lookup(file));
      } finally {
        this.db.exec('commit');
      }
    });
  }

  private locking<T>(work: () => T): T {
    return locking(this.file, work);
  }

  /** What this device sent of this file, if the file is as it was then (here or under another name). */
  lookup(file: FileIdentity): KnownFile | null {
    const row = (this.byPath.get([this.server, file.path, file.size, file.mtimeMs, file.inode]) ??
      (file.inode ? this.byInode.get([this.server, file.inode, file.size, file.mtimeMs]) : null)) as { sha256: string; asset_id: string } | null;
    return row ? { sha256: row.sha256, assetId: row.asset_id } : null;
  }

  /**
   * The server confirmed it stores these bytes (an upload, an instant upload, or already there).
   * Written with others in one transaction, at most half a second later (or at `close`): losing the
   * last few to a crash is safe, the server's check answers for them next time.
   */
  record(file: FileIdentity, known: KnownFile): void {
    this.pending.push({ file, known });
    if (this.pending.length >= 200) this.flush();
    else
      this.flushTimer ??= setTimeout(() => {
        try {
          this.flush();
        } catch {
          // Kept for the next flush (or lost with the process: the server's check answers for them).
        }
      }, 500).unref();
  }

  /** Writes what `record` holds back. */
  flush(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.pending.length === 0) return;
    const batch = this.pending.splice(0);
    try {
      this.locking(() => {
        this.db.exec('begin');
        try {
          for (const { file, known } of batch) {
            this.upsert.run([this.server, file.path, file.size, file.mtimeMs, file.inode, known.sha256, known.assetId]);
            this.forgetHash.run([file.path]);
          }
          this.db.exec('commit');
        } catch (error) {
          if (this.db.inTransaction) this.db.exec('rollback');
          throw error;
        }
      });
    } catch (error) {
      this.pending.unshift(...batch);
      throw error;
    }
  }

  /**
   * The chunk list's start (U6): the hash of a large file on its way, kept until the server confirmed
   * it. A client killed in the middle hashes nothing again; checking the file again brings back the
   * same upload session, whose missing ranges the server tells.
   */
  inFlightHash(file: FileIdentity): string | null {
    const row = this.locking(() => this.hashOf.get([file.path, file.size, file.mtimeMs, file.inode])) as { sha256: string } | null;
    return row?.sha256 ?? null;
  }

  rememberInFlight(file: FileIdentity, sha256: string): void {
    this.locking(() => this.rememberHash.run([file.path, file.size, file.mtimeMs, file.inode, sha256]));
  }

  close(): void {
    this.flush();
    for (const statement of [this.byPath, this.byInode, this.upsert, this.hashOf, this.rememberHash, this.forgetHash]) statement.finalize();
    this.db.close();
  }
}
