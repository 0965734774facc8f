import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, lstat, mkdir, rename, rm, stat, unlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ApiError, type ApiClient } from '../client/api-client.js';
import { safeFileName } from '../protocol/safe-names.js';
import type { PulledFile, PullState } from './pull-state.js';
import type { Reporter } from './reporter.js';

export interface PullOptions {
  /** Only this server folder. */
  folder?: string;
  /** Remove files whose photo was removed on the server (else they are kept and forgotten). */
  delete?: boolean;
  concurrency: number;
}

export interface PullSummary {
  changes: number;
  downloaded: number;
  /** Written from a file already here with the same content: nothing transferred. */
  copied: number;
  /** Already in its place, identical (found, not written). */
  present: number;
  moved: number;
  removed: number;
  /** Left in place: removed on the server without --delete, or changed here since it was pulled. */
  kept: number;
  failed: number;
  bytes: number;
}

interface Change {
  op: 'ADDED' | 'UPDATED' | 'REMOVED' | 'MOVED';
  assetId: string;
  asset: { id: string; name: string; sha256: string; size: number; takenAt: string | null; uploadedAt: string; downloadUrl: string } | null;
  folders: { id: string; name: string }[];
}

const CHANGES = `query($after: String) { changes(after: $after, first: 80) { cursor hasMore changes {
  op assetId folders { id name } asset { id name sha256 size takenAt uploadedAt downloadUrl } } } }`;

/** Partial downloads wait here, below the pull folder (no photo or folder name can start with a dot). */
const PARTIAL_DIR = '.pixshare-partial';

/**
 * `pixshare pull <dir>` (D4): brings a folder on this device up to date with the library, from the
 * server's change feed — each photo in a subfolder named after its server folder (photos in none at
 * the top; with --folder only that folder's). Every file is verified by SHA-256 before it takes its
 * place; names are made safe (whatever a folder or photo is called, nothing is written outside the
 * pull folder) and unique; a file already here with the same content is copied, not downloaded; a
 * download cut off goes on from where it stopped. The feed position is kept after each page, so an
 * interrupted pull resumes and a pull again transfers nothing.
 */
export async function pull(api: ApiClient, state: PullState, root: string, options: PullOptions, report: Reporter): Promise<PullSummary> {
  const summary: PullSummary = { changes: 0, downloaded: 0, copied: 0, present: 0, moved: 0, removed: 0, kept: 0, failed: 0, bytes: 0 };
  let cursor = state.cursor();
  for (;;) {
    let page: { cursor: string; hasMore: boolean; changes: Change[] };
    try {
      page = (await api.graphql<{ changes: typeof page }>(CHANGES, { after: cursor })).changes;
    } catch (error) {
      if (!(error instanceof ApiError && error.code === 'CURSOR_EXPIRED')) throw error;
      // Away longer than the feed keeps: list the whole library again (what is here is reused).
      report.result('restart', { reason: error.code }, 'the change feed no longer reaches back that far: listing the whole library again');
      cursor = null;
      continue;
    }
    const queue = [...page.changes];
    const worker = async () => {
      for (let change = queue.shift(); change; change = queue.shift()) {
        summary.changes++;
        try {
          await apply(api, state, root, change, options, summary, report);
        } catch (error) {
          summary.failed++;
          report.file({ path: change.asset?.name ?? change.assetId, outcome: 'failed', assetId: change.assetId, error: { code: error instanceof ApiError ? error.code : ((error as { code?: string }).code ?? 'FAILED'), message: error instanceof Error ? error.message : String(error) } });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, options.concurrency) }, worker));
    // A page with a failed file is not passed: the next pull tries it again (what did arrive is kept).
    if (summary.failed > 0) {
      state.saveCursor(cursor);
      break;
    }
    cursor = page.cursor;
    state.saveCursor(cursor);
    if (!page.hasMore) break;
  }
  await rm(path.join(root, PARTIAL_DIR), { recursive: true, force: true }).catch(() => {});
  return summary;
}

/** Where an asset belongs below the pull folder: one place per folder holding it (the top when none). */
function placesOf(change: Change, options: PullOptions): string[] {
  if (!change.asset) return [];
  const name = safeFileName(change.asset.name, null);
  const folders = change.folders.filter((f) => !options.folder || f.name === options.folder);
  if (folders.length === 0) return options.folder ? [] : [name];
  return [...new Set(folders.map((f) => `${safeFileName(f.name, null)}/${name}`))];
}

