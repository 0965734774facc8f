import { and, asc, eq, gt, inArray, lt, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.js';
import { assets, folderAssets, folders, libraryChangeFloor, libraryChanges, type AssetRow, type LibraryChangeOp } from '../../db/schema/index.js';
import { AppError } from '../app-error.js';
import type { Viewer } from '../devices.js';

/** One entry of the feed: what happened to an asset, and the asset as it is now (null once removed). */
export interface LibraryChange {
  op: LibraryChangeOp;
  assetId: string;
  asset: AssetRow | null;
  /** The folders holding it now (id and name). */
  folders: { id: string; name: string }[];
}

export interface LibraryChangePage {
  changes: LibraryChange[];
  /** Where to continue; kept by the client between runs (it survives server restarts). */
  cursor: string;
  /** More is there now: ask again at once with `cursor`. */
  hasMore: boolean;
}

const PAGE_MAX = 1000;

/**
 * Position in the feed. `x`: every change written by a transaction below this id has been handed
 * out; `lx`/`ls`: of the transactions from `x` on, those up to this one (transaction id, row) too.
 * A listing of the whole library (no cursor yet) pages by asset id (`a`) and then goes on from the
 * `x` it started at, so nothing that changed while it was listed is missed.
 */
type Position = { kind: 'feed'; x: number; lx: number; ls: number } | { kind: 'list'; x: number; a: string };

function encode(position: Position): string {
  return position.kind === 'feed' ? `1.${position.x}.${position.lx}.${position.ls}` : `1l.${position.x}.${position.a}`;
}

function decode(cursor: string): Position {
  const feed = /^1\.(\d{1,19})\.(\d{1,19})\.(\d{1,19})$/.exec(cursor);
  if (feed) return { kind: 'feed', x: Number(feed[1]), lx: Number(feed[2]), ls: Number(feed[3]) };
  const list = /^1l\.(\d{1,19})\.([0-9a-f-]{36})$/.exec(cursor);
  if (list) return { kind: 'list', x: Number(list[1]), a: list[2]! };
  throw new AppError('BAD_USER_INPUT', 'Not a cursor of the change feed', { field: 'after' });
}

/**
 * The change feed of a user's library (D4): `changes(after)` answers what was added, renamed,
 * removed or moved between folders since a cursor, each with the asset as it is now — enough for a
 * device to bring a copy up to date incrementally. Without a cursor it lists the whole library
 * first. A cursor from before the feed was pruned is refused (CURSOR_EXPIRED): start over.
 */
export class LibraryChanges {
  constructor(private readonly deps: { db: Db }) {}

  async changes(viewer: Viewer, args: { after?: string | null; first?: number | null }): Promise<LibraryChangePage> {
    const first = Math.min(Math.max(args.first ?? 500, 1), PAGE_MAX);
    const position = args.after ? decode(args.after) : null;
    const horizon = await this.horizon();
    if (position && position.x < (await this.floor())) {
      throw new AppError('CURSOR_EXPIRED', 'This cursor is older than the change feed keeps: list the library again (no cursor)');
    }
    if (!position || position.kind === 'list') return this.list(viewer, position?.x ?? horizon, position?.kind === 'list' ? position.a : null, first);

    const upper = Math.max(horizon, position.x);
    const rows = await this.deps.db
      .select({ seq: libraryChanges.seq, xid: libraryChanges.xid, assetId: libraryChanges.assetId, op: libraryChanges.op })
      .from(libraryChanges)
      .where(
        and(
          eq(libraryChanges.userId, viewer.user.id),
          sql`${libraryChanges.xid} >= ${position.x}`,
          lt(libraryChanges.xid, upper),
          sql`(${libraryChanges.xid}, ${libraryChanges.seq}) > (${position.lx}, ${position.ls})`,
        ),
      )
      .orderBy(asc(libraryChanges.xid), asc(libraryChanges.seq))
      .limit(first + 1);
    const hasMore = rows.length > first;
    const page = rows.slice(0, first);
    const last = page.at(-1);
    // An asset changed several times in the page is told once, where it last changed: as added if
    // it was added in the page (and is still there), else as its last change.
    const lastOf = new Map<string, { op: LibraryChangeOp; assetId: string }>();
    for (const row of page) {
      const earlier = lastOf.get(row.assetId);
      lastOf.delete(row.assetId);
      lastOf.set(row.assetId, { assetId: row.assetId, op: earlier?.op === 'added' && row.op !== 'removed' ? 'added' : row.op });
    }
    const changes = await this.withAssets(viewer, [...lastOf.values()]);
    const cursor = hasMore && last ? encode({ kind: 'feed', x: position.x, lx: last.xid, ls: last.seq }) : encode({ kind: 'feed', x: upper, lx: 0, ls: 0 });
    return { changes, cursor, hasMore };
  }

  /** The whole library, by asset id, as "added"; then the feed from `x` (when this listing began). */
  private async list(viewer: Viewer, x: number, afterId: string | null, first: number): Promise<LibraryChangePage> {
    const rows = await this.deps.db
      .select({ id: assets.id })
      .from(assets)
      .where(and(eq(assets.userId, viewer.user.id), afterId ? gt(assets.id, afterId) : undefined))
      .orderBy(asc(assets.id))
      .limit(first + 1);
    const hasMore = rows.length > first;
    const page = rows.slice(0, first);
    const changes = await this.withAssets(viewer, page.map((r) => ({ op: 'added' as const, assetId: r.id })));
    const cursor = hasMore ? encode({ kind: 'list', x, a: page.at(-1)!.id }) : encode({ kind: 'feed', x, lx: 0, ls: 0 });
    return { changes, cursor, hasMore };
  }

  private async withAssets(viewer: Viewer, entries: { op: LibraryChangeOp; assetId: string }[]): Promise<LibraryChange[]> {
    if (entries.length === 0) return [];
    const ids = entries.map((e) => e.assetId);
    const rows = await this.deps.db
      .select()
      .from(assets)
      .where(and(eq(assets.userId, viewer.user.id), inArray(assets.id, ids)));
    const placed = await this.deps.db
      .select({ assetId: folderAssets.assetId, id: folders.id, name: folders.name })
      .from(folderAssets)
      .innerJoin(folders, eq(folders.id, folderAssets.folderId))
      .where(and(inArray(folderAssets.assetId, ids), eq(folders.userId, viewer.user.id)))
      .orderBy(asc(folders.name));
    const byId = new Map(rows.map((r) => [r.id, r]));
    return entries.map(({ op, assetId }) => {
      const asset = byId.get(assetId) ?? null;
      return {
        // Gone by now, whatever happened before: removed.
        op: asset ? op : 'removed',
        assetId,
        asset,
        folders: asset ? placed.filter((p) => p.assetId === assetId).map(({ id, name }) => ({ id, name })) : [],
      };
    });
  }

  /**
   * Every transaction below this id has ended (the oldest still running, or the next to start): the
   * changes they wrote are all visible now. Changes of transactions from here on wait for a later call.
   */
  private async horizon(): Promise<number> {
    const [row] = await this.deps.db.execute<{ x: string }>(sql`select pg_snapshot_xmin(pg_current_snapshot())::text as x`);
    return Number(row!.x);
  }

  private async floor(): Promise<number> {
    const [row] = await this.deps.db.select({ through: libraryChangeFloor.throughXid }).from(libraryChangeFloor);
    return row?.through ?? 0;
  }

  /** Forgets changes older than `days`; cursors from before them must start over. Returns how many went. */
  async prune(days: number): Promise<number> {
    return this.deps.db.transaction(async (tx) => {
      const gone = await tx
        .delete(libraryChanges)
        .where(sql`${libraryChanges.seq} in (select seq from ${libraryChanges} where ${libraryChanges.at} < now() - make_interval(days => ${days}) limit 5000)`)
        .returning({ xid: libraryChanges.xid });
      if (gone.length === 0) return 0;
      const through = Math.max(...gone.map((g) => g.xid)) + 1;
      await tx
        .insert(libraryChangeFloor)
        .values({ id: 1, throughXid: through })
        .onConflictDoUpdate({ target: libraryChangeFloor.id, set: { throughXid: sql`greatest(${libraryChangeFloor.throughXid}, ${through})` } });
      return gone.length;
    });
  }
}
