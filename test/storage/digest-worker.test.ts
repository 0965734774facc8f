import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DigestWorker } from '../../src/services/storage/digest-worker.js';

const MiB = 2 ** 20;
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

describe('DigestWorker (the fs store digest thread)', () => {
  let dir: string;
  let file: string;
  const bytes = randomBytes(3 * MiB + 777);
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'pixshare-digest-'));
    file = path.join(dir, 'staged');
    await writeFile(file, bytes);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('hashes a range by path or through an open descriptor, and says how many bytes there were', async () => {
    const digests = new DigestWorker();
    try {
      expect(await digests.range(file, MiB, 2 * MiB + 5)).toEqual({ sha256: sha256(bytes.subarray(MiB, 2 * MiB + 5)), read: MiB + 5 });
      const handle = await open(file, 'r');
      try {
        expect(await digests.range(handle.fd, 0, bytes.length)).toEqual({ sha256: sha256(bytes), read: bytes.length });
      } finally {
        await handle.close();
      }
      // Past the end: fewer bytes, which the caller treats as a mismatch.
      expect((await digests.range(file, bytes.length - 10, bytes.length + 10)).read).toBe(10);
    } finally {
      await digests.close();
    }
  });

  it('keeps a running hash across folds and finishes it with the rest', async () => {
    const digests = new DigestWorker();
    try {
      await digests.fold('upload-a', file, 0, MiB);
      await digests.fold('upload-a', file, MiB, 2 * MiB);
      await expect(digests.fold('upload-a', file, 3 * MiB, bytes.length)).rejects.toThrow(/not 3145728/); // out of order
      expect(await digests.finish('upload-a', file, 2 * MiB, bytes.length)).toEqual({ sha256: sha256(bytes), read: bytes.length });
    } finally {
      await digests.close();
    }
  });

  it('survives its thread dying: requests in flight fail, the next ones start a new thread and hash from scratch', async () => {
    const digests = new DigestWorker();
    try {
      await digests.fold('upload-b', file, 0, 2 * MiB);
      const thread = (digests as unknown as { worker: { terminate(): Promise<number> } }).worker;
      const inFlight = digests.range(file, 0, bytes.length);
      await thread.terminate();
      await expect(inFlight).rejects.toThrow(/digest thread stopped/);
      // The running hash died with the thread; finishing from 2 MiB falls back to hashing it all.
      expect(await digests.finish('upload-b', file, 2 * MiB, bytes.length)).toEqual({ sha256: sha256(bytes), read: bytes.length });
    } finally {
      await digests.close();
    }
  });

  it('refuses work once closed', async () => {
    const digests = new DigestWorker();
    await digests.range(file, 0, 10);
    await digests.close();
    await expect(digests.range(file, 0, 10)).rejects.toThrow(/closed/);
  });
});
