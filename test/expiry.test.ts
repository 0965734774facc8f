import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, ApiError } from '../src/client/api-client.js';
import { blobKey } from '../src/services/blobs.js';
import { PASSWORD, startTestApp, type TestApp } from './support/app.js';
import { newClient, scratchDir, sha256 } from './support/files.js';
import { createShare, tokenOf, uploadPhotos, type Client } from './support/sharing.js';
import { uploadFile } from '../src/client/upload-file.js';

const DAY = 86_400_000;

let app: TestApp;
let files: Awaited<ReturnType<typeof scratchDir>>;
beforeAll(async () => {
  // Standard users: 15 days by default, at most 365 ahead; members: 30 days, no limit. Blobs go as soon as nobody uses them.
  app = await startTestApp({ PIXSHARE_BLOB_GRACE_SECONDS: '0', PIXSHARE_STANDARD_EXPIRY_DAYS: '15', PIXSHARE_STANDARD_MAX_EXPIRY_DAYS: '365' });
  files = await scratchDir();
});
afterAll(async () => {
  expect(app.loggedErrors).toEqual([]);
  await app.close();
  await files.remove();
});

async function expectCode(promise: Promise<unknown>, code: string): Promise<ApiError> {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error, `expected ${code}`).toBeInstanceOf(ApiError);
  expect((error as ApiError).code, (error as ApiError).message).toBe(code);
  return error as ApiError;
}

const folderId = async (client: Client, name: string) => (await client.graphql<{ folders: { id: string; name: string }[] }>('{ folders { id name } }')).folders.find((f) => f.name === name)!.id;
const setFolderExpiry = (client: Client, id: string, expiresAt: string | null) =>
  client.graphql<{ setFolderExpiry: { expiresAt: string | null } }>('mutation($id: ID!, $at: DateTime) { setFolderExpiry(id: $id, expiresAt: $at) { expiresAt } }', { id, at: expiresAt });
const setAssetExpiry = (client: Client, id: string, expiresAt: string | null) =>
  client.graphql<{ setAssetExpiry: { expiresAt: string | null } }>('mutation($id: ID!, $at: DateTime) { setAssetExpiry(id: $id, expiresAt: $at) { expiresAt } }', { id, at: expiresAt });

/** Every blob row that says stored has its bytes, and every stored object has its row. */
async function storageAgrees(): Promise<void> {
  const rows = (await app.database.db.execute<{ sha256: string; stored: boolean }>(sql`select sha256, stored from blobs`)) as unknown as { sha256: string; stored: boolean }[];
  for (const row of rows) if (row.stored) expect(await app.storage.exists(blobKey(row.sha256)), row.sha256).toBe(true);
  const root = (app.config.storage as { root: string }).root;
  const onDisk = await readdir(path.join(root, 'blobs')).catch(() => [] as string[]);
  const known = new Set(rows.map((r) => r.sha256));
  for (const name of onDisk) expect(known.has(name), `orphan object blobs/${name}`).toBe(true);
  // Usage counters agree with the assets.
  expect(await app.services.library.recomputeUsedBytes()).toEqual([]);
}

