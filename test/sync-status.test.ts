import type { SyncCounts } from '../src/protocol/sync-counts.js';
import { randomBytes } from 'node:crypto';
import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../src/client/api-client.js';
import { uploadFile } from '../src/client/upload-file.js';
import { LiveStream } from '../src/services/sync/live-stream.js';
import { startTestApp, type TestApp } from './support/app.js';
import { newClient, scratchDir, sha256 } from './support/files.js';
import { Collected, sse, wsClient, type GraphQLMessage } from './support/live.js';

const COUNTS = 'counts { filesPlanned filesDone filesUploaded filesInstant filesInProgress filesPending filesFailed bytesPlanned bytesDone active }';
const FILE = 'id name size state bytesDone error { code message }';
const STATUS = `folderId run ${COUNTS} changes { ${FILE} } changesComplete`;
const FOLDER_SUB = `subscription($id: ID!) { folderSyncStatus(folderId: $id) { ${STATUS} } }`;

interface Counts extends SyncCounts {
  active: boolean;
}
interface SyncFile {
  id: string;
  name: string;
  size: number;
  state: string;
  bytesDone: number;
  error: { code: string; message: string } | null;
}
interface Status {
  folderId: string;
  run: string | null;
  counts: Counts;
  changes: SyncFile[];
  changesComplete: boolean;
}
type FolderMessage = GraphQLMessage<{ folderSyncStatus: Status }>;

let app: TestApp;
let files: Awaited<ReturnType<typeof scratchDir>>;
const clients: Client[] = [];
const aborts: AbortController[] = [];

beforeAll(async () => {
  // A high message rate, so that the per-file states in between are seen too.
  app = await startTestApp({ PIXSHARE_LIVE_MESSAGES_PER_SECOND: '200', PIXSHARE_MIN_CHUNK_SIZE: '16384' });
  files = await scratchDir();
});
afterAll(async () => {
  for (const abort of aborts) abort.abort();
  for (const client of clients) await client.dispose();
  expect(app.loggedErrors).toEqual([]);
  await app.close();
  await files.remove();
});

function ws(url: string, token?: string): Client {
  const client = wsClient(url, token);
  clients.push(client);
  return client;
}

function overSse<T>(url: string, token: string | undefined, query: string, variables: Record<string, unknown>): Collected<T> {
  const abort = new AbortController();
  aborts.push(abort);
  return new Collected<T>(sse<T>(url, token, query, variables, abort.signal));
}

async function folderNamed(client: ApiClient, name: string): Promise<string> {
  return (await client.graphql<{ createFolder: { id: string } }>('mutation($name: String) { createFolder(name: $name) { id } }', { name })).createFolder.id;
}

/** Folds a stream's messages into per-file states (every state seen, in order) and the last counts. */
function fold(messages: FolderMessage[]) {
  const files = new Map<string, SyncFile>();
  const seen = new Map<string, string[]>();
  const counts: Counts[] = [];
  for (const message of messages) {
    const status = message.data?.folderSyncStatus;
    if (!status) continue;
    counts.push(status.counts);
    for (const file of status.changes) {
      files.set(file.id, file);
      const states = seen.get(file.id) ?? [];
      if (states.at(-1) !== file.state) states.push(file.state);
      seen.set(file.id, states);
    }
  }
  return { files, seen, counts };
}

const ORDER = ['PENDING', 'UPLOADING', 'VERIFYING', 'DONE', 'INSTANT', 'FAILED'];
const ascending = (states: string[]) => states.every((s, i) => i === 0 || ORDER.indexOf(s) > ORDER.indexOf(states[i - 1]!));

