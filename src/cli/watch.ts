import { copyFile, mkdir, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import chokidar from 'chokidar';
import type { ApiClient } from '../client/api-client.js';
import { push, StopRun, type FileOutcome, type PushOptions } from './push.js';
import type { Reporter } from './reporter.js';
import type { SyncList } from './sync-list.js';
import { ignoreMatcher, type FoundFile } from './walk.js';

export interface WatchOptions extends Omit<PushOptions, 'onConfirmed' | 'since'> {
  /** A full rescan this often (ms), besides reacting to changes. */
  everyMs: number;
  /** Friends (nickname or email), contact groups (name) or addresses the new photos are shared with (G4). */
  shareTo: string[];
  /** Where a file goes once the server confirmed it stores its exact bytes (its path below the watched folder kept). */
  moveSentTo?: string;
  /** Delete a file once the server confirmed it stores its exact bytes. */
  deleteSent?: boolean;
  /** A file counts as written when its size has not changed for this long (ms). */
  settleMs?: number;
}

interface Recipients {
  friendIds: string[];
  groupIds: string[];
  emails: string[];
}

/**
 * `pixshare watch` (U8, G4): keeps a folder backed up. Sends what is there, then reacts to new and
 * changed files once they stop growing, and rescans on a schedule (a change a file system does not
 * report). A file is moved or deleted only after the server confirmed it stores those exact bytes,
 * so nothing is lost and nothing sent twice; a file that failed stays where it is. When the server
 * is away it waits and tries again (5 s, doubling to 5 minutes). Runs until `signal` aborts.
 */
export async function watch(api: ApiClient, syncList: SyncList, root: string, options: WatchOptions, report: Reporter, signal: AbortSignal): Promise<void> {
  const folder = options.folder ?? path.basename(root);
  const recipients = await resolveRecipients(api, options.shareTo);
  const parked = options.moveSentTo ? path.resolve(options.moveSentTo) : null;
  if (parked === root) throw new StopRun('BAD_MOVE_TARGET', '--move-sent-to must be another folder than the one watched (a folder inside it is fine)', 2);
  const ignoredByPattern = ignoreMatcher(options.ignore);

  const afterConfirmed = async (file: FoundFile, shared: string[], asset: { id: string }, outcome: FileOutcome) => {
    if (outcome !== 'unchanged') shared.push(asset.id);
    if (!parked && !options.deleteSent) return;
    try {
      // Written to since it was listed (a camera or an editor still at it): the server may hold other
      // bytes than the file has now. It stays, and the next scan sends it as it is then.
      const now = await stat(file.path);
      if (now.size !== file.size || now.mtimeMs !== file.mtimeMs) {
        report.file({ path: file.path, outcome: 'failed', error: { code: 'FILE_CHANGED', message: `changed after it was sent; kept where it is, the next scan sends it again` } });
        return;
      }
      if (parked) await moveInto(file.path, path.join(parked, path.relative(root, file.path)));
      else await unlink(file.path);
    } catch (error) {
      report.file({ path: file.path, outcome: 'failed', error: { code: 'KEEP_FAILED', message: `stored on the server, but could not be ${parked ? 'moved' : 'deleted'}: ${(error as Error).message}` } });
    }
  };

  const runOnce = async (paths: string[]) => {
    const shared: string[] = [];
    const summary = await push(
      api,
      syncList,
      paths,
      {
        ...options,
        folder,
        // A file is moved or deleted on the server's word of now, never on the sync list's memory.
        recheck: parked !== null || options.deleteSent === true,
        excludeDirs: parked ? [parked] : [],
        onConfirmed: (file, asset, outcome) => afterConfirmed(file, shared, asset, outcome),
      },
      report,
    );
    if (recipients && shared.length > 0) {
      const { createShare } = await api.graphql<{ createShare: { share: { id: string; title: string; recipients: { email: string }[] } } }>(
        'mutation($input: CreateShareInput!) { createShare(input: $input) { share { id title recipients { email } } } }',
        { input: { assetIds: shared, ...recipients } },
      );
      report.result('share', { shareId: createShare.share.id, assets: shared.length, recipients: createShare.share.recipients.map((r) => r.email) }, `shared ${shared.length} new ${shared.length === 1 ? 'photo' : 'photos'} with ${createShare.share.recipients.length} ${createShare.share.recipients.length === 1 ? 'person' : 'people'}`);
    }
    if (summary.uploaded + summary.instant + summary.exists + summary.failed + summary.unreadable > 0) {
      report.result('batch', { ...summary }, `${summary.uploaded} sent, ${summary.instant} instant, ${summary.exists} already there${summary.failed + summary.unreadable ? `, ${summary.failed + summary.unreadable} failed` : ''}`);
    }
  };

  // One run at a time; what changes meanwhile waits for the next. The server away: wait, then again.
  const queued = new Set<string>();
  let rescan = true;
  let running: Promise<void> | null = null;
  let backoffMs = 5000;
  let retryTimer: NodeJS.Timeout | undefined;
  let fatal: StopRun | null = null;
  const kick = () => {
    if (running || signal.aborted || fatal) return;
    const paths = rescan ? [root] : [...queued];
    if (paths.length === 0) return;
    rescan = false;
    queued.clear();
    running = runOnce(paths)
      .then(() => {
        backoffMs = 5000;
      })
      .catch((error: unknown) => {
        if (error instanceof StopRun && error.code === 'UNREACHABLE') {
          report.result('waiting', { retryInSeconds: backoffMs / 1000, code: error.code, message: error.message }, `${error.message}; trying again in ${backoffMs / 1000} s`);
          rescan = true; // the files of this run are still to do
          retryTimer = setTimeout(kick, backoffMs);
          backoffMs = Math.min(backoffMs * 2, 300_000);
        } else fatal = error instanceof StopRun ? error : new StopRun('FAILED', (error as Error).message, 1);
      })
      .finally(() => {
        running = null;
        if (fatal) stop();
        else if (!retryTimer || queued.size > 0) setImmediate(kick);
      });
  };

  const watcher = chokidar.watch(root, {
    ignoreInitial: true,
    awaitWriteFinish: { stabilityThreshold: options.settleMs ?? 2000, pollInterval: 100 },
    ignored: (file: string) =>
      file !== root &&
      ((!options.includeHidden && path.basename(file).startsWith('.')) || ignoredByPattern(path.relative(root, file)) || (parked !== null && (file === parked || file.startsWith(parked + path.sep)))),
  });
  const changed = (file: string) => {
    queued.add(file);
    kick();
  };
  watcher.on('add', changed).on('change', changed);
  const schedule = setInterval(() => {
    rescan = true;
    kick();
  }, options.everyMs);

  let stop = () => {};
  await new Promise<void>((resolve) => {
    stop = resolve;
    signal.addEventListener('abort', () => resolve(), { once: true });
    watcher.once('ready', () => {
      report.result('watching', { folder: root, serverFolder: folder, everySeconds: options.everyMs / 1000 }, `watching ${root} (rescan every ${Math.round(options.everyMs / 1000)} s); Ctrl-C stops`);
      kick();
    });
  });
  clearInterval(schedule);
  clearTimeout(retryTimer);
  await watcher.close();
  await running;
  if (fatal) throw fatal;
}

/** FRIEND (nickname or email), GROUP (name) or an address, each to what createShare takes. */
async function resolveRecipients(api: ApiClient, names: string[]): Promise<Recipients | null> {
  if (names.length === 0) return null;
  const { friends, contactGroups } = await api.graphql<{ friends: { id: string; nickname: string; email: string }[]; contactGroups: { id: string; name: string }[] }>('{ friends { id nickname email } contactGroups { id name } }');
  const recipients: Recipients = { friendIds: [], groupIds: [], emails: [] };
  for (const name of names) {
    const group = contactGroups.find((g) => g.name === name);
    const friend = friends.find((f) => f.nickname === name || f.email.toLowerCase() === name.toLowerCase());
    if (group) recipients.groupIds.push(group.id);
    else if (friend) recipients.friendIds.push(friend.id);
    else if (name.includes('@')) recipients.emails.push(name);
    else throw new StopRun('NOT_FOUND', `--share-to ${name}: no contact group or friend of that name (an email address works too)`, 2);
  }
  return recipients;
}

/** Moves a file, keeping what is already at the target (a name gets " (2)" and so on), across file systems too. */
async function moveInto(from: string, to: string): Promise<void> {
  await mkdir(path.dirname(to), { recursive: true });
  const ext = path.extname(to);
  let target = to;
  for (let n = 2; await stat(target).then(() => true, () => false); n++) target = `${to.slice(0, to.length - ext.length)} (${n})${ext}`;
  try {
    await rename(from, target);
  } catch (error) {
    if ((error as { code?: string }).code !== 'EXDEV') throw error;
    await copyFile(from, target);
    await unlink(from);
  }
}
