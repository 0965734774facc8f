import { createHash } from 'node:crypto';
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ApiError } from '../src/client/api-client.js';
import { checkFiles, uploadFile } from '../src/client/upload-file.js';
import { blobKey } from '../src/services/blobs.js';
import { startTestApp, type TestApp } from './support/app.js';
import { newClient, proofFor, scratchDir, sha256 } from './support/files.js';

const KiB = 1024;
let files: Awaited<ReturnType<typeof scratchDir>>;
beforeAll(async () => {
  files = await scratchDir();
});
afterAll(async () => {
  await files.remove();
});

describe('quota (S5)', () => {
  it('refuses with QUOTA_EXCEEDED and the numbers (default policy)', async () => {
    const app = await startTestApp({ PIXSHARE_STANDARD_QUOTA: '500KiB' });
    try {
      const api = await newClient(app);
      const a = await files.random('q1.bin', 300 * KiB);
      await uploadFile(api, a.file);
      const b = await files.random('q2.bin', 300 * KiB);
      const error = await uploadFile(api, b.file).catch((e: unknown) => e as ApiError);
      expect(error).toBeInstanceOf(ApiError);
      expect((error as ApiError).code).toBe('QUOTA_EXCEEDED');
      expect((error as ApiError).message).toMatch(/307200 bytes needed, 204800 of 512000 free/);
      // Nothing was taken: the first file is still there, alone.
      const page = await api.graphql<{ assets: { totalCount: number } }>('{ assets { totalCount } }');
      expect(page.assets.totalCount).toBe(1);

      // Two files that each fit the check but not both: the completion refuses the second.
      const c = await files.random('q3.bin', 150 * KiB);
      const d = await files.random('q4.bin', 150 * KiB);
      const checks = await checkFiles(api, [c, d].map((f, i) => ({ sha256: sha256(f.bytes), size: f.bytes.length, name: `q${i + 3}.bin` })));
      expect(checks.map((x) => x.status)).toEqual(['UPLOAD', 'UPLOAD']);
      await uploadFile(api, c.file);
      // The second file's bytes go to the session its check opened (a new check would refuse it
      // already): it is the completion that refuses.
      await expect(api.putChunk(checks[1]!.upload!.id, 0, d.bytes, createHash('sha256').update(d.bytes).digest())).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED' });
      const me = await api.graphql<{ me: { usedBytes: number } }>('{ me { usedBytes } }');
      expect(me.me.usedBytes).toBe(450 * KiB);

      // An instant upload is held to the quota too: a challenge handed out while the file fitted,
      // answered after the library grew, is refused with the numbers.
      const roomy = await newClient(app);
      const shared = await files.random('shared.bin', 300 * KiB);
      const owner = await newClient(app);
      await uploadFile(owner, shared.file);
      const [answer] = await checkFiles(roomy, [{ sha256: sha256(shared.bytes), size: shared.bytes.length, name: 'shared.bin' }]);
      expect(answer!.status).toBe('PROOF_REQUIRED');
      const filler = await files.random('filler.bin', 300 * KiB);
      await uploadFile(roomy, filler.file);
      const challenge = answer!.challenge!;
      const refused = await roomy
        .graphql('mutation($id: ID!, $proof: String!) { claimUpload(challengeId: $id, proof: $proof) { id } }', { id: challenge.id, proof: proofFor(shared.bytes, challenge) })
        .catch((e: unknown) => e as ApiError);
      expect(refused).toMatchObject({ code: 'QUOTA_EXCEEDED', message: expect.stringMatching(/307200 bytes needed, 204800 of 512000 free/) });
      expect(app.loggedErrors).toEqual([]);
    } finally {
      await app.close();
    }
  });

  it('removes the oldest assets until the new one fits (evict-oldest policy)', async () => {
    const app = await startTestApp({ PIXSHARE_STANDARD_QUOTA: '700KiB', PIXSHARE_QUOTA_POLICY: 'evict-oldest' });
    try {
      const api = await newClient(app);
      const names: string[] = [];
      for (let i = 1; i <= 3; i++) {
        const f = await files.random(`e${i}.bin`, 300 * KiB);
        await uploadFile(api, f.file);
        names.push(`e${i}.bin`);
      }
      const page = await api.graphql<{ assets: { nodes: { name: string }[] } }>('{ assets { nodes { name } } }');
      // 3 × 300 KiB does not fit in 700 KiB: e1 (the oldest) made room for e3.
      expect(page.assets.nodes.map((n) => n.name)).toEqual(['e3.bin', 'e2.bin']);
      const me = await api.graphql<{ me: { usedBytes: number; quotaBytes: number } }>('{ me { usedBytes quotaBytes } }');
      expect(me.me).toEqual({ usedBytes: 600 * KiB, quotaBytes: 700 * KiB });
      // The evicted photo's blob is released: no reference left, collectable after the grace period.
      const [evicted] = await app.database.sql<{ ref_count: number; collectable: boolean }[]>`
        select b.ref_count, b.gc_after is not null as collectable from blobs b join uploads u on u.sha256 = b.sha256 where u.name = 'e1.bin'`;
      expect(evicted).toEqual({ ref_count: 0, collectable: true });
      // An instant upload makes room the same way: e2 goes for a file someone else stored.
      const other = await newClient(app);
      const theirs = await files.random('theirs.bin', 300 * KiB);
      await uploadFile(other, theirs.file);
      expect(await uploadFile(api, theirs.file)).toMatchObject({ outcome: 'instant' });
      const after = await api.graphql<{ assets: { nodes: { name: string }[] }; me: { usedBytes: number } }>('{ assets { nodes { name } } me { usedBytes } }');
      expect(after.assets.nodes.map((n) => n.name)).toEqual(['theirs.bin', 'e3.bin']);
      expect(after.me.usedBytes).toBe(600 * KiB);

      const huge = await files.random('huge.bin', 800 * KiB);
      await expect(uploadFile(api, huge.file)).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED' });
      expect(app.loggedErrors).toEqual([]);
    } finally {
      await app.close();
    }
  });
});