describe('a folder sync, live', () => {
  it('streams a 10-file sync (two instant, one failing its digest) over graphql-ws and SSE: states end at 9 done, 1 failed with its reason; counts never go backwards', async () => {
    const owner = await newClient(app);
    const other = await newClient(app);
    const made = await Promise.all(Array.from({ length: 10 }, (_, i) => files.random(`sync-${i}.bin`, 256 * 1024 + i)));
    // Two of them are on the server already (another user's): instant for the owner.
    for (const { file } of made.slice(0, 2)) await uploadFile(other, file);
    const folderId = await folderNamed(owner, 'Trip');

    const overWs = new Collected<{ folderSyncStatus: Status }>(ws(app.url, owner.token).iterate({ query: FOLDER_SUB, variables: { id: folderId } }));
    const overSSE = overSse<{ folderSyncStatus: Status }>(app.url, owner.token, FOLDER_SUB, { id: folderId });
    for (const stream of [overWs, overSSE]) {
      const first = await stream.until(() => true);
      expect(first.data?.folderSyncStatus).toMatchObject({ folderId, run: null, counts: { filesPlanned: 0, active: false }, changes: [] });
    }

    // The plan: one check of all ten; the last is declared with the SHA-256 of other bytes.
    const wrong = sha256(randomBytes(made[9]!.bytes.length));
    const declared = made.map(({ bytes }, i) => ({ sha256: i === 9 ? wrong : sha256(bytes), size: bytes.length, name: `IMG_${i}.bin`, folder: 'Trip' }));
    const check = await owner.graphql<{ checkUploads: { status: string }[] }>('mutation($files: [CheckFileInput!]!) { checkUploads(files: $files) { status } }', { files: declared });
    expect(check.checkUploads.map((a) => a.status)).toEqual([...Array(2).fill('PROOF_REQUIRED'), ...Array(8).fill('UPLOAD')]);
    await overWs.until((m) => m.data?.folderSyncStatus.counts.filesPlanned === 10);

    for (let i = 0; i < 9; i++) {
      const result = await uploadFile(owner, made[i]!.file, { name: `IMG_${i}.bin`, folder: 'Trip', parallel: 1, initialChunkBytes: 32 * 1024, targetChunkSeconds: 0.001 });
      expect(result.outcome).toBe(i < 2 ? 'instant' : 'uploaded');
    }
    await expect(uploadFile(owner, made[9]!.file, { name: 'IMG_9.bin', folder: 'Trip', sha256: wrong, initialChunkBytes: 32 * 1024 })).rejects.toMatchObject({ code: 'UPLOAD_DIGEST_MISMATCH' });

    const finished = (m: FolderMessage) => m.data?.folderSyncStatus.counts.filesDone === 9 && m.data.folderSyncStatus.counts.filesFailed === 1 && !m.data.folderSyncStatus.counts.active;
    const query = await owner.graphql<{ folderSyncStatus: Status }>(`query($id: ID!) { folderSyncStatus(folderId: $id) { ${STATUS} } }`, { id: folderId });
    expect(query.folderSyncStatus.counts).toMatchObject({ filesPlanned: 10, filesDone: 9, filesUploaded: 7, filesInstant: 2, filesFailed: 1, filesInProgress: 0, filesPending: 0, active: false });
    const byName = new Map(query.folderSyncStatus.changes.map((f) => [f.name, f]));
    expect(byName.get('IMG_9.bin')).toMatchObject({ state: 'FAILED', error: { code: 'UPLOAD_DIGEST_MISMATCH', message: expect.stringMatching(/does not match the declared SHA-256/) } });

    for (const stream of [overWs, overSSE]) {
      await stream.until(finished);
      const { files: folded, seen, counts } = fold(stream.messages as FolderMessage[]);
      // The folded deltas are exactly what a query reads.
      expect([...folded.values()].sort((a, b) => Number(a.id) - Number(b.id))).toEqual(query.folderSyncStatus.changes);
      expect(counts.at(-1)).toEqual(query.folderSyncStatus.counts);
      for (let i = 1; i < counts.length; i++) {
        for (const key of ['filesPlanned', 'filesDone', 'filesFailed'] as const) expect(counts[i]![key]).toBeGreaterThanOrEqual(counts[i - 1]![key]);
      }
      for (const [id, states] of seen) {
        const name = folded.get(id)!.name;
        expect(ascending(states), `${name}: ${states.join(' → ')}`).toBe(true);
        expect(states.at(-1)).toBe(name === 'IMG_9.bin' ? 'FAILED' : ['IMG_0.bin', 'IMG_1.bin'].includes(name) ? 'INSTANT' : 'DONE');
      }
      // Chunks were seen arriving: some file was uploading with part of its bytes.
      const partial = (stream.messages as FolderMessage[]).flatMap((m) => m.data?.folderSyncStatus.changes ?? []).filter((f) => f.state === 'UPLOADING' && f.bytesDone > 0 && f.bytesDone < f.size);
      expect(partial.length).toBeGreaterThan(0);
    }

    // The file is sent again, with its real hash this time: the same run goes on (the failed declaration stays failed).
    const retry = await uploadFile(owner, made[9]!.file, { name: 'IMG_9.bin', folder: 'Trip' });
    expect(retry.outcome).toBe('uploaded');
    const after = await overWs.until((m) => m.data?.folderSyncStatus.counts.filesDone === 10);
    expect(after.data?.folderSyncStatus).toMatchObject({ run: query.folderSyncStatus.run, counts: { filesPlanned: 11, filesFailed: 1, active: false } });
  });

  it('answers uploadProgress as a query and live, from the first byte to the asset', async () => {
    const owner = await newClient(app);
    const { file, bytes } = await files.random('progress.bin', 200 * 1024);
    const [answer] = (
      await owner.graphql<{ checkUploads: { upload: { id: string } }[] }>('mutation($files: [CheckFileInput!]!) { checkUploads(files: $files) { upload { id } } }', {
        files: [{ sha256: sha256(bytes), size: bytes.length, name: 'progress.bin' }],
      })
    ).checkUploads;
    const uploadId = answer!.upload.id;
    const PROGRESS = 'uploadId name size state bytesReceived progress assetId error { code }';
    const query = await owner.graphql<{ uploadProgress: Record<string, unknown> }>(`query($id: ID!) { uploadProgress(uploadId: $id) { ${PROGRESS} } }`, { id: uploadId });
    expect(query.uploadProgress).toMatchObject({ uploadId, name: 'progress.bin', size: bytes.length, state: 'PENDING', bytesReceived: 0, assetId: null, error: null });

    type Progress = GraphQLMessage<{ uploadProgress: { state: string; bytesReceived: number; progress: number; assetId: string | null } }>;
    const live = new Collected<Progress['data']>(ws(app.url, owner.token).iterate({ query: `subscription($id: ID!) { uploadProgress(uploadId: $id) { ${PROGRESS} } }`, variables: { id: uploadId } }));
    await live.until(() => true);
    const result = await uploadFile(owner, file, { parallel: 1, initialChunkBytes: 64 * 1024, targetChunkSeconds: 0.001 });
    const done = await live.until((m) => m.data?.uploadProgress.state === 'DONE');
    expect(done.data?.uploadProgress).toMatchObject({ bytesReceived: bytes.length, progress: 1, assetId: result.asset.id });
    const received = (live.messages as Progress[]).map((m) => m.data!.uploadProgress.bytesReceived);
    expect(received).toEqual([...received].sort((a, b) => a - b));
    expect(received.some((n) => n > 0 && n < bytes.length)).toBe(true);
  });

  it('shows every folder with activity on the library dashboard; a folder that starts syncing joins the open subscription', async () => {
    const owner = await newClient(app);
    const made = await Promise.all(Array.from({ length: 3 }, (_, i) => files.random(`lib-${i}.bin`, 20_000 + i)));
    await uploadFile(owner, made[0]!.file, { folder: 'Alps' });
    const LIBRARY = `counts { filesPlanned filesDone } folderCount folders { folderId folder { name } counts { filesPlanned filesDone active } changes { name state } }`;
    type Library = { librarySyncStatus: { counts: { filesPlanned: number; filesDone: number }; folderCount: number; folders: { folder: { name: string }; counts: { filesDone: number; filesPlanned: number } }[] } };
    const live = new Collected<Library>(ws(app.url, owner.token).iterate({ query: `subscription { librarySyncStatus { ${LIBRARY} } }` }));
    const first = await live.until(() => true);
    expect(first.data?.librarySyncStatus).toMatchObject({ folderCount: 1, counts: { filesPlanned: 1, filesDone: 1 }, folders: [{ folder: { name: 'Alps' }, counts: { filesDone: 1 } }] });

    await uploadFile(owner, made[1]!.file, { folder: 'Beach' });
    await uploadFile(owner, made[2]!.file, { folder: 'Beach' });
    const joined = await live.until((m) => m.data?.librarySyncStatus.counts.filesDone === 3);
    expect(joined.data?.librarySyncStatus.folderCount).toBe(2);
    // Later messages carry the folders that changed only.
    expect(joined.data?.librarySyncStatus.folders.map((f) => f.folder.name)).toEqual(['Beach']);

    const query = await owner.graphql<Library>(`{ librarySyncStatus { ${LIBRARY} } }`);
    expect(query.librarySyncStatus.folders.map((f) => [f.folder.name, f.counts.filesDone])).toEqual([
      ['Beach', 2],
      ['Alps', 1],
    ]);
    expect(query.librarySyncStatus.counts).toEqual(joined.data?.librarySyncStatus.counts);
    // Paged: one folder at a time.
    const PAGE = 'query($after: String) { librarySyncStatus(first: 1, after: $after) { folderCount folders { folder { name } } pageInfo { hasNextPage endCursor } } }';
    type Page = { librarySyncStatus: { folderCount: number; folders: { folder: { name: string } }[]; pageInfo: { hasNextPage: boolean; endCursor: string } } };
    const one = await owner.graphql<Page>(PAGE);
    const two = await owner.graphql<Page>(PAGE, { after: one.librarySyncStatus.pageInfo.endCursor });
    expect([one, two].map((p) => [p.librarySyncStatus.folders.map((f) => f.folder.name), p.librarySyncStatus.pageInfo.hasNextPage])).toEqual([
      [['Beach'], true],
      [['Alps'], false],
    ]);
  });
});

