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
 * where in the server's change feed it is — kept in the config folder's local database, so a pull
 * interrupted anywhere goes on from its last finished page and a pull again transfers nothing.
 */
export class PullState {
  private readonly db: sqlite.Database;

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
        create index if not exists pulled_asset on pulled (server, root, asset_id);
        create index if not exists pulled_sha256 on pulled (server, root, sha256);
        create table if not exists pull_cursor (
          server text not null,
          root text not null,
          only_folder text not null,
          cursor text not null,
          primary key (server, root, only_folder)
        );
      `),
    );
  }

  private locked<T>(work: () => T): T {
    return locking(this.file, work);
  }

  cursor(): string | null {
    const row = this.locked(() => this.db.get('select cursor from pull_cursor where server = ? and root = ? and only_folder = ?', [this.server, this.root, this.only])) as { cursor: string } | null;
    return row?.cursor ?? null;
  }

  saveCursor(cursor: string | null): void {
    this.locked(() => {
      if (cursor === null) this.db.run('delete from pull_cursor where server = ? and root = ? and only_folder = ?', [this.server, this.root, this.only]);
      else this.db.run('insert or replace into pull_cursor (server, root, only_folder, cursor) values (?, ?, ?, ?)', [this.server, this.root, this.only, cursor]);
    });
  }

  filesOf(assetId: string): PulledFile[] {
    return this.rows('select * from pulled where server = ? and root = ? and asset_id = ?', [assetId]);
  }

  withContent(sha256: string): PulledFile[] {
    return this.rows('select * from pulled where server = ? and root = ? and sha256 = ?', [sha256]);
  }

  at(relPath: string): PulledFile | null {
    return this.rows('select * from pulled where server = ? and root = ? and rel_path = ?', [relPath])[0] ?? null;
  }

  record(file: PulledFile): void {
    this.locked(() =>
      this.db.run('insert or replace into pulled (server, root, rel_path, asset_id, sha256, size, mtime_ms) values (?, ?, ?, ?, ?, ?, ?)', [
        this.server,
        this.root,
        file.relPath,
        file.assetId,
        file.sha256,
        file.size,
        file.mtimeMs,
      ]),
    );
  }

  forget(relPath: string): void {
    this.locked(() => this.db.run('delete from pulled where server = ? and root = ? and rel_path = ?', [this.server, this.root, relPath]));
  }

  close(): void {
    this.db.close();
  }

  private rows(query: string, extra: (string | number)[]): PulledFile[] {
    const rows = this.locked(() => this.db.all(query, [this.server, this.root, ...extra])) as { rel_path: string; asset_id: string; sha256: string; size: number; mtime_ms: number }[];
    return rows.map((r) => ({ relPath: r.rel_path, assetId: r.asset_id, sha256: r.sha256, size: r.size, mtimeMs: r.mtime_ms }));
  }
}