describe('expiry (S2)', () => {
  it('gives folders and loose uploads the level’s expiry, and lets the owner move it within the level', async () => {
    const owner = await newClient(app);
    const before = Date.now();
    const [photo] = await uploadPhotos(owner, files, 1, { folder: 'Days', seed: 21 });
    const id = await folderId(owner, 'Days');
    const { folder } = await owner.graphql<{ folder: { expiresAt: string } }>('query($id: ID!) { folder(id: $id) { expiresAt } }', { id });
    expect(new Date(folder.expiresAt).getTime()).toBeGreaterThanOrEqual(before + 15 * DAY - 1000);
    expect(new Date(folder.expiresAt).getTime()).toBeLessThanOrEqual(Date.now() + 15 * DAY + 1000);
    const { asset } = await owner.graphql<{ asset: { expiresAt: string } }>('query($id: ID!) { asset(id: $id) { expiresAt } }', { id: photo!.id });
    expect(new Date(asset.expiresAt).getTime()).toBeGreaterThan(before + 14 * DAY);

    const later = new Date(Date.now() + 100 * DAY).toISOString();
    expect((await setFolderExpiry(owner, id, later)).setFolderExpiry.expiresAt).toBe(later);
    await expectCode(setFolderExpiry(owner, id, new Date(Date.now() + 400 * DAY).toISOString()), 'BAD_USER_INPUT');
    await expectCode(setFolderExpiry(owner, id, new Date(Date.now() - DAY).toISOString()), 'BAD_USER_INPUT');
    // Kept forever is beyond a standard level…
    await expectCode(setFolderExpiry(owner, id, null), 'BAD_USER_INPUT');
    await expectCode(setAssetExpiry(owner, photo!.id, null), 'BAD_USER_INPUT');
    // …and within a member's (no limit by default).
    await app.database.db.execute(sql`update users set level = 'member' where id = ${owner.userId}`);
    const again = await app.gql<{ logIn: { token: string } }>('mutation($e: String!, $p: String!) { logIn(email: $e, password: $p, device: { name: "t", platform: "cli" }) { token } }', { e: owner.email, p: PASSWORD });
    const asMember = Object.assign(new ApiClient(app.url, again.data!.logIn.token), { userId: owner.userId, email: owner.email });
    expect((await setFolderExpiry(asMember, id, null)).setFolderExpiry.expiresAt).toBeNull();
    // Someone else's folder is not found.
    const other = await newClient(app);
    await expectCode(setFolderExpiry(other, id, later), 'NOT_FOUND');
  });

  it('sweeps with a controllable clock: a folder takes its photos, a photo also in a live folder survives, blobs someone else uses survive, shares of removed items end', async () => {
    const owner = await newClient(app);
    const neighbour = await newClient(app);
    const trip = await uploadPhotos(owner, files, 2, { folder: 'Trip', seed: 31 }); // [a, b]
    const keep = await uploadPhotos(owner, files, 1, { folder: 'Keep', seed: 32 }); // [c]
    // b is also in the live folder Keep.
    expect((await uploadFile(owner, await files.write('b-again.jpg', trip[1]!.bytes), { folder: 'Keep' })).outcome).toBe('exists');
    const [loose] = await uploadPhotos(owner, files, 1, { seed: 33 }); // d, in no folder
    // The neighbour has a's bytes too, and keeps them for a year.
    const aBytes = trip[0]!.bytes;
    const neighbours = await uploadFile(neighbour, await files.write('neighbour-a.jpg', aBytes));
    await setAssetExpiry(neighbour, neighbours.asset.id, new Date(Date.now() + 300 * DAY).toISOString());
    await setFolderExpiry(owner, await folderId(owner, 'Keep'), new Date(Date.now() + 60 * DAY).toISOString());
    const share = await createShare(owner, { folderIds: [await folderId(owner, 'Trip')], emails: [`trip-${Date.now()}@example.org`] });
    // Never later than its items: the folder goes in 15 days, so does the share.
    expect(new Date(share.share.expiresAt).getTime()).toBeLessThanOrEqual(Date.now() + 15 * DAY + 1000);

    // Day 10: nothing is due.
    expect(await app.services.sweepExpired(new Date(Date.now() + 10 * DAY))).toMatchObject({ folders: 0, assets: 0 });
    // Day 20: Trip and the loose photo are past their time.
    const swept = await app.services.sweepExpired(new Date(Date.now() + 20 * DAY));
    expect(swept).toMatchObject({ folders: 1, assets: 2 });
    const { assets } = await owner.graphql<{ assets: { nodes: { id: string }[] } }>('{ assets(first: 50) { nodes { id } } }');
    expect(assets.nodes.map((a) => a.id).sort()).toEqual([trip[1]!.id, keep[0]!.id].sort());
    const { folders } = await owner.graphql<{ folders: { name: string }[] }>('{ folders { name } }');
    expect(folders.map((f) => f.name)).toEqual(['Keep']);
    // a's bytes stay for the neighbour; d's go once nobody has them.
    await app.services.blobs.collectGarbage();
    expect(await app.storage.exists(blobKey(sha256(aBytes)))).toBe(true);
    expect(await app.storage.exists(blobKey(sha256(loose!.bytes)))).toBe(false);
    const { asset } = await neighbour.graphql<{ asset: { id: string } }>('query($id: ID!) { asset(id: $id) { id } }', { id: neighbours.asset.id });
    expect(asset.id).toBe(neighbours.asset.id);
    // The share of the removed folder has ended.
    const opened = await app.gql('query($t: String!) { share(token: $t) { id } }', { t: tokenOf(share.links[0]!.url) });
    expect(opened.errors?.[0]?.extensions?.code).toBe('SHARE_EXPIRED');
    await storageAgrees();
    // A second sweep (another instance, or the next tick) finds nothing more.
    expect(await app.services.sweepExpired(new Date(Date.now() + 20 * DAY))).toMatchObject({ folders: 0, assets: 0, sharesEnded: 0 });
  });

  it('runs safely on two instances at once', async () => {
    const owner = await newClient(app);
    for (let f = 0; f < 4; f++) await uploadPhotos(owner, files, 3, { folder: `Batch ${f}`, seed: 40 + f });
    const second = await startTestApp({ DATABASE_URL: app.database.url, PIXSHARE_BLOB_GRACE_SECONDS: '0', PIXSHARE_DATA_DIR: app.config.dataDir });
    try {
      const at = new Date(Date.now() + 20 * DAY);
      const [one, two] = await Promise.all([app.services.sweepExpired(at), second.services.sweepExpired(at)]);
      expect(one.folders + two.folders).toBeGreaterThanOrEqual(4);
      const { assets } = await owner.graphql<{ assets: { totalCount: number } }>('{ assets { totalCount } }');
      expect(assets.totalCount).toBe(0);
      await app.services.blobs.collectGarbage();
      await storageAgrees();
    } finally {
      await second.close();
    }
  });
});