async function apply(api: ApiClient, state: PullState, root: string, change: Change, options: PullOptions, summary: PullSummary, report: Reporter): Promise<void> {
  const wanted = placesOf(change, options);
  const had = state.filesOf(change.assetId);
  // Places it holds already (same content), and those it left: moved when somewhere is new, else removed.
  const stay = had.filter((f) => change.asset && f.sha256 === change.asset.sha256 && wanted.some((w) => sameDir(w, f.relPath)));
  const left = had.filter((f) => !stay.includes(f));
  const missing = wanted.filter((w) => !stay.some((f) => sameDir(w, f.relPath)));
  for (const place of missing) {
    const asset = change.asset!;
    // The photo is there already under its name (a pull cut off before it recorded it, or a copy made by hand): kept as it is.
    if (!state.at(place) && (await identical(root, place, asset))) {
      record(state, place, asset, (await stat(full(root, place))).mtimeMs);
      summary.present++;
      report.file({ path: place, outcome: 'present', assetId: asset.id, size: asset.size });
      continue;
    }
    const from = left.find((f) => f.sha256 === asset.sha256);
    const target = await freePlace(state, root, place);
    if (from && (await unchanged(root, from))) {
      left.splice(left.indexOf(from), 1);
      await moveInto(root, from.relPath, target);
      state.forget(from.relPath);
      record(state, target, asset, (await stat(full(root, target))).mtimeMs);
      summary.moved++;
      report.file({ path: target, outcome: 'moved', assetId: asset.id, size: asset.size });
      continue;
    }
    const copy = await firstIntact(root, state.withContent(asset.sha256));
    if (copy) {
      await writeVerified(root, target, asset, () => createReadStream(full(root, copy.relPath)));
      summary.copied++;
      report.file({ path: target, outcome: 'copied', assetId: asset.id, size: asset.size });
    } else {
      const sent = await download(api, root, target, asset);
      summary.downloaded++;
      summary.bytes += sent;
      report.file({ path: target, outcome: 'downloaded', assetId: asset.id, size: asset.size, sentBytes: sent });
    }
    record(state, target, asset, (await stat(full(root, target))).mtimeMs);
  }
  for (const gone of left) {
    // A file changed here since it was pulled is someone's work: never deleted.
    if (options.delete && (await unchanged(root, gone))) {
      await unlink(full(root, gone.relPath)).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
      });
      summary.removed++;
      report.file({ path: gone.relPath, outcome: 'removed', assetId: change.assetId });
    } else {
      summary.kept++;
      report.file({ path: gone.relPath, outcome: 'kept', assetId: change.assetId });
    }
    state.forget(gone.relPath);
  }
}

const sameDir = (a: string, b: string) => path.posix.dirname(a) === path.posix.dirname(b);

/** The path below the pull folder, checked to stay inside it. */
function full(root: string, relPath: string): string {
  const resolved = path.resolve(root, ...relPath.split('/'));
  if (!resolved.startsWith(root + path.sep)) throw Object.assign(new Error(`refusing to write outside ${root}: ${relPath}`), { code: 'UNSAFE_PATH' });
  return resolved;
}

/** `place`, or "name (2).ext", … : not taken by another pulled file nor by a file that is not ours. */
async function freePlace(state: PullState, root: string, place: string): Promise<string> {
  const dir = path.posix.dirname(place);
  const name = path.posix.basename(place);
  const ext = /\.[^.]{1,8}$/.exec(name)?.[0] ?? '';
  const stem = name.slice(0, name.length - ext.length);
  for (let n = 1; ; n++) {
    const candidate = (dir === '.' ? '' : `${dir}/`) + (n === 1 ? name : `${stem} (${n})${ext}`);
    if (state.at(candidate)) continue;
    const exists = await lstat(full(root, candidate)).then(
      () => true,
      () => false,
    );
    if (!exists) return candidate;
  }
}

/** A plain file at `relPath` with the photo's size and SHA-256. */
async function identical(root: string, relPath: string, asset: NonNullable<Change['asset']>): Promise<boolean> {
  const info = await lstat(full(root, relPath)).catch(() => null);
  if (!info?.isFile() || info.size !== asset.size) return false;
  const hash = createHash('sha256');
  await pipeline(createReadStream(full(root, relPath)), hash);
  return hash.digest('hex') === asset.sha256;
}

