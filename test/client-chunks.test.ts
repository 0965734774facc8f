import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../src/client/api-client.js';
import { ChunkSizer, plannedChunkBytes } from '../src/client/chunk-plan.js';
import { hashFile, hashFileAndChunks } from '../src/client/file-hashing.js';
import { sha256 } from './support/files.js';

const MiB = 2 ** 20;

describe('client: hashing a file with its chunk digests', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'pixshare-client-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('gives the file hash and one digest per planned chunk, the last one short', async () => {
    const bytes = randomBytes(5 * MiB + 12345);
    const file = path.join(dir, 'photo.bin');
    await writeFile(file, bytes);
    const { sha256: whole, chunks } = await hashFileAndChunks(file, MiB);
    expect(whole).toBe(sha256(bytes));
    // In any order: the digests come back from the thread pool as they are done.
    const byOffset = (a: string, b: string) => Number(a.split(':')[0]) - Number(b.split(':')[0]);
    expect([...chunks.keys()].sort(byOffset)).toEqual([0, 1, 2, 3, 4, 5].map((i) => `${i * MiB}:${i === 5 ? 12345 : MiB}`));
    for (const [key, digest] of chunks) {
      const [offset, length] = key.split(':').map(Number) as [number, number];
      expect(Buffer.from(digest).toString('hex')).toBe(sha256(bytes.subarray(offset, offset + length)));
    }
    expect(await hashFile(file)).toBe(sha256(bytes));
  });

  it('handles an empty file and the hash alone', async () => {
    const file = path.join(dir, 'empty.bin');
    await writeFile(file, Buffer.alloc(0));
    expect(await hashFileAndChunks(file, MiB)).toEqual({ sha256: sha256(Buffer.alloc(0)), chunks: new Map() });
    const other = path.join(dir, 'other.bin');
    await writeFile(other, randomBytes(3 * MiB));
    expect((await hashFileAndChunks(other, 0)).chunks.size).toBe(0);
  });
});

describe('client: chunk sizes (U5)', () => {
  it('plans 8 MiB chunks, smaller only when asked, and at most a quarter of a worker share for large files', () => {
    expect(plannedChunkBytes(256 * MiB)).toBe(8 * MiB);
    expect(plannedChunkBytes(5_000_000)).toBe(8 * MiB); // a photo goes whole
    expect(plannedChunkBytes(32 * MiB)).toBe(8 * MiB); // not sixteen 2 MiB chunks
    expect(plannedChunkBytes(256 * MiB, { initialChunkBytes: 64 * MiB })).toBe(16 * MiB);
    expect(plannedChunkBytes(256 * MiB, { initialChunkBytes: 64 * MiB, parallel: 1 })).toBe(64 * MiB);
    expect(plannedChunkBytes(256 * MiB, { initialChunkBytes: MiB })).toBe(MiB);
  });

  it('follows the measured rate within the limits, ignoring small swings', () => {
    const sizer = new ChunkSizer({ minChunkBytes: 256 * 1024, maxChunkBytes: 64 * MiB }, 8 * MiB, 3);
    sizer.record(8 * MiB, 3 * 1.5); // ideal ≈ 5.3 MiB: not worth a change
    expect(sizer.next()).toBe(8 * MiB);
    sizer.record(8 * MiB, 40); // a slow link: ~0.2 MiB/s
    expect(sizer.next()).toBeLessThan(4 * MiB);
    const slow = sizer.next();
    for (let i = 0; i < 5; i++) sizer.record(slow, slow / (100 * MiB)); // then fast: 100 MiB/s
    expect(sizer.next()).toBe(64 * MiB); // capped by the server's limit
    for (let i = 0; i < 20; i++) sizer.record(64 * MiB, 1000); // a crawl
    expect(sizer.next()).toBeLessThanOrEqual(512 * 1024); // within 2× of the ideal (the 256 KiB floor)
  });
});

describe('client: API requests', () => {
  it('reports an answer cut off mid-way as a network failure (a TypeError, which uploads retry)', async () => {
    const server = http.createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
      res.write('{"data":');
      setTimeout(() => res.socket?.destroy(), 20);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const error = await new ApiClient(`http://127.0.0.1:${port}`).graphql('{ __typename }').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TypeError);
      expect((error as Error).message).toMatch(/closed during the answer/);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