describe('many subscribers of one folder', () => {
  it('share one GraphQL execution per message where they are at the same place, and all get every change', async () => {
    const owner = await newClient(app);
    const folderId = await folderNamed(owner, 'Crowd');
    const query = `subscription($id: ID!) { folderSyncStatus(folderId: $id) { folder { name } counts { filesDone filesPlanned } changes { id state } } }`;
    type Crowd = { folderSyncStatus: { folder: { name: string }; counts: { filesDone: number; filesPlanned: number }; changes: { id: string; state: string }[] } };
    const streams = Array.from({ length: 20 }, () => new Collected<Crowd>(ws(app.url, owner.token).iterate({ query, variables: { id: folderId } })));
    await Promise.all(streams.map((stream) => stream.until(() => true)));
    // The `folder` field resolves through FolderService.getFolder: counting its calls counts executions.
    const getFolder = app.services.folders.getFolder.bind(app.services.folders);
    let executions = 0;
    app.services.folders.getFolder = (principal, id) => {
      executions++;
      return getFolder(principal, id);
    };
    try {
      for (let i = 0; i < 3; i++) await uploadFile(owner, (await files.random(`crowd-${i}.bin`, 30_000 + i)).file, { folder: 'Crowd' });
      await Promise.all(streams.map((stream) => stream.until((m) => m.data?.folderSyncStatus.counts.filesDone === 3)));
    } finally {
      app.services.folders.getFolder = getFolder;
    }
    const messages = streams.reduce((n, stream) => n + stream.messages.length - 1, 0);
    expect(messages).toBeGreaterThanOrEqual(20);
    expect(executions).toBeLessThan(messages / 4);
    for (const stream of streams) {
      const states = new Map<string, string>();
      for (const m of stream.messages) for (const change of m.data!.folderSyncStatus.changes) states.set(change.id, change.state);
      expect([...states.values()]).toEqual(['DONE', 'DONE', 'DONE']);
      expect(stream.messages.at(-1)!.data!.folderSyncStatus.folder.name).toBe('Crowd');
    }
  });
});

