import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uploadFile } from '../src/client/upload-file.js';
import { RedisPubSub } from '../src/services/pubsub.js';
import { startTestApp, type TestApp } from './support/app.js';
import { newClient, scratchDir } from './support/files.js';
import { Collected, wsClient } from './support/live.js';

/**
 * Live events through Redis (REDIS_URL). Needs a Redis server: runs when TEST_REDIS_URL names one
 * (`.ci/run` does, against the machine's Redis service); `npm test` alone skips it.
 */
const redisUrl = process.env.TEST_REDIS_URL;

describe.skipIf(!redisUrl)('live events through Redis', () => {
  let first: TestApp;
  let second: TestApp;
  let files: Awaited<ReturnType<typeof scratchDir>>;
  beforeAll(async () => {
    first = await startTestApp({ REDIS_URL: redisUrl! });
    second = await startTestApp({ REDIS_URL: redisUrl!, DATABASE_URL: (first.config.database as { url: string }).url });
    files = await scratchDir();
  });
  afterAll(async () => {
    await second?.close();
    await first?.close();
    await files?.remove();
    expect(first.loggedErrors).toEqual([]);
  });

  it('uses Redis, and publishes in a transaction only when it commits', async () => {
    expect(first.pubsub).toBeInstanceOf(RedisPubSub);
    const topic = `test:${Date.now()}`;
    const received: number[] = [];
    const stop = second.pubsub.on<{ n: number }>(topic, (event) => received.push(event.n));
    let beforeCommit: number[] = [];
    await first.database.db.transaction(async (tx) => {
      await first.pubsub.publishIn(tx, topic, { n: 1 });
      // Not before the commit: the change could not be read yet.
      await new Promise((resolve) => setTimeout(resolve, 100));
      beforeCommit = [...received];
    });
    await first.database.db
      .transaction(async (tx) => {
        await first.pubsub.publishIn(tx, topic, { n: 2 });
        throw new Error('roll back');
      })
      .catch(() => {});
    await first.database.db.transaction(async (tx) => first.pubsub.publishIn(tx, topic, { n: 3 }));
    for (let i = 0; i < 100 && received.length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(beforeCommit).toEqual([]);
    expect(received).toEqual([1, 3]);
    stop();
  });

  it('a dashboard on one instance follows a folder sync handled by the other', async () => {
    const owner = await newClient(first);
    const folderId = (await owner.graphql<{ createFolder: { id: string } }>('mutation { createFolder(name: "Over Redis") { id } }')).createFolder.id;
    const client = wsClient(second.url, owner.token);
    const live = new Collected<{ folderSyncStatus: { counts: { filesDone: number; filesPlanned: number } } }>(
      client.iterate({ query: 'subscription($id: ID!) { folderSyncStatus(folderId: $id) { counts { filesDone filesPlanned } } }', variables: { id: folderId } }),
    );
    await live.until(() => true);
    for (let i = 0; i < 3; i++) await uploadFile(owner, (await files.random(`redis-${i}.bin`, 50_000 + i)).file, { folder: 'Over Redis' });
    const done = await live.until((m) => m.data?.folderSyncStatus.counts.filesDone === 3);
    expect(done.data?.folderSyncStatus.counts.filesPlanned).toBe(3);
    await client.dispose();
  });
});
