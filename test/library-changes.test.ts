import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../src/client/api-client.js';
import { uploadFile } from '../src/client/upload-file.js';
import { photoLikeJpeg } from './media/photo-like.js';
import { startTestApp, type TestApp } from './support/app.js';
import { newClient, scratchDir } from './support/files.js';

/** The library's change feed (D4) as the API answers it. */
let app: TestApp;
let files: Awaited<ReturnType<typeof scratchDir>>;
beforeAll(async () => {
  app = await startTestApp();
  files = await scratchDir();
});
afterAll(async () => {
  expect(app.loggedErrors).toEqual([]);
  await app.close();
  await files.remove();
});

type Page = { cursor: string; hasMore: boolean; changes: { op: string; assetId: string; asset: { name: string } | null; folders: { name: string }[] }[] };
const QUERY = 'query($after: String, $first: Int) { changes(after: $after, first: $first) { cursor hasMore changes { op assetId asset { name } folders { name } } } }';

async function photo(api: Awaited<ReturnType<typeof newClient>>, seed: number, folder?: string, name = `P${seed}.jpg`): Promise<string> {
  const file = await files.write(`p${seed}.jpg`, await photoLikeJpeg({ width: 64, height: 48, seed }));
  return (await uploadFile(api, file, { name, folder })).asset.id;
}

describe('changes(after)', () => {
  it('lists the library page by page, then tells what was added, moved and removed since — only the account\'s own', async () => {
    const owner = await newClient(app);
    const stranger = await newClient(app);
    const ids = [await photo(owner, 1, 'A'), await photo(owner, 2, 'A'), await photo(owner, 3)];
    await photo(stranger, 4, 'Theirs');
    const read = (after: string | null, first = 2) => owner.graphql<{ changes: Page }>(QUERY, { after, first }).then((r) => r.changes);

    const one = await read(null);
    expect(one.hasMore).toBe(true);
    const two = await read(one.cursor);
    expect(two.hasMore).toBe(false);
    expect([...one.changes, ...two.changes].map((c) => c.assetId).sort()).toEqual([...ids].sort());
    expect([...one.changes, ...two.changes].every((c) => c.op === 'ADDED')).toBe(true);
    expect((await read(two.cursor)).changes).toEqual([]);

    await photo(owner, 2, 'B'); // the same photo into a second folder
    await owner.graphql('mutation($id: ID!) { deleteAsset(id: $id) { id } }', { id: ids[2] });
    const added = await photo(owner, 5, 'A');
    const since = await read(two.cursor, 10);
    expect(since.changes).toEqual([
      { op: 'MOVED', assetId: ids[1], asset: { name: 'P2.jpg' }, folders: [{ name: 'A' }, { name: 'B' }] },
      { op: 'REMOVED', assetId: ids[2], asset: null, folders: [] },
      { op: 'ADDED', assetId: added, asset: { name: 'P5.jpg' }, folders: [{ name: 'A' }] },
    ]);
    expect((await read(since.cursor)).changes).toEqual([]);
    await expect(owner.graphql(QUERY, { after: 'not a cursor' })).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
  });

  it('never skips a change whose transaction commits after a later one was read', async () => {
    const owner = await newClient(app);
    const first = await photo(owner, 10, 'Slow');
    const start = await owner.graphql<{ changes: Page }>(QUERY, { after: null, first: 100 });
    // A transaction that writes a change and stays open while another change is made and read.
    const [folder] = await app.database.sql<{ id: string }[]>`insert into folders (user_id, name) values (${owner.userId}, 'Late') returning id`;
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const slow = app.database.sql.begin(async (tx) => {
      await tx`insert into folder_assets (folder_id, asset_id) values (${folder!.id}, ${first})`;
      await held;
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const quick = await photo(owner, 11, 'Fast');
    const during = await owner.graphql<{ changes: Page }>(QUERY, { after: start.changes.cursor, first: 100 });
    // The quick change waits too: it is not handed out ahead of one that may still commit before it.
    expect(during.changes.changes.map((c) => c.assetId)).not.toContain(first);
    release();
    await slow;
    const after = await owner.graphql<{ changes: Page }>(QUERY, { after: during.changes.cursor, first: 100 });
    const seen = [...during.changes.changes, ...after.changes.changes];
    expect(seen.find((c) => c.assetId === first)).toMatchObject({ op: 'MOVED', folders: [{ name: 'Late' }, { name: 'Slow' }] });
    expect(seen.map((c) => c.assetId)).toContain(quick);
  });

  it('tells a cursor older than the feed keeps to start over', async () => {
    const owner = await newClient(app);
    await photo(owner, 20, 'Old');
    const listed = await owner.graphql<{ changes: Page }>(QUERY, { after: null });
    await photo(owner, 21, 'Old');
    await app.database.sql`update library_changes set at = now() - interval '200 days' where user_id = ${owner.userId}`;
    await app.services.libraryChanges.prune(90);
    await expect(owner.graphql(QUERY, { after: listed.changes.cursor })).rejects.toMatchObject({ code: 'CURSOR_EXPIRED' });
    const fresh = await owner.graphql<{ changes: Page }>(QUERY, { after: null });
    expect(fresh.changes.changes).toHaveLength(2);
  });

  it('takes a cursor on a server started after it was given (nothing of it lives in a server)', async () => {
    const owner = await newClient(app);
    await photo(owner, 30, 'Restart');
    const listed = await owner.graphql<{ changes: Page }>(QUERY, { after: null });
    const restarted = await startTestApp({ DATABASE_URL: (app.config.database as { url: string }).url });
    try {
      const added = await photo(owner, 31, 'Restart');
      const since = await new ApiClient(restarted.url, owner.token).graphql<{ changes: Page }>(QUERY, { after: listed.changes.cursor });
      expect(since.changes.changes.map((c) => [c.op, c.assetId])).toEqual([['ADDED', added]]);
    } finally {
      await restarted.close();
    }
  });
});