describe('cancelling', () => {
  it('takes a file out of the plan (CANCELLED, not counted) with its session; checking it again plans it anew', async () => {
    const owner = await newClient(app);
    const stranger = await newClient(app);
    const folderId = await folderNamed(owner, 'Cancel');
    const made = await Promise.all([files.random('keep.bin', 40_000), files.random('drop.bin', 40_001)]);
    const check = (bytes: Buffer, name: string) =>
      owner.graphql<{ checkUploads: { status: string; upload: { id: string } | null }[] }>('mutation($files: [CheckFileInput!]!) { checkUploads(files: $files) { status upload { id } } }', {
        files: [{ sha256: sha256(bytes), size: bytes.length, name, folder: 'Cancel' }],
      });
    await check(made[0]!.bytes, 'keep.bin');
    const dropId = (await check(made[1]!.bytes, 'drop.bin')).checkUploads[0]!.upload!.id;
    const live = new Collected<{ folderSyncStatus: Status }>(ws(app.url, owner.token).iterate({ query: FOLDER_SUB, variables: { id: folderId } }));
    expect((await live.until(() => true)).data?.folderSyncStatus.counts.filesPlanned).toBe(2);

    const CANCEL = 'mutation($id: ID!) { cancelUpload(uploadId: $id) }';
    await expect(stranger.graphql(CANCEL, { id: dropId })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(await owner.graphql(CANCEL, { id: dropId })).toEqual({ cancelUpload: true });
    const cancelled = await live.until((m) => m.data?.folderSyncStatus.counts.filesPlanned === 1);
    expect(cancelled.data?.folderSyncStatus.changes).toMatchObject([{ name: 'drop.bin', state: 'CANCELLED' }]);
    await expect(owner.graphql('query($id: ID!) { upload(id: $id) { id } }', { id: dropId })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(owner.graphql(CANCEL, { id: dropId })).rejects.toMatchObject({ code: 'NOT_FOUND' });

    // A finished upload cannot be cancelled.
    const kept = await uploadFile(owner, made[0]!.file, { name: 'keep.bin', folder: 'Cancel' });
    const keptUpload = await owner.graphql<{ checkUploads: { status: string }[] }>('mutation($files: [CheckFileInput!]!) { checkUploads(files: $files) { status } }', {
      files: [{ sha256: sha256(made[0]!.bytes), size: made[0]!.bytes.length, name: 'keep.bin' }],
    });
    expect(keptUpload.checkUploads[0]!.status).toBe('EXISTS');
    expect(kept.outcome).toBe('uploaded');

    // Checking the cancelled file again plans it anew.
    await check(made[1]!.bytes, 'drop.bin');
    const again = await live.until((m) => m.data?.folderSyncStatus.counts.filesPlanned === 2 && m.data.folderSyncStatus.counts.filesDone === 1);
    expect(again.data?.folderSyncStatus.counts).toMatchObject({ filesPending: 1, active: true });
  });

  it('refuses to cancel a finished upload (UPLOAD_NOT_OPEN)', async () => {
    const owner = await newClient(app);
    const { bytes, file } = await files.random('finished.bin', 30_000);
    const [answer] = (
      await owner.graphql<{ checkUploads: { upload: { id: string } }[] }>('mutation($files: [CheckFileInput!]!) { checkUploads(files: $files) { upload { id } } }', {
        files: [{ sha256: sha256(bytes), size: bytes.length, name: 'finished.bin' }],
      })
    ).checkUploads;
    await uploadFile(owner, file);
    await expect(owner.graphql('mutation($id: ID!) { cancelUpload(uploadId: $id) }', { id: answer!.upload.id })).rejects.toMatchObject({ code: 'UPLOAD_NOT_OPEN' });
  });
});

describe('who may watch a sync', () => {
  it("refuses another user's folder and upload (NOT_FOUND), and anyone without a token (UNAUTHENTICATED)", async () => {
    const owner = await newClient(app);
    const stranger = await newClient(app);
    const folderId = await folderNamed(owner, 'Private');
    const { bytes } = await files.random('private.bin', 1000);
    const uploadId = (
      await owner.graphql<{ checkUploads: { upload: { id: string } }[] }>('mutation($files: [CheckFileInput!]!) { checkUploads(files: $files) { upload { id } } }', {
        files: [{ sha256: sha256(bytes), size: bytes.length, name: 'private.bin', folder: 'Private' }],
      })
    ).checkUploads[0]!.upload.id;

    const operations = [
      [`query($id: ID!) { folderSyncStatus(folderId: $id) { run } }`, { id: folderId }],
      [`subscription($id: ID!) { folderSyncStatus(folderId: $id) { run } }`, { id: folderId }],
      [`query($id: ID!) { uploadProgress(uploadId: $id) { state } }`, { id: uploadId }],
      [`subscription($id: ID!) { uploadProgress(uploadId: $id) { state } }`, { id: uploadId }],
    ] as const;
    for (const [query, variables] of operations) {
      for (const [token, code] of [
        [stranger.token, 'NOT_FOUND'],
        [undefined, 'UNAUTHENTICATED'],
      ] as const) {
        const overWs = new Collected<unknown>(ws(app.url, token).iterate({ query, variables }));
        const overSSE = overSse<unknown>(app.url, token, query, variables);
        for (const stream of [overWs, overSSE]) {
          const message = await stream.until(() => true);
          expect(message.data ?? null, query).toBeNull();
          expect(message.errors?.[0]?.extensions?.code, `${query} with ${token ? 'a stranger' : 'no token'}`).toBe(code);
        }
      }
    }
    const library = await app.gql(`{ librarySyncStatus { folderCount } }`);
    expect(library.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    const strangers = await stranger.graphql<{ librarySyncStatus: { folderCount: number } }>(`{ librarySyncStatus { folderCount } }`);
    expect(strangers.librarySyncStatus.folderCount).toBe(0);
  });

  it('ends open subscriptions (graphql-ws and SSE) when their device is revoked or signs out', async () => {
    const owner = await newClient(app);
    const laptop = await app.signUp(owner.email).catch(() => null);
    expect(laptop).toBeNull(); // (the address is taken: a second device logs in instead)
    const login = await app.gql<{ logIn: { token: string; device: { id: string } } }>(
      'mutation($e: String!, $p: String!) { logIn(email: $e, password: $p, device: { name: "laptop", platform: "linux" }) { token device { id } } }',
      { e: owner.email, p: 'correct horse battery staple' },
    );
    const second = login.data!.logIn;
    const folderId = await folderNamed(owner, 'Watched');
    const query = `subscription($id: ID!) { folderSyncStatus(folderId: $id) { run } }`;
    const overWs = new Collected<unknown>(ws(app.url, second.token).iterate({ query, variables: { id: folderId } }));
    const overSSE = overSse<unknown>(app.url, second.token, query, { id: folderId });
    const library = new Collected<unknown>(ws(app.url, second.token).iterate({ query: 'subscription { librarySyncStatus { folderCount } }' }));
    for (const stream of [overWs, overSSE, library]) await stream.until(() => true);

    await owner.graphql('mutation($id: ID!) { revokeDevice(id: $id) { id } }', { id: second.device.id });
    for (const stream of [overWs, overSSE, library]) {
      const last = await stream.until((m) => (m.errors?.length ?? 0) > 0);
      expect(last.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
      await stream.done;
      expect(stream.ended).toBe(true);
    }

    // Signing out ends them too.
    const owners = new Collected<unknown>(ws(app.url, owner.token).iterate({ query, variables: { id: folderId } }));
    await owners.until(() => true);
    await owner.graphql('mutation { logOut }');
    expect((await owners.until((m) => (m.errors?.length ?? 0) > 0)).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    await owners.done;
  });
});

describe('two server instances on one database', () => {
  it('a dashboard on one sees the uploads handled by the other; after reconnecting its status equals the one read by a query', async () => {
    const second = await startTestApp({ DATABASE_URL: (app.config.database as { url: string }).url, PIXSHARE_LIVE_MESSAGES_PER_SECOND: '50' });
    try {
      const owner = await newClient(app);
      const folderId = await folderNamed(owner, 'Shared disk');
      const watching = new Collected<{ folderSyncStatus: Status }>(ws(second.url, owner.token).iterate({ query: FOLDER_SUB, variables: { id: folderId } }));
      await watching.until(() => true);
      const made = await Promise.all(Array.from({ length: 5 }, (_, i) => files.random(`two-${i}.bin`, 100_000 + i)));
      for (const { file } of made) await uploadFile(owner, file, { folder: 'Shared disk', initialChunkBytes: 32 * 1024 });
      const last = await watching.until((m) => m.data?.folderSyncStatus.counts.filesDone === 5);
      const { files: folded } = fold(watching.messages as FolderMessage[]);
      expect([...folded.values()].map((f) => f.state)).toEqual(Array(5).fill('DONE'));

      const read = await owner.graphql<{ folderSyncStatus: Status }>(`query($id: ID!) { folderSyncStatus(folderId: $id) { ${STATUS} } }`, { id: folderId });
      expect(last.data?.folderSyncStatus.counts).toEqual(read.folderSyncStatus.counts);
      // Reconnecting: the first message is the whole state again, as a query reads it.
      const again = new Collected<{ folderSyncStatus: Status }>(ws(second.url, owner.token).iterate({ query: FOLDER_SUB, variables: { id: folderId } }));
      const first = await again.until(() => true);
      expect(first.data?.folderSyncStatus).toEqual(read.folderSyncStatus);
      expect([...folded.values()].sort((a, b) => Number(a.id) - Number(b.id))).toEqual(read.folderSyncStatus.changes);
    } finally {
      await second.close();
    }
  });
});

describe('message rate', () => {
  it('folds a burst into a bounded number of messages and always sends the last state', async () => {
    let state = 0;
    const stream = new LiveStream(100, () => state, () => {});
    const messages: number[] = [];
    const reading = (async () => {
      for await (const value of stream) {
        messages.push(value);
        if (value === 1000) break;
      }
    })();
    const started = performance.now();
    for (let i = 1; i <= 1000; i++) {
      state = i;
      stream.changed();
      if (i % 100 === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await reading;
    const seconds = (performance.now() - started) / 1000;
    expect(messages.at(-1)).toBe(1000);
    // 10 a second at most (plus the first, sent at once).
    expect(messages.length).toBeLessThanOrEqual(2 + Math.ceil(seconds * 10));
  });
});

describe('a folder that goes', () => {
  it('ends its subscriptions with NOT_FOUND and leaves the library dashboard when the expiry sweep removes it', async () => {
    const owner = await newClient(app);
    const folderId = await folderNamed(owner, 'Short-lived');
    const { file } = await files.random('short.bin', 10_000);
    await uploadFile(owner, file, { folder: 'Short-lived' });
    const folder = new Collected<{ folderSyncStatus: Status }>(ws(app.url, owner.token).iterate({ query: FOLDER_SUB, variables: { id: folderId } }));
    const library = new Collected<{ librarySyncStatus: { folderCount: number } }>(ws(app.url, owner.token).iterate({ query: 'subscription { librarySyncStatus { folderCount } }' }));
    expect((await folder.until(() => true)).data?.folderSyncStatus.counts.filesDone).toBe(1);
    expect((await library.until(() => true)).data?.librarySyncStatus.folderCount).toBe(1);
    // Past every default expiry (this is the last test of the file: it sweeps every user's folders).
    await app.services.sweepExpired(new Date(Date.now() + 400 * 86_400_000));
    expect((await folder.until((m) => (m.errors?.length ?? 0) > 0)).errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect((await library.until((m) => m.data?.librarySyncStatus.folderCount === 0)).data?.librarySyncStatus.folderCount).toBe(0);
  });
});
