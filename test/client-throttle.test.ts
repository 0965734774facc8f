import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../src/client/api-client.js';
import { uploadFile } from '../src/client/upload-file.js';
import { blobKey } from '../src/services/blobs.js';
import { startTestApp, type TestApp } from './support/app.js';
import { newClient, scratchDir } from './support/files.js';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy.js';

/** The network between client and server as a throttling, connection-cutting proxy (test/support/tcp-proxy.ts). */
let app: TestApp;
let files: Awaited<ReturnType<typeof scratchDir>>;
let proxy: TcpProxy;

beforeAll(async () => {
  app = await startTestApp();
  files = await scratchDir();
  proxy = await startTcpProxy(new URL(app.url));
});
afterAll(async () => {
  await proxy.close();
  await app.close();
  await files.remove();
});

const sha256Of = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const stored = async (sha256: string) => sha256Of(await readFile(app.storage.localPath!(blobKey(sha256))));

describe('uploads over a changing network', () => {
  it('sends smaller chunks when the link is slow and larger ones once it is fast again (U5)', async () => {
    const bytes = randomBytes(24 * 1024 * 1024);
    const file = path.join(files.dir, 'changing-link.mov');
    await writeFile(file, bytes);
    const owner = await newClient(app);
    const api = new ApiClient(proxy.url, owner.token);
    proxy.setRate(1_000_000); // 1 MB/s for both chunks in flight together
    const sizes: number[] = [];
    try {
      const result = await uploadFile(api, file, {
        parallel: 2,
        initialChunkBytes: 1024 * 1024,
        targetChunkSeconds: 0.5,
        onProgress: ({ chunkBytes }) => {
          if (chunkBytes === 0) return; // bytes leaving, not a chunk the server took
          sizes.push(chunkBytes);
          // Once the chunks have shrunk to the slow link, it becomes fast.
          if (sizes.filter((size) => size < 1024 * 1024).length === 4) proxy.setRate(Infinity);
        },
      });
      expect(result.outcome).toBe('uploaded');
      expect(await stored(result.asset.sha256)).toBe(sha256Of(bytes));
    } finally {
      proxy.setRate(Infinity);
    }
    const smallest = Math.min(...sizes);
    // At 0.5 MB/s per chunk, half a second is about 256 KiB: a quarter of the first chunks.
    expect(sizes[0]).toBe(1024 * 1024);
    expect(smallest).toBeLessThanOrEqual(512 * 1024);
    // After the smallest, on the fast link, they grow again — past the size they started with.
    const afterSmallest = sizes.slice(sizes.indexOf(smallest));
    expect(Math.max(...afterSmallest)).toBeGreaterThan(1024 * 1024);
  }, 60_000);

  it('pixshare push ends with byte-exact files when connections are cut in the middle of chunks', async () => {
    const big = randomBytes(40 * 1024 * 1024);
    const small = [randomBytes(3 * 1024 * 1024), randomBytes(5 * 1024 * 1024)];
    const dir = path.join(files.dir, 'cut');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'clip.mp4'), big);
    for (const [i, bytes] of small.entries()) await writeFile(path.join(dir, `IMG_${i}.jpg`), bytes);
    const owner = await newClient(app);
    proxy.reset();
    // Cut every connection as 12 MiB and again as 30 MiB have gone through: chunks are in flight then.
    const cuts = [12 * 1024 * 1024, 30 * 1024 * 1024];
    let cut = 0;
    proxy.onSent = (sent) => {
      if (cut < cuts.length && sent >= cuts[cut]!) {
        cut++;
        proxy.cutAll();
      }
    };
    try {
      const env = { ...process.env, PIXSHARE_CONFIG_DIR: path.join(files.dir, 'cut-config'), PIXSHARE_SERVER: proxy.url, PIXSHARE_TOKEN: owner.token! };
      const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [path.resolve('bin/pixshare.js'), '--json', 'push', dir], { env, stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
        child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        child.on('close', (code) => resolve({ code, stdout, stderr }));
      });
      expect(cut).toBe(2);
      expect(run.stderr).toBe('');
      expect(run.code, run.stdout).toBe(0);
      const lines = run.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
      // Each file ends stored. (A cut that also fails a check's retries makes the run start over after
      // 2 s: files stored by then show again as unchanged or already there.)
      const ended = new Map(lines.filter((l) => l.type === 'file').map((l) => [l.path, l.outcome]));
      expect([...ended.values()].every((outcome) => ['uploaded', 'unchanged', 'exists'].includes(String(outcome))), run.stdout).toBe(true);
      expect(ended.size).toBe(3);
      for (const bytes of [big, ...small]) expect(await stored(sha256Of(bytes))).toBe(sha256Of(bytes));
    } finally {
      proxy.onSent = undefined;
    }
  }, 90_000);
});
