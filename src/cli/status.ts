import type { ApiClient } from '../client/api-client.js';
import { subscriptionData } from '../client/live-client.js';
import { withLive } from './live.js';
import type { SyncCounts } from '../protocol/sync-counts.js';
import type { Reporter } from './reporter.js';
import { StopRun } from './push.js';

interface Counts extends SyncCounts {
  active: boolean;
}

interface FolderSync {
  folderId: string;
  folder: { name: string };
  counts: Counts;
}

const COUNTS = 'filesPlanned filesDone filesUploaded filesInstant filesInProgress filesPending filesFailed bytesPlanned bytesDone active';
const FOLDER_SYNC = `folderId folder { name } counts { ${COUNTS} }`;

/** `pixshare status` without --follow: each folder's files stored of files in it. */
export async function showStatus(api: ApiClient, folder: string | undefined, report: Reporter): Promise<void> {
  const { folders } = await api.graphql<{ folders: { id: string; name: string; status: { done: number; total: number; bytesDone: number; bytesTotal: number } }[] }>(
    '{ folders { id name status { done total bytesDone bytesTotal } } }',
  );
  const shown = folder ? folders.filter((f) => f.name === folder) : folders;
  if (folder && shown.length === 0) throw new StopRun('NOT_FOUND', `no folder named "${folder}"`, 1);
  for (const f of shown) report.result('folder', { id: f.id, name: f.name, ...f.status }, `${f.name}: ${f.status.done} of ${f.status.total} uploaded`);
}

/**
 * `pixshare status --follow`: the folders' syncs live, from whichever device uploads — one
 * subscription over graphql-ws (`folderSyncStatus` for one folder, `librarySyncStatus` for all
 * with activity); a line per folder as its counters change. A connection that drops is opened
 * again (the server may restart); a token the server refuses ends it. Runs until `signal` aborts.
 */
export async function followStatus(api: ApiClient, folder: string | undefined, report: Reporter, signal: AbortSignal): Promise<void> {
  let folderId: string | undefined;
  if (folder) {
    const { folders } = await api.graphql<{ folders: { id: string; name: string }[] }>('{ folders { id name } }');
    folderId = folders.find((f) => f.name === folder)?.id;
    if (!folderId) throw new StopRun('NOT_FOUND', `no folder named "${folder}"`, 1);
  }
  const shown = new Map<string, string>();
  const show = (sync: FolderSync) => {
    const c = sync.counts;
    const sentence =
      `${sync.folder.name}: ${c.filesDone} of ${c.filesPlanned} uploaded (${c.filesUploaded} sent, ${c.filesInstant} instant)` +
      `${c.filesInProgress ? `, ${c.filesInProgress} in progress` : ''}${c.filesPending ? `, ${c.filesPending} waiting` : ''}${c.filesFailed ? `, ${c.filesFailed} failed` : ''}` +
      ` — ${(c.bytesDone / 1e6).toFixed(1)} of ${(c.bytesPlanned / 1e6).toFixed(1)} MB${c.active ? '' : ', idle'}`;
    // Messages that change nothing shown (another file's state within the same counts) are not repeated.
    if (shown.get(sync.folderId) === sentence) return;
    shown.set(sync.folderId, sentence);
    report.result('sync', { folderId: sync.folderId, name: sync.folder.name, ...c }, sentence);
  };
  const query = folderId
    ? { query: `subscription($id: ID!) { folderSyncStatus(folderId: $id) { ${FOLDER_SYNC} } }`, variables: { id: folderId } }
    : { query: `subscription { librarySyncStatus { folders { ${FOLDER_SYNC} } } }` };
  let first = true;
  await withLive(api, signal, async (live) => {
    for await (const data of subscriptionData<{ folderSyncStatus?: FolderSync; librarySyncStatus?: { folders: FolderSync[] } }>(live, query, signal)) {
      const syncs = data.folderSyncStatus ? [data.folderSyncStatus] : (data.librarySyncStatus?.folders ?? []);
      if (first) {
        first = false;
        report.result('following', { folders: syncs.length }, `following ${folder ? `"${folder}"` : `${syncs.length} folder${syncs.length === 1 ? '' : 's'} with recent activity, and any that starts`} (Ctrl-C to stop)`);
      }
      for (const sync of syncs) show(sync);
    }
  });
}