/** The pulled file is still there as it was written (same size and time). */
async function unchanged(root: string, file: PulledFile): Promise<boolean> {
  const info = await stat(full(root, file.relPath)).catch(() => null);
  return info !== null && info.size === file.size && Math.abs(info.mtimeMs - file.mtimeMs) < 1;
}

async function firstIntact(root: string, files: PulledFile[]): Promise<PulledFile | null> {
  for (const file of files) if (await unchanged(root, file)) return file;
  return null;
}

function record(state: PullState, relPath: string, asset: NonNullable<Change['asset']>, mtimeMs: number): void {
  state.record({ assetId: asset.id, relPath, sha256: asset.sha256, size: asset.size, mtimeMs });
}

/** Makes the folder a file goes into: real directories only (a symbolic link there could lead outside). */
async function ensureDir(root: string, relPath: string): Promise<void> {
  const dir = path.posix.dirname(relPath);
  if (dir === '.') return;
  const target = full(root, `${dir}/x`);
  const parent = path.dirname(target);
  // Made by another download at the same moment is as good as made here.
  await mkdir(parent).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error;
  });
  if (!(await lstat(parent)).isDirectory()) throw Object.assign(new Error(`${dir} is not a plain folder`), { code: 'UNSAFE_PATH' });
}

async function moveInto(root: string, from: string, to: string): Promise<void> {
  await ensureDir(root, to);
  await rename(full(root, from), full(root, to));
}

/** Writes bytes to `target` through a partial file, verified by SHA-256 (and size) before it takes its place. */
async function writeVerified(root: string, target: string, asset: NonNullable<Change['asset']>, open: () => Readable): Promise<void> {
  const partial = await partialFile(root, asset.id);
  await rm(partial, { force: true });
  const hash = createHash('sha256');
  await pipeline(open(), hashing(hash), createWriteStream(partial, { mode: 0o644 }));
  await settle(root, partial, target, asset, hash);
}

async function partialFile(root: string, assetId: string): Promise<string> {
  await mkdir(path.join(root, PARTIAL_DIR), { recursive: true });
  return path.join(root, PARTIAL_DIR, `${assetId}.part`);
}

function hashing(hash: ReturnType<typeof createHash>): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
}

async function settle(root: string, partial: string, target: string, asset: NonNullable<Change['asset']>, hash: ReturnType<typeof createHash>): Promise<void> {
  const digest = hash.digest('hex');
  const size = (await stat(partial)).size;
  if (digest !== asset.sha256 || size !== asset.size) {
    await rm(partial, { force: true });
    throw Object.assign(new Error(`the bytes received do not match the photo's SHA-256 (got ${digest.slice(0, 12)}…, ${size} bytes)`), { code: 'DIGEST_MISMATCH' });
  }
  await ensureDir(root, target);
  await rename(partial, full(root, target));
  const time = new Date(asset.takenAt ?? asset.uploadedAt);
  await utimes(full(root, target), time, time).catch(() => {});
}

/** Downloads the original into `target`, going on from a partial file a cut-off pull left; returns the bytes transferred. */
async function download(api: ApiClient, root: string, target: string, asset: NonNullable<Change['asset']>): Promise<number> {
  const partial = await partialFile(root, asset.id);
  let hash = createHash('sha256');
  let offset = (await stat(partial).catch(() => null))?.size ?? 0;
  if (offset > asset.size) {
    await rm(partial, { force: true });
    offset = 0;
  }
  if (offset > 0) await pipeline(createReadStream(partial), hashing(hash), new Transform({ transform: (_c, _e, done) => done() }));
  if (offset === asset.size) {
    await settle(root, partial, target, asset, hash);
    return 0;
  }
  const response = await api.download(asset.downloadUrl, offset);
  const resumed = offset > 0 && response.status === 206;
  // The whole file came instead of the rest: the file and its hash start over.
  if (!resumed) hash = createHash('sha256');
  let sent = 0;
  const counting = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      sent += chunk.length;
      hash.update(chunk);
      done(null, chunk);
    },
  });
  await pipeline(response.body, counting, createWriteStream(partial, { flags: resumed ? 'a' : 'w', mode: 0o644 }));
  await settle(root, partial, target, asset, hash);
  return sent;
}
