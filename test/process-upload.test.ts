import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../src/client/api-client.js';
import { uploadFile } from '../src/client/upload-file.js';
import { freePort, PASSWORD } from './support/app.js';
import { startServerProcess } from './support/server-process.js';
import { allInside, countChunkPuts, scratchDir, sha256 } from './support/files.js';

/** Resume after the server itself dies mid-upload (SIGKILL) and comes back. */
let dataDir: string;
let port: number;
let server: ChildProcess | undefined;

async function startServer(): Promise<ChildProcess> {
  return (await startServerProcess({ dataDir, port, env: { PIXSHARE_MIN_CHUNK_SIZE: '64KiB', PIXSHARE_MAX_CHUNK_SIZE: '1MiB' } })).child;
}

beforeAll(async () => {
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'pixshare-kill-'));
  await fs.chmod(dataDir, 0o755);
  port = await freePort();
});
afterAll(async () => {
  if (server && server.exitCode === null && server.signalCode === null) {
    server.kill('SIGTERM');
    await new Promise((r) => server!.once('exit', r));
  }
  await fs.rm(dataDir, { recursive: true, force: true });
});

describe('an upload survives the server being killed', () => {
  it('resumes after SIGKILL and a restart, sending only what is missing, byte-exact', async () => {
    const files = await scratchDir();
    try {
      server = await startServer();
      const base = `http://127.0.0.1:${port}`;
      const signUp = await new ApiClient(base).graphql<{ signUp: { token: string } }>(
        'mutation($e: String!, $p: String!) { signUp(email: $e, password: $p, device: { name: "camera", platform: "cli" }) { token } }',
        { e: 'kill@example.com', p: PASSWORD },
      );
      const api = new ApiClient(base, signUp.signUp.token);
      const { file, bytes } = await files.random('big.bin', 24 * 2 ** 20);

      const victim = server;
      const interrupted = await uploadFile(api, file, {
        initialChunkBytes: 2 ** 20,
        parallel: 2,
        retries: 0, // the client gives up when the server dies; the test restarts it
        onProgress: ({ receivedBytes }) => {
          if (receivedBytes >= 6 * 2 ** 20 && !victim.killed) victim.kill('SIGKILL');
        },
      }).catch((error: unknown) => error);
      expect(interrupted).toBeInstanceOf(Error);
      await new Promise((r) => (victim.exitCode !== null || victim.signalCode !== null ? r(null) : victim.once('exit', r)));

      server = await startServer();
      const [answer] = (
        await api.graphql<{ checkUploads: { status: string; upload: { receivedBytes: number; missing: { offset: number; length: number }[] } }[] }>(
          'mutation($f: [CheckFileInput!]!) { checkUploads(files: $f) { status upload { receivedBytes missing { offset length } } } }',
          { f: [{ sha256: sha256(bytes), size: bytes.length, name: 'big.bin' }] },
        )
      ).checkUploads;
      expect(answer!.status).toBe('UPLOAD');
      expect(answer!.upload.receivedBytes).toBeGreaterThanOrEqual(5 * 2 ** 20);
      const missing = answer!.upload.missing.reduce((n, s) => n + s.length, 0);

      const wire = countChunkPuts(api);
      const resumed = await uploadFile(api, file);
      expect(resumed.outcome).toBe('uploaded');
      expect(resumed.sentBytes).toBe(missing);
      expect(wire.bytes()).toBe(missing); // on the wire, not just in the SDK's count
      expect(allInside(wire.spans, answer!.upload.missing)).toBe(true);
      const original = await fetch(`${base}/assets/${resumed.asset.id}/original`, { headers: { authorization: `Bearer ${signUp.signUp.token}` } });
      const downloaded = Buffer.from(await original.arrayBuffer());
      expect(downloaded.length).toBe(bytes.length);
      expect(sha256(downloaded)).toBe(sha256(bytes));
    } finally {
      await files.remove();
    }
  }, 120_000);

  it('lets a client that retries ride out a server restart mid-upload', async () => {
    const files = await scratchDir();
    try {
      const base = `http://127.0.0.1:${port}`;
      const logIn = await new ApiClient(base).graphql<{ logIn: { token: string } }>(
        'mutation($e: String!, $p: String!) { logIn(email: $e, password: $p, device: { name: "camera", platform: "cli" }) { token } }',
        { e: 'kill@example.com', p: PASSWORD },
      );
      const api = new ApiClient(base, logIn.logIn.token);
      const { file, bytes } = await files.random('retry.bin', 16 * 2 ** 20);
      const victim = server!;
      let restarting: Promise<unknown> | undefined;
      const result = await uploadFile(api, file, {
        initialChunkBytes: 2 ** 20,
        parallel: 2,
        retries: 6,
        onProgress: ({ receivedBytes }) => {
          if (receivedBytes >= 4 * 2 ** 20 && !victim.killed) {
            victim.kill('SIGKILL');
            restarting = new Promise((r) => victim.once('exit', r)).then(async () => (server = await startServer()));
          }
        },
      });
      await restarting;
      expect(victim.signalCode).toBe('SIGKILL');
      expect(result.outcome).toBe('uploaded');
      const original = await fetch(`${base}/assets/${result.asset.id}/original`, { headers: { authorization: `Bearer ${logIn.logIn.token}` } });
      expect(sha256(Buffer.from(await original.arrayBuffer()))).toBe(sha256(bytes));
    } finally {
      await files.remove();
    }
  }, 120_000);
});
