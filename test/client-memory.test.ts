import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ByteBudget } from '../src/client/byte-budget.js';
import { uploadFile } from '../src/client/upload-file.js';
import { startTestApp, type TestApp } from './support/app.js';
import { newClient, scratchDir, sha256 } from './support/files.js';

const MiB = 2 ** 20;

describe('client: a shared memory budget for chunks in flight', () => {
  it('hands out bytes in order and never more than the total', async () => {
    const budget = new ByteBudget(10);
    const first = await budget.take(6);
    const order: string[] = [];
    const second = budget.take(6).then((release) => (order.push('second'), release));
    const third = budget.take(3).then((release) => (order.push('third'), release));
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(order).toEqual([]); // the third fits, but waits its turn behind the second
    expect(budget.inUse).toBe(6);
    first();
    first(); // a second release gives nothing back twice
    const [releaseSecond, releaseThird] = await Promise.all([second, third]);
    expect(order).toEqual(['second', 'third']);
    expect(budget.inUse).toBe(9);
    const whole = budget.take(100); // more than the whole budget waits for all of it
    releaseSecond();
    expect(budget.inUse).toBe(3);
    releaseThird();
    (await whole)();
    expect(budget.inUse).toBe(0);
    expect(() => new ByteBudget(0)).toThrow(RangeError);
  });

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

  it('keeps three files of parallel chunks within 4 MiB together, and stores them byte-exact', async () => {
    const api = await newClient(app);
    const budget = new ByteBudget(4 * MiB);
    let inFlight = 0;
    let peak = 0;
    const put = api.putChunk.bind(api);
    api.putChunk = (async (...args: Parameters<typeof api.putChunk>) => {
      inFlight += args[2].length;
      peak = Math.max(peak, inFlight);
      try {
        return await put(...args);
      } finally {
        inFlight -= args[2].length;
      }
    }) as typeof api.putChunk;
    const made = await Promise.all([0, 1, 2].map(async (i) => ({ bytes: randomBytes(12 * MiB + i), file: '' })));
    for (const [i, m] of made.entries()) m.file = await files.write(`big-${i}.bin`, m.bytes);
    const results = await Promise.all(made.map((m) => uploadFile(api, m.file, { parallel: 4, memory: budget })));
    expect(peak).toBeLessThanOrEqual(4 * MiB);
    expect(budget.inUse).toBe(0);
    for (const [i, result] of results.entries()) {
      expect(result.outcome).toBe('uploaded');
      expect(result.asset.sha256).toBe(sha256(made[i]!.bytes));
      expect(Math.max(...result.chunkSizes)).toBeLessThanOrEqual(MiB); // a quarter of the budget
    }
  });
});
