import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blobKey } from '../src/services/blobs.js';
import { startTestApp, type TestApp } from './support/app.js';
import { newClient, scratchDir } from './support/files.js';
import { startTcpProxy } from './support/tcp-proxy.js';

let app: TestApp;
let files: Awaited<ReturnType<typeof scratchDir>>;

beforeAll(async () => {
  app = await startTestApp();
  files = await scratchDir();
});
afterAll(async () => {
  await app.close();
  await files.remove();
});

describe('pixshare push after a SIGKILL', () => {
  it('sends only what the server is missing of a 200 MiB file, and the stored file is byte-exact', async () => {
    const size = 200 * 1024 * 1024;
    const file = path.join(files.dir, 'long-video.mp4');
    const handle = await open(file, 'w');
    const whole = createHash('sha256');
    for (let written = 0; written < size; written += 8 * 1024 * 1024) {
      const block = randomBytes(8 * 1024 * 1024);
      whole.update(block);
      await handle.write(block);
    }
    await handle.close();
    const sha256 = whole.digest('hex');

    const owner = await newClient(app);
    const proxy = await startTcpProxy(new URL(app.url));
    const env = { ...process.env, PIXSHARE_CONFIG_DIR: path.join(files.dir, 'config'), PIXSHARE_SERVER: proxy.url, PIXSHARE_TOKEN: owner.token! };
    try {
      // First run: killed once about 90 MiB went through the proxy.
      const first = spawn(process.execPath, [path.resolve('bin/pixshare.js'), '--json', 'push', file], { env, stdio: 'ignore' });
      const killed = new Promise((resolve) => first.on('close', resolve));
      for (const deadline = Date.now() + 60_000; proxy.sent() < 90 * 1024 * 1024; await new Promise((r) => setTimeout(r, 5))) {
        if (Date.now() > deadline || first.exitCode !== null) throw new Error(`the first run did not get far enough (${proxy.sent()} bytes)`);
      }
      first.kill('SIGKILL');
      await killed;
      // Chunks whose bytes had all arrived still count; those cut off are let go: wait for the server to settle.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const [upload] = await app.database.sql<{ received_bytes: string }[]>`select received_bytes from uploads where sha256 = ${sha256}`;
      const received = Number(upload!.received_bytes);
      expect(received).toBeGreaterThan(16 * 1024 * 1024);
      expect(received).toBeLessThan(size);

      // Second run: only the missing ranges (and what was in flight when it died) go again.
      proxy.reset();
      const second = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
        const child = spawn(process.execPath, [path.resolve('bin/pixshare.js'), '--json', 'push', file], { env, stdio: ['ignore', 'pipe', 'inherit'] });
        let stdout = '';
        child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
        child.on('close', (code) => resolve({ code, stdout }));
      });
      expect(second.code).toBe(0);
      const line = second.stdout.split('\n').map((l) => (l.startsWith('{') ? (JSON.parse(l) as Record<string, unknown>) : null)).find((l) => l?.type === 'file');
      expect(line).toMatchObject({ outcome: 'uploaded', sha256 });
      const missing = size - received;
      expect(proxy.sent()).toBeLessThan(missing + 4 * 1024 * 1024);
      expect(proxy.sent()).toBeGreaterThanOrEqual(missing);
      expect(Number(line!.sentBytes)).toBe(missing);

      const stored = await readFile(app.storage.localPath!(blobKey(sha256)));
      expect(createHash('sha256').update(stored).digest('hex')).toBe(sha256);
    } finally {
      await proxy.close();
    }
  }, 120_000);
});
