import { mkdir, mkdtemp, rm, utimes } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SyncList } from '../src/cli/sync-list.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describe('the sync list', () => {
  it('opens and writes after a process died holding its lock (the lock directory left behind)', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pixshare-sync-list-'));
    dirs.push(dir);
    const file = path.join(dir, 'sync-list.db');
    new SyncList(file, 'https://photos.example.org').close();
    // What a SIGKILL in the middle of a transaction leaves: the lock, as old as the process's last write.
    await mkdir(`${file}.lock`);
    const then = new Date(Date.now() - 60_000);
    await utimes(`${file}.lock`, then, then);
    const list = new SyncList(file, 'https://photos.example.org');
    const photo = { path: '/photos/a.jpg', size: 10, mtimeMs: 1, inode: 7 };
    list.record(photo, { sha256: 'a'.repeat(64), assetId: 'asset-1' });
    list.flush();
    expect(list.lookupMany([photo])).toEqual([{ sha256: 'a'.repeat(64), assetId: 'asset-1' }]);
    list.close();
  });
});
