import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { photoLikeJpeg } from './media/photo-like.js';
import { startTestApp, type TestApp } from './support/app.js';
import { startPixshare } from './support/cli.js';
import { newClient, scratchDir } from './support/files.js';
import { befriend } from './support/sharing.js';

const startWatch = (args: string[], env: Record<string, string>) => startPixshare(['watch', ...args], env);

let app: TestApp;
let files: Awaited<ReturnType<typeof scratchDir>>;

beforeAll(async () => {
  // Files over 1 MB are refused: the way to make one file fail while the others go through.
  app = await startTestApp({ PIXSHARE_MAX_FILE_SIZE: '1000000' });
  files = await scratchDir();
});
afterAll(async () => {
  expect(app.loggedErrors).toEqual([]);
  await app.close();
  await files.remove();
});

describe('pixshare watch', () => {
  it('sends what is there and what arrives, moves a file only once it is stored, leaves a failed one in place, shares the new photos with a group', async () => {
    const owner = await newClient(app);
    const sister = await newClient(app);
    await befriend(owner, sister);
    await owner.graphql('mutation($m: [ID!]) { createContactGroup(name: "Family", memberIds: $m) { id } }', { m: [sister.userId] });
    const camera = path.join(files.dir, 'Camera');
    const sent = path.join(files.dir, 'Sent');
    await mkdir(path.join(camera, 'trip'), { recursive: true });
    await writeFile(path.join(camera, 'before.jpg'), await photoLikeJpeg({ width: 320, height: 240, seed: 801 }));

    const watch = startWatch([camera, '--move-sent-to', sent, '--share-to', 'Family', '--settle', '200ms', '--every', '1h'], {
      PIXSHARE_CONFIG_DIR: path.join(files.dir, 'config'),
      PIXSHARE_SERVER: app.url,
      PIXSHARE_TOKEN: owner.token!,
    });
    try {
      await watch.until((l) => l.type === 'watching', 'start');
      await watch.until((l) => l.type === 'file' && String(l.path).endsWith('before.jpg') && l.outcome === 'uploaded', 'the first photo');
      await watch.until((l) => l.type === 'share', 'the first share');

      // Files arriving while it runs: two photos (one in a subfolder) and one too large for the server.
      await writeFile(path.join(camera, 'trip', 'beach.jpg'), await photoLikeJpeg({ width: 320, height: 240, seed: 802 }));
      await writeFile(path.join(camera, 'sunset.jpg'), await photoLikeJpeg({ width: 320, height: 240, seed: 803 }));
      await writeFile(path.join(camera, 'huge.mp4'), Buffer.alloc(1_500_000, 7));
      await watch.until((l) => l.type === 'file' && String(l.path).endsWith('beach.jpg') && l.outcome === 'uploaded', 'beach.jpg');
      await watch.until((l) => l.type === 'file' && String(l.path).endsWith('sunset.jpg') && l.outcome === 'uploaded', 'sunset.jpg');
      const failed = await watch.until((l) => l.type === 'file' && String(l.path).endsWith('huge.mp4'), 'huge.mp4');
      expect(failed).toMatchObject({ outcome: 'failed', error: { code: 'FILE_TOO_LARGE' } });
      // One share per batch: the new files may come in one batch or two.
      await watch.until(() => watch.lines.filter((l) => l.type === 'share').reduce((n, l) => n + Number(l.assets), 0) >= 3, 'the shares of all three');

      // Stored ones moved (their place below the folder kept); the failed one where it was.
      expect((await readdir(camera, { recursive: true })).sort()).toEqual(['huge.mp4', 'trip']);
      expect((await readdir(sent, { recursive: true })).sort()).toEqual(['before.jpg', 'sunset.jpg', 'trip', path.join('trip', 'beach.jpg')]);
      // The sister sees the photos shared with her group.
      const { sharedWithMe } = await sister.graphql<{ sharedWithMe: { nodes: { photoCount: number }[] } }>('{ sharedWithMe(first: 20) { nodes { photoCount } } }');
      expect(sharedWithMe.nodes.reduce((n, s) => n + s.photoCount, 0)).toBe(3);
      const { folders } = await owner.graphql<{ folders: { name: string; status: { done: number } }[] }>('{ folders { name status { done } } }');
      expect(folders.find((f) => f.name === 'Camera')?.status.done).toBe(3);
    } finally {
      watch.child.kill('SIGTERM');
    }
    expect(await watch.exited).toBe(0);
  }, 90_000);

  it('deletes a file only on the server\'s word of now: one the sync list knows but the server lost is sent again first', async () => {
    const owner = await newClient(app);
    const folder = path.join(files.dir, 'Phone');
    await mkdir(folder, { recursive: true });
    const photo = await photoLikeJpeg({ width: 320, height: 240, seed: 820 });
    await writeFile(path.join(folder, 'kept.jpg'), photo);
    const env = { PIXSHARE_CONFIG_DIR: path.join(files.dir, 'config-phone'), PIXSHARE_SERVER: app.url, PIXSHARE_TOKEN: owner.token! };
    // Pushed once (the sync list records it), then deleted from the library on the server.
    const pushed = spawn(process.execPath, [path.resolve('bin/pixshare.js'), '--json', 'push', folder], { env: { ...process.env, ...env }, stdio: 'ignore' });
    expect(await new Promise((resolve) => pushed.on('close', resolve))).toBe(0);
    const { assets } = await owner.graphql<{ assets: { nodes: { id: string }[] } }>('{ assets(first: 5) { nodes { id } } }');
    await owner.graphql('mutation($id: ID!) { deleteAsset(id: $id) { id } }', { id: assets.nodes[0]!.id });

    const watch = startWatch([folder, '--delete-sent', '--settle', '200ms'], env);
    try {
      const line = await watch.until((l) => l.type === 'file' && String(l.path).endsWith('kept.jpg'), 'kept.jpg');
      // Not "unchanged": the server was asked, lacked it in the library, and took it back (its bytes were still kept: instant).
      expect(['uploaded', 'instant']).toContain(line.outcome);
      for (const deadline = Date.now() + 10_000; (await readdir(folder)).length > 0 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 50));
      expect(await readdir(folder)).toEqual([]);
      const after = await owner.graphql<{ assets: { nodes: { sha256: string }[] } }>('{ assets(first: 5) { nodes { sha256 } } }');
      expect(after.assets.nodes.map((a) => a.sha256)).toEqual([createHash('sha256').update(photo).digest('hex')]);
    } finally {
      watch.child.kill('SIGTERM');
    }
    expect(await watch.exited).toBe(0);
    const same = startWatch([folder, '--move-sent-to', folder], env);
    expect(await same.exited).toBe(2);
  });

  it('waits for a server that is away, and says so', async () => {
    const owner = await newClient(app);
    const folder = path.join(files.dir, 'Offline');
    await mkdir(folder, { recursive: true });
    await writeFile(path.join(folder, 'a.jpg'), await photoLikeJpeg({ width: 64, height: 48, seed: 810 }));
    const watch = startWatch([folder, '--settle', '200ms'], { PIXSHARE_CONFIG_DIR: path.join(files.dir, 'config-away'), PIXSHARE_SERVER: 'http://127.0.0.1:9', PIXSHARE_TOKEN: owner.token! });
    try {
      const waiting = await watch.until((l) => l.type === 'waiting', 'a waiting line');
      expect(waiting).toMatchObject({ code: 'UNREACHABLE', retryInSeconds: 5 });
      expect(watch.child.exitCode).toBeNull(); // still there, to try again
    } finally {
      watch.child.kill('SIGTERM');
    }
    expect(await watch.exited).toBe(0);
  });
});
