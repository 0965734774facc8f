import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../src/client/api-client.js';
import { uploadFile } from '../src/client/upload-file.js';
import { makeHeic } from './media/make-heic.js';
import { photoLikeJpeg } from './media/photo-like.js';
import { freePort, PASSWORD } from './support/app.js';
import { createTestDatabase } from './support/database.js';
import { scratchDir } from './support/files.js';
import { startServerProcess, type ServerProcess } from './support/server-process.js';

/**
 * A server killed between an upload's completion and its background processing loses no job:
 * `src/main.ts` runs as its own process (A, which queues but runs no jobs, as an API-only
 * instance would), is SIGKILLed right after the uploads answered, and a second process (B) on
 * the same database and data directory makes the thumbnails.
 */
let database: Awaited<ReturnType<typeof createTestDatabase>>;
let dataDir: string;
let port: number;
let files: Awaited<ReturnType<typeof scratchDir>>;
const children = new Set<ChildProcess>();

beforeAll(async () => {
  database = await createTestDatabase();
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'pixshare-mediakill-'));
  port = await freePort();
  files = await scratchDir();
});
afterAll(async () => {
  for (const child of children) {
    child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 100));
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  await database.drop();
  await files.remove();
  await fs.rm(dataDir, { recursive: true, force: true });
});

async function start(env: Record<string, string> = {}): Promise<ServerProcess> {
  const server = await startServerProcess({ dataDir, port, env: { DATABASE_URL: database.url, ...env } });
  children.add(server.child);
  void server.exited.then(() => children.delete(server.child));
  return server;
}

describe('background processing survives the server being killed', () => {
  it('completes uploads before their thumbnails exist; a server started after a SIGKILL makes them', async () => {
    const a = await start({ PIXSHARE_RUN_JOBS: 'false' });
    const base = `http://127.0.0.1:${port}`;
    const email = `restart-${Date.now()}@example.com`;
    const { signUp } = await new ApiClient(base).graphql<{ signUp: { token: string } }>(
      'mutation($e: String!, $p: String!) { signUp(email: $e, password: $p, device: { name: "phone", platform: "ios" }) { token } }',
      { e: email, p: PASSWORD },
    );
    const api = new ApiClient(base, signUp.token);
    const jpeg = await uploadFile(api, await files.write('a.jpg', await photoLikeJpeg({ width: 2400, height: 1600, seed: 41 })));
    const heic = await uploadFile(api, await files.write('b.heic', await makeHeic({ image: await photoLikeJpeg({ width: 640, height: 480, seed: 42 }) })));
    expect([jpeg.asset.thumbnailStatus, heic.asset.thumbnailStatus]).toEqual(['pending', 'pending']);
    a.child.kill('SIGKILL');
    await a.exited;

    await start();
    const statuses = async () =>
      (await api.graphql<{ assets: { nodes: { id: string; thumbnailStatus: string; width: number | null }[] } }>('query { assets(first: 10) { nodes { id thumbnailStatus width } } }')).assets.nodes;
    await expect.poll(async () => (await statuses()).map((a) => a.thumbnailStatus).sort(), { timeout: 30_000, interval: 200 }).toEqual(['ready', 'ready']);
    expect((await statuses()).map((a) => a.width).sort()).toEqual([2400, 640]);
  }, 120_000);
});