describe('library, folders, live status, housekeeping', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ PIXSHARE_BLOB_GRACE_SECONDS: '0', PIXSHARE_UPLOAD_IDLE_SECONDS: '10' });
  });
  afterAll(async () => {
    expect(app.loggedErrors).toEqual([]);
    await app.close();
  });

  it('pages through the library newest first, and by folder (U9, S1)', async () => {
    const api = await newClient(app);
    for (let i = 0; i < 5; i++) {
      const f = await files.random(`p${i}.bin`, 2 * KiB);
      await uploadFile(api, f.file, { folder: i % 2 === 0 ? 'Even' : undefined });
    }
    type Page = { assets: { totalCount: number; pageInfo: { hasNextPage: boolean; endCursor: string }; edges: { cursor: string; node: { name: string } }[] } };
    const query = 'query($after: String, $folderId: ID) { assets(first: 2, after: $after, folderId: $folderId) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { name } } } }';
    const seen: string[] = [];
    let after: string | null = null;
    for (;;) {
      const page: Page = await api.graphql<Page>(query, { after });
      expect(page.assets.totalCount).toBe(5);
      seen.push(...page.assets.edges.map((e) => e.node.name));
      if (!page.assets.pageInfo.hasNextPage) break;
      after = page.assets.pageInfo.endCursor;
    }
    expect(seen).toEqual(['p4.bin', 'p3.bin', 'p2.bin', 'p1.bin', 'p0.bin']);

    const { folders } = await api.graphql<{ folders: { id: string; name: string; status: { total: number; done: number } }[] }>('{ folders { id name status { total done } } }');
    expect(folders).toEqual([{ id: expect.any(String), name: 'Even', status: { total: 3, done: 3 } }]);
    const inFolder = await api.graphql<Page>(query, { folderId: folders[0]!.id });
    expect(inFolder.assets.edges.map((e) => e.node.name)).toEqual(['p4.bin', 'p2.bin']);
    expect(inFolder.assets.totalCount).toBe(3);

    await expect(api.graphql(query, { after: 'garbage' })).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
    const stranger = await newClient(app);
    await expect(stranger.graphql(query, { folderId: folders[0]!.id })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('names a new folder after the user by default (S1)', async () => {
    const api = await newClient(app);
    const created = await api.graphql<{ a: { name: string }; b: { name: string } }>('mutation { a: createFolder { name } b: createFolder { name } }');
    expect(created.a.name).toMatch(/^user\d+-\d+$/);
    expect(created.b.name).toBe(`${created.a.name} (2)`);
  });

  it('shows a folder\'s sync status live to every device of the account: "5 of 10" (S3)', async () => {
    const api = await newClient(app);
    const folder = 'Live';
    const batch = await Promise.all(Array.from({ length: 4 }, (_, i) => files.random(`live${i}.bin`, 40 * KiB)));
    const answers = (
      await api.graphql<{ checkUploads: { upload: { id: string; folder: { id: string } } }[] }>(
        'mutation($files: [CheckFileInput!]!) { checkUploads(files: $files) { upload { id folder { id } } } }',
        { files: batch.map((b, i) => ({ sha256: sha256(b.bytes), size: b.bytes.length, name: `live${i}.bin`, folder })) },
      )
    ).checkUploads;
    const folderId = answers[0]!.upload.folder.id;

    // A second device (dashboard) watches over graphql-ws.
    const dashboard = createClient({ url: `${app.url.replace('http', 'ws')}/graphql`, webSocketImpl: WebSocket, connectionParams: { token: api.token }, retryAttempts: 0 });
    const events = dashboard.iterate<{ folderStatus: { total: number; done: number; bytesDone: number; bytesTotal: number } }>({
      query: 'subscription($id: ID!) { folderStatus(folderId: $id) { total done bytesDone bytesTotal } }',
      variables: { id: folderId },
    });
    const first = await events.next();
    expect(first.value.data?.folderStatus).toEqual({ total: 4, done: 0, bytesDone: 0, bytesTotal: 4 * 40 * KiB });
    await uploadFile(api, batch[0]!.file, { folder });
    await uploadFile(api, batch[1]!.file, { folder });
    let status = first.value.data!.folderStatus;
    while (status.done < 2) status = (await events.next()).value.data!.folderStatus;
    expect(status).toMatchObject({ total: 4, done: 2 });
    // A deleted photo leaves the folder's count too, live.
    const [done] = (await api.graphql<{ assets: { nodes: { id: string }[] } }>('query($f: ID!) { assets(folderId: $f) { nodes { id } } }', { f: folderId })).assets.nodes;
    await api.graphql('mutation($id: ID!) { deleteAsset(id: $id) { id } }', { id: done!.id });
    while (status.done > 1) status = (await events.next()).value.data!.folderStatus;
    expect(status).toMatchObject({ done: 1 });
    await events.return?.();
    await dashboard.dispose();
  });

  it('keeps each user to their own folders: status, cover, contents and live status of another\'s folder look missing', async () => {
    const owner = await newClient(app);
    const stranger = await newClient(app);
    const photo = await files.random('mine.bin', 4 * KiB);
    await uploadFile(owner, photo.file, { folder: 'Private' });
    const { folders } = await owner.graphql<{ folders: { id: string; name: string; status: { done: number } }[] }>('{ folders { id name status { done } } }');
    const folder = folders.find((f) => f.name === 'Private')!;
    expect(folder.status.done).toBe(1);
    const [ownerViewer, strangerViewer] = await Promise.all(
      [owner, stranger].map((api) => app.services.devices.authenticate(api.token!, { address: '127.0.0.1', port: 1, userAgent: null })),
    );
    // The services check the folder themselves, whether they get its id or a row read elsewhere.
    const [row] = await app.database.db.query.folders.findMany({ where: (f, { eq }) => eq(f.id, folder.id) });
    for (const given of [folder.id, row!]) {
      await expect(app.services.folders.folderStatus(strangerViewer!, given)).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(app.services.folders.folderCover(strangerViewer!, given)).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(app.services.folders.folderStatus(ownerViewer!, given)).resolves.toMatchObject({ done: 1 });
    }
    await expect(app.services.folders.addToFolder(strangerViewer!, folder.id, (await app.services.library.listAssets(ownerViewer!, {})).assets[0]!.id)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    // And through the API: the folder, its photos, its live status.
    await expect(stranger.graphql('query($id: ID!) { folder(id: $id) { id } }', { id: folder.id })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(stranger.graphql('query($id: ID!) { assets(folderId: $id) { totalCount } }', { id: folder.id })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    const dashboard = createClient({ url: `${app.url.replace('http', 'ws')}/graphql`, webSocketImpl: WebSocket, connectionParams: { token: stranger.token }, retryAttempts: 0 });
    try {
      const result = await dashboard.iterate({ query: 'subscription($id: ID!) { folderStatus(folderId: $id) { done } }', variables: { id: folder.id } }).next();
      expect((result.value as { errors?: { extensions?: { code?: string } }[] }).errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    } finally {
      await dashboard.dispose();
    }
  });

  it('finds near-duplicates by perceptual hash (U1)', async () => {
    const sharp = (await import('sharp')).default;
    const api = await newClient(app);
    const width = 640;
    const height = 480;
    const pixels = Buffer.alloc(width * height * 3);
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++) {
        const i = (y * width + x) * 3;
        pixels[i] = (x * 255) / width;
        pixels[i + 1] = (y * 255) / height;
        pixels[i + 2] = ((x + y) % 64) * 4;
      }
    const original = await sharp(pixels, { raw: { width, height, channels: 3 } }).jpeg({ quality: 92 }).toBuffer();
    const smaller = await sharp(original).resize(320).jpeg({ quality: 60 }).toBuffer();
    const different = await sharp(pixels, { raw: { width, height, channels: 3 } }).flop().flip().jpeg().toBuffer();
    const a = await uploadFile(api, await files.write('orig.jpg', original));
    await uploadFile(api, await files.write('small.jpg', smaller));
    await uploadFile(api, await files.write('other.jpg', different));
    await app.mediaSettled(); // the hashes are made in the background
    const { similarAssets } = await api.graphql<{ similarAssets: { distance: number; asset: { name: string } }[] }>(
      'query($id: ID!) { similarAssets(assetId: $id) { distance asset { name } } }',
      { id: a.asset.id },
    );
    expect(similarAssets.map((s) => s.asset.name)).toEqual(['small.jpg']);
    expect(similarAssets[0]!.distance).toBeLessThanOrEqual(6);
  });

  it('removes the staged bytes of every expired session even when one of them cannot be removed', async () => {
    const api = await newClient(app);
    const ids: string[] = [];
    for (const name of ['stuck.bin', 'freed.bin']) {
      const f = await files.random(name, 100 * KiB);
      const [answer] = await checkFiles(api, [{ sha256: sha256(f.bytes), size: f.bytes.length, name }]);
      const chunk = f.bytes.subarray(0, 64 * KiB);
      await api.putChunk(answer!.upload!.id, 0, chunk, createHash('sha256').update(chunk).digest());
      ids.push(answer!.upload!.id);
    }
    await app.database.sql`update uploads set last_activity_at = now() - interval '1 minute' where id = any(${ids}::uuid[])`;
    // The first one tried cannot be removed; the other goes all the same.
    const drop = app.storage.dropStaged.bind(app.storage);
    let stuck: string | undefined;
    app.storage.dropStaged = async (id: string) => {
      if (stuck === undefined || stuck === id) {
        stuck = id;
        throw new Error('disk on fire');
      }
      return drop(id);
    };
    try {
      await app.housekeeping.runOnce();
    } finally {
      app.storage.dropStaged = drop;
    }
    const freed = ids.find((id) => id !== stuck)!;
    await expect(app.storage.readStaged(freed, { start: 0, end: 10 })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(app.loggedErrors.splice(0)).toEqual([expect.objectContaining({ error: expect.objectContaining({ message: expect.stringContaining(stuck!) }) })]);
    await drop(stuck!);
  });

  it('expires idle sessions with their staged bytes, and collects unreferenced blobs', async () => {
    const api = await newClient(app);
    const f = await files.random('idle.bin', 200 * KiB);
    const [answer] = (
      await api.graphql<{ checkUploads: { upload: { id: string } }[] }>('mutation($files: [CheckFileInput!]!) { checkUploads(files: $files) { upload { id } } }', {
        files: [{ sha256: sha256(f.bytes), size: f.bytes.length, name: 'idle.bin' }],
      })
    ).checkUploads;
    const chunk = f.bytes.subarray(0, 64 * KiB);
    await api.putChunk(answer!.upload.id, 0, chunk, createHash('sha256').update(chunk).digest());
    await app.database.sql`update uploads set last_activity_at = now() - interval '1 minute' where id = ${answer!.upload.id}`;
    await expect(api.putChunk(answer!.upload.id, 64 * KiB, chunk, Buffer.alloc(32))).rejects.toMatchObject({ code: 'UPLOAD_EXPIRED' });
    // Answered challenges are kept while they could be answered again, then swept.
    await app.database.sql`insert into answered_challenges (id, user_id, expires_at) values
      (gen_random_uuid(), ${api.userId}, now() - interval '2 hours'), (gen_random_uuid(), ${api.userId}, now() + interval '1 minute')`;
    await app.housekeeping.runOnce();
    expect(await app.database.sql`select expires_at > now() as live from answered_challenges where user_id = ${api.userId}`).toEqual([{ live: true }]);
    await expect(api.graphql('query($id: ID!) { upload(id: $id) { id } }', { id: answer!.upload.id })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(app.storage.readStaged(answer!.upload.id, { start: 0, end: 10 })).rejects.toMatchObject({ code: 'NOT_FOUND' });

    // A blob nobody references any more goes after the grace period (0 here); one still referenced stays.
    const kept = await files.random('kept.bin', 10 * KiB);
    const gone = await files.random('gone.bin', 10 * KiB);
    const keptAsset = await uploadFile(api, kept.file);
    const goneAsset = await uploadFile(api, gone.file);
    await api.graphql('mutation($id: ID!) { deleteAsset(id: $id) { id } }', { id: goneAsset.asset.id });
    await app.mediaSettled(); // a blob being processed is skipped by the collector (SKIP LOCKED) until the next sweep
    // While its bytes are being deleted, the blob already counts as not stored for everyone else:
    // a crash or a failed commit in the middle can never leave "stored" without bytes.
    const seenWhileDeleting: unknown[] = [];
    const deleteBytes = app.storage.delete.bind(app.storage);
    app.storage.delete = async (key: string) => {
      if (key === blobKey(sha256(gone.bytes))) seenWhileDeleting.push(...(await app.database.sql`select stored from blobs where sha256 = ${sha256(gone.bytes)}`));
      return deleteBytes(key);
    };
    try {
      await app.housekeeping.runOnce();
    } finally {
      app.storage.delete = deleteBytes;
    }
    expect(seenWhileDeleting).toEqual([{ stored: false }]);
    expect(await app.storage.exists(blobKey(sha256(gone.bytes)))).toBe(false);
    expect(await app.storage.exists(blobKey(sha256(kept.bytes)))).toBe(true);
    expect((await app.database.sql`select 1 from blobs where sha256 = ${sha256(gone.bytes)}`).length).toBe(0);

    // A wrong counter never costs bytes: the collector repairs it from the assets instead.
    await app.database.sql`update blobs set ref_count = 0, gc_after = now() - interval '1 second' where sha256 = ${sha256(kept.bytes)}`;
    await app.housekeeping.runOnce();
    expect(await app.storage.exists(blobKey(sha256(kept.bytes)))).toBe(true);
    expect(await app.database.sql`select ref_count, gc_after from blobs where sha256 = ${sha256(kept.bytes)}`).toEqual([{ ref_count: 1, gc_after: null }]);
    expect(keptAsset.outcome).toBe('uploaded');

    // A delete of the bytes that fails: the row stays, as not stored and not described — never
    // "stored" without its bytes — and the next upload of the file stores and describes it again.
    const flaky = await files.random('flaky.bin', 10 * KiB);
    const flakyAsset = await uploadFile(api, flaky.file);
    await api.graphql('mutation($id: ID!) { deleteAsset(id: $id) { id } }', { id: flakyAsset.asset.id });
    await app.mediaSettled();
    const remove = app.storage.delete.bind(app.storage);
    app.storage.delete = async (key: string) => {
      if (key === blobKey(sha256(flaky.bytes))) throw new Error('disk on fire');
      return remove(key);
    };
    try {
      await app.housekeeping.runOnce();
    } finally {
      app.storage.delete = remove;
    }
    expect(await app.database.sql`select stored, thumbnail_status from blobs where sha256 = ${sha256(flaky.bytes)}`).toEqual([{ stored: false, thumbnail_status: 'pending' }]);
    expect(app.loggedErrors.splice(0)).toEqual([expect.objectContaining({ message: expect.stringContaining('will retry later') })]);
    const other = await newClient(app);
    const again = await uploadFile(other, flaky.file);
    expect(again.outcome).toBe('uploaded'); // not an instant upload of bytes that may be gone
    await app.mediaSettled();
    expect(await app.database.sql`select stored, size, thumbnail_status from blobs where sha256 = ${sha256(flaky.bytes)}`).toEqual([{ stored: true, size: String(flaky.bytes.length), thumbnail_status: 'failed' }]);
  });

  it('records the verified size of a blob, whatever an earlier failed upload declared', async () => {
    const api = await newClient(app);
    const f = await files.random('sized.bin', 40 * KiB);
    // As left by an upload that declared 1 byte and failed: the row exists, not stored.
    await app.database.sql`insert into blobs (sha256, size) values (${sha256(f.bytes)}, 1)`;
    const done = await uploadFile(api, f.file);
    expect(done.outcome).toBe('uploaded');
    expect(await app.database.sql`select size::int from blobs where sha256 = ${sha256(f.bytes)}`).toEqual([{ size: f.bytes.length }]);
    expect(await app.database.sql`select used_bytes::int from users where id = ${api.userId}`).toEqual([{ used_bytes: f.bytes.length }]);
  });

  it('resumes an idle session a check finds before housekeeping does, instead of refusing it forever', async () => {
    const api = await newClient(app);
    const f = await files.random('late.bin', 192 * KiB);
    const CHECK = 'mutation($files: [CheckFileInput!]!) { checkUploads(files: $files) { status upload { id missing { offset length } } } }';
    const ask = async () => (await api.graphql<{ checkUploads: { status: string; upload: { id: string; missing: { offset: number; length: number }[] } }[] }>(CHECK, { files: [{ sha256: sha256(f.bytes), size: f.bytes.length, name: 'late.bin' }] })).checkUploads[0]!;
    const first = await ask();
    const chunk = f.bytes.subarray(0, 64 * KiB);
    await api.putChunk(first.upload.id, 0, chunk, createHash('sha256').update(chunk).digest());
    await app.database.sql`update uploads set last_activity_at = now() - interval '1 minute' where id = ${first.upload.id}`;
    const resumed = await ask();
    expect(resumed.upload).toEqual({ id: first.upload.id, missing: [{ offset: 64 * KiB, length: 128 * KiB }] });
    // The check gave it its idle time back: a chunk is taken at once (without, UPLOAD_EXPIRED).
    const part = f.bytes.subarray(64 * KiB, 128 * KiB);
    await expect(api.putChunk(first.upload.id, 64 * KiB, part, createHash('sha256').update(part).digest())).resolves.toMatchObject({ upload: { receivedBytes: 128 * KiB } });
    // A completing session is not idle but being assembled: only a stale completion (10 minutes
    // without a heartbeat) is swept, whatever the idle limit (10 s here).
    await app.database.sql`update uploads set state = 'completing', last_activity_at = now() - interval '1 minute' where id = ${first.upload.id}`;
    await app.housekeeping.runOnce();
    expect(await app.database.sql`select state from uploads where id = ${first.upload.id}`).toEqual([{ state: 'completing' }]);
    await app.database.sql`update uploads set state = 'open', last_activity_at = now() where id = ${first.upload.id}`;
    const rest = f.bytes.subarray(128 * KiB);
    const done = await api.putChunk<{ asset: { sha256: string } }>(first.upload.id, 128 * KiB, rest, createHash('sha256').update(rest).digest());
    expect(done.asset.sha256).toBe(sha256(f.bytes));
  });
});

describe('usage counters (S5)', () => {
  it('recomputes used_bytes from the assets, and housekeeping repairs and reports a wrong one', async () => {
    const app = await startTestApp();
    try {
      const api = await newClient(app);
      const other = await newClient(app);
      for (const [client, name] of [[api, 'u1.bin'], [api, 'u2.bin'], [other, 'u3.bin']] as const) await uploadFile(client, (await files.random(name, 10 * KiB)).file);
      const usage = async (client: typeof api) => (await client.graphql<{ me: { usedBytes: number } }>('{ me { usedBytes } }')).me.usedBytes;
      expect(await usage(api)).toBe(20 * KiB);
      // Nothing to repair while the counters hold.
      expect(await app.services.library.recomputeUsedBytes()).toEqual([]);

      await app.database.sql`update users set used_bytes = 12345 where id = ${api.userId}`;
      expect(await app.services.library.recomputeUsedBytes([api.userId])).toEqual([{ userId: api.userId, was: 12345, now: 20 * KiB }]);
      expect(await usage(api)).toBe(20 * KiB);

      // Housekeeping checks every user on its first pass, repairs, and says so (a wrong counter is a bug).
      await app.database.sql`update users set used_bytes = 0 where id = ${other.userId}`;
      await app.housekeeping.runOnce();
      expect(await usage(other)).toBe(10 * KiB);
      expect(app.loggedErrors.splice(0)).toEqual([expect.objectContaining({ message: expect.stringContaining(`user ${other.userId} had used_bytes 0, their assets hold ${10 * KiB}`) })]);
      // Later passes leave it for a day.
      await app.database.sql`update users set used_bytes = 1 where id = ${other.userId}`;
      await app.housekeeping.runOnce();
      expect(await usage(other)).toBe(1);
    } finally {
      await app.close();
    }
  });

  it('refuses with the numbers when the counter says more than the assets hold (evict-oldest), and takes the file once repaired', async () => {
    const app = await startTestApp({ PIXSHARE_STANDARD_QUOTA: '100KiB', PIXSHARE_QUOTA_POLICY: 'evict-oldest' });
    try {
      const api = await newClient(app);
      await app.database.sql`update users set used_bytes = ${90 * KiB} where id = ${api.userId}`;
      const photo = await files.random('late.bin', 50 * KiB);
      // Nothing to evict: refused with the numbers as the counter has them, not a crash.
      await expect(uploadFile(api, photo.file)).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED', details: { usedBytes: 90 * KiB, quotaBytes: 100 * KiB, neededBytes: 50 * KiB } });
      await app.housekeeping.runOnce();
      expect(app.loggedErrors.splice(0)).toEqual([expect.objectContaining({ message: expect.stringContaining(`user ${api.userId} had used_bytes ${90 * KiB}`) })]);
      // The failed upload is checked again from the start.
      expect((await uploadFile(api, (await files.random('again.bin', 50 * KiB)).file)).outcome).toBe('uploaded');
    } finally {
      await app.close();
    }
  });
});
