import type sqlite from 'node-sqlite3-wasm';
import { locking, openLocalDatabase } from './local-database.js';

/** A file `pull` wrote: which asset, where below the pull folder, and what it was when written. */
export interface PulledFile {
  assetId: string;
  /** Relative to the pull folder, with `/` between parts. */
  relPath: string;
  sha256: string;
  size: number;
  mtimeMs: number;
}

/**
 * What `pixshare pull` brought into a folder from a server (D4): each file it wrote, by asset, and
 * where in the server's change feed it is — kept in the config folder's local database. Read whole
 * when the pull starts and answered from memory; what changes is written with the feed position, in
 * one transaction per page (each statement of this SQLite build takes a lock of its own: a write per
 * file cost milliseconds of the event loop). A pull cut off before its page was written applies the
 * page again, and finds its files already there (pull adopts a file identical to the photo).
 */
export class PullState {
  private readonly db: sqlite.Database;
  private readonly byPath = new Map<string, PulledFile>();
  private readonly byAsset = new Map<string, Set<string>>();
  private readonly byContent = new Map<string, Set<string>>();
  /** Changes not yet written: the file now at a path, or null when it was forgotten. */
  private readonly pending = new Map<string, PulledFile | null>();

  constructor(
    private readonly file: string,
    private readonly server: string,
    /** The pull folder's real path, and the server folder pulled (empty: all). */
    private readonly root: string,
    private readonly only: string,
  ) {
    this.db = openLocalDatabase(file);
    this.locked(() =>
      this.db.exec(`
        create table if not exists pulled (
          server text not null,
          root text not null,
          rel_path text not null,
          asset_id text not null,
          sha256 text not null,
          size integer not null,
          mtime_ms real not null,
          primary key (server, root, rel_path)
        );
        create table if not exists pull_cursor (
          server text not null,
          root text not null,
          only_folder text not null,
          cursor text not null,
          primary key (server, root, only_folder)
        );
      `),
    );
    const rows = this.locked(() => this.db.all('select * from pulled where server = ? and root = ?', [server, root])) as { rel_path: string; asset_id: string; sha256: string; size: number; mtime_ms: number }[];
    for (const r of rows) this.remember({ relPath: r.rel_path, assetId: r.asset_id, sha256: r.sha256, size: r.size, mtimeMs: r.mtime_ms });
  }

  private locked<T>(work: () => T): T {
    return locking(this.file, work);
  }

  cursor(): string | null {
    const row = this.locked(() => this.db.get('select cursor from pull_cursor where server = ? and root = ? and only_folder = ?', [this.server, this.root, this.only])) as { cursor: string } | null;
    return row?.cursor ?? null;
  }

  /** Writes the files recorded and forgotten since the last call, and the feed position (unless null), at once. */
  saveCursor(cursor: string | null): void {
    this.locked(() => {
      this.db.exec('begin');
      try {
        for (const [relPath, file] of this.pending) {
          if (file) this.db.run('insert or replace into pulled (server, root, rel_path, asset_id, sha256, size, mtime_ms) values (?, ?, ?, ?, ?, ?, ?)', [this.server, this.root, relPath, file.assetId, file.sha256, file.size, file.mtimeMs]);
          else this.db.run('delete from pulled where server = ? and root = ? and rel_path = ?', [this.server, this.root, relPath]);
        }
        if (cursor !== null) this.db.run('insert or replace into pull_cursor (server, root, only_folder, cursor) values (?, ?, ?, ?)', [this.server, this.root, this.only, cursor]);
        this.db.exec('commit');
      } catch (error) {
        if (this.db.inTransaction) this.db.exec('rollback');
        throw error;
      }
    });
    this.pending.clear();
  }

  filesOf(assetId: string): PulledFile[] {
    return [...(this.byAsset.get(assetId) ?? [])].map((p) => this.byPath.get(p)!);
  }

  withContent(sha256: string): PulledFile[] {
    return [...(this.byContent.get(sha256) ?? [])].map((p) => this.byPath.get(p)!);
  }

  at(relPath: string): PulledFile | null {
    return this.byPath.get(relPath) ?? null;
  }

  record(file: PulledFile): void {
    this.forget(file.relPath);
    this.remember(file);
    this.pending.set(file.relPath, file);
  }

  forget(relPath: string): void {
    const file = this.byPath.get(relPath);
    if (!file) return;
    this.byPath.delete(relPath);
    this.byAsset.get(file.assetId)?.delete(relPath);
    this.byContent.get(file.sha256)?.delete(relPath);
    this.pending.set(relPath, null);
  }

  close(): void {
    this.db.close();
  }

  private remember(file: PulledFile): void {
    this.byPath.set(file.relPath, file);
    if (!this.byAsset.has(file.assetId)) this.byAsset.set(file.assetId, new Set());
    this.byAsset.get(file.assetId)!.add(file.relPath);
    if (!this.byContent.has(file.sha256)) this.byContent.set(file.sha256, new Set());
    this.byContent.get(file.sha256)!.add(file.relPath);
  }
}
