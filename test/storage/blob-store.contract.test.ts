import { createCipheriv, createHash, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBlobDownloadHandler } from '../../src/http/blob-download.js';
import type { BlobStore } from '../../src/services/storage/blob-store.js';
import type { ByteRange } from '../../src/protocol/byte-ranges.js';
import { createBlobStore } from '../../src/services/storage/create-blob-store.js';
import { S3BlobStore } from '../../src/services/storage/s3-blob-store.js';
import { startS3rver } from '../support/s3rver.js';

const MiB = 1024 * 1024;

// ---------------------------------------------------------------------------------------
// Test bytes: a keystream (AES-CTR over zeros) is fast, reproducible from a seed and
// incompressible, so a stream can be regenerated for comparison instead of kept in memory.

function patternStream(size: number, seed: string): Readable {
  const cipher = createCipheriv('aes-256-ctr', createHash('sha256').update(seed).digest(), Buffer.alloc(16));
  const zeros = Buffer.alloc(256 * 1024);
  let left = size;
  return new Readable({
    read() {
      if (left === 0) return void this.push(null);
      const n = Math.min(left, zeros.length);
      left -= n;
      this.push(cipher.update(zeros.subarray(0, n)));
    },
  });
}

async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream as AsyncIterable<Buffer>) parts.push(part);
  return Buffer.concat(parts);
}

async function fingerprint(stream: Readable): Promise<{ sha256: string; length: number }> {
  const hash = createHash('sha256');
  let length = 0;
  for await (const part of stream as AsyncIterable<Buffer>) {
    hash.update(part);
    length += part.length;
  }
  return { sha256: hash.digest('hex'), length };
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const newKey = () => `blobs/${randomUUID()}`;

function shuffled<T>(items: T[]): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}

/** Splits [0, size) into chunks of varying sizes, the way a client adapting to its bandwidth would. */
function chunksOf(size: number, lengths: number[]): ByteRange[] {
  const chunks: ByteRange[] = [];
  for (let offset = 0, i = 0; offset < size; i++) {
    const length = Math.min(lengths[i % lengths.length]!, size - offset);
    chunks.push({ offset, length });
    offset += length;
  }
  return chunks;
}

/** Assembles the staged upload under a new key and checks the stored bytes are exactly `source`. */
async function expectAssembled(store: BlobStore, uploadId: string, source: Buffer, chunks: ByteRange[]): Promise<void> {
  const key = newKey();
  await store.assembleStaged(uploadId, { size: source.length, chunks, expectedSha256: sha256(source), key });
  expect(await fingerprint(await store.get(key))).toEqual({ sha256: sha256(source), length: source.length });
}

async function stageAll(store: BlobStore, uploadId: string, source: Buffer, chunks: ByteRange[]): Promise<void> {
  await Promise.all(
    shuffled(chunks).map((c) =>
      store.writeStagedChunk(uploadId, c.offset, c.length, Readable.from([source.subarray(c.offset, c.offset + c.length)]), {
        expectedSha256: sha256(source.subarray(c.offset, c.offset + c.length)),
      }),
    ),
  );
}

// ---------------------------------------------------------------------------------------

interface Harness {
  store: BlobStore;
  close(): Promise<void>;
}

/** The behaviour every driver owes the services, whatever it stores bytes in. */
function blobStoreContract<H extends Harness>(driver: string, open: () => Promise<H>, driverSpecific?: (harness: () => H) => void): void {
  describe(`BlobStore contract: ${driver}`, () => {
    let harness: H;
    let store: BlobStore;
    beforeAll(async () => {
      harness = await open();
      store = harness.store;
      await store.checkReady();
    });
    afterAll(async () => {
      await harness?.close();
    });

    describe('blobs', () => {
      const bigSize = 20 * MiB + 12_345; // not a multiple of any part or buffer size
      const bigKey = newKey();

      it('streams a 20 MiB object in and out byte for byte', async () => {
        const { size } = await store.put(bigKey, patternStream(bigSize, 'big'), { contentType: 'image/jpeg' });
        expect(size).toBe(bigSize);
        const expected = await fingerprint(patternStream(bigSize, 'big'));
        expect(await fingerprint(await store.get(bigKey))).toEqual(expected);
        expect(await store.stat(bigKey)).toEqual({ size: bigSize });
      });

      it('reads byte ranges of a large object', async () => {
        const source = await readAll(patternStream(bigSize, 'big'));
        const middle = { start: 9 * MiB - 7, end: 13 * MiB + 3 };
        for (const range of [{ start: 0, end: 0 }, middle, { start: bigSize - 1, end: bigSize - 1 }]) {
          const bytes = await readAll(await store.get(bigKey, range));
          expect(bytes.length).toBe(range.end - range.start + 1);
          expect(bytes.equals(source.subarray(range.start, range.end + 1))).toBe(true);
        }
      });

      it('refuses ranges outside the object', async () => {
        for (const range of [
          { start: 0, end: bigSize },
          { start: bigSize, end: bigSize + 10 },
          { start: 5, end: 4 },
          { start: -1, end: 3 },
          { start: 0.5, end: 3 },
        ]) {
          await expect(store.get(bigKey, range), JSON.stringify(range)).rejects.toMatchObject({ code: 'RANGE_NOT_SATISFIABLE' });
        }
      });

      it('stores small and empty objects, and overwrites atomically', async () => {
        const key = newKey();
        await store.put(key, Readable.from([Buffer.from('first version')]));
        expect((await readAll(await store.get(key))).toString()).toBe('first version');
        await store.put(key, Readable.from([Buffer.from('second')]));
        expect((await readAll(await store.get(key))).toString()).toBe('second');

        const empty = `${newKey()}/nested/empty`;
        expect(await store.put(empty, Readable.from([]))).toEqual({ size: 0 });
        expect((await readAll(await store.get(empty))).length).toBe(0);
        expect(await store.stat(empty)).toEqual({ size: 0 });
      });

      it('a body that fails midway leaves nothing under the key', async () => {
        const key = newKey();
        const failing = Readable.from(
          (async function* () {
            yield* patternStream(6 * MiB, 'partial'); // past one S3 part, so a multipart upload was under way
            throw new Error('client went away');
          })(),
        );
        await expect(store.put(key, failing)).rejects.toThrow('client went away');
        expect(await store.exists(key)).toBe(false);
      });

      it('stat, exists and delete (idempotent), then NOT_FOUND', async () => {
        const key = newKey();
        expect(await store.stat(key)).toBeNull();
        expect(await store.exists(key)).toBe(false);
        await store.put(key, Readable.from([Buffer.from('x')]));
        expect(await store.exists(key)).toBe(true);
        await store.delete(key);
        await store.delete(key);
        expect(await store.exists(key)).toBe(false);
        await expect(store.get(key)).rejects.toMatchObject({ code: 'NOT_FOUND' });
        await expect(store.get(key, { start: 0, end: 0 })).rejects.toMatchObject({ code: 'NOT_FOUND' });
      });

      it('refuses keys that could escape or collide', async () => {
        for (const key of ['', '../etc/passwd', 'a/../../b', '/abs', 'a\u0000b', 'a\\b', 'a//b', 'a/', './a', 'staging/x']) {
          await expect(store.put(key, Readable.from([Buffer.from('x')])), JSON.stringify(key)).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
          await expect(store.get(key)).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
          await expect(store.stat(key)).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
          await expect(store.delete(key)).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
        }
        await expect(store.writeStagedChunk('../up', 0, 1, Readable.from([Buffer.from('x')]))).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
        await expect(store.dropStaged('a/b')).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
      });

      it('signs URLs that a plain HTTP client can download', async () => {
        const key = newKey();
        const bytes = await readAll(patternStream(300_000, 'signed'));
        await store.put(key, Readable.from([bytes]));
        const url = await store.signedUrl(key, { expiresInSeconds: 60, downloadName: 'Été 2024 "beach".jpg', contentType: 'image/jpeg' });
        const response = await fetch(url);
        expect(response.status).toBe(200);
        const body = Buffer.from(await response.arrayBuffer());
        expect(body.length).toBe(bytes.length);
        expect(sha256(body)).toBe(sha256(bytes));
        expect(response.headers.get('content-disposition')).toContain("filename*=UTF-8''%C3%89t%C3%A9%202024%20%22beach%22.jpg");
      });
    });

    describe('staging', () => {
      const size = 12 * MiB + 777; // more than one S3 part (tests use 5 MiB parts)
      let source: Buffer;
      beforeAll(async () => {
        source = await readAll(patternStream(size, 'upload'));
      });

      it('assembles chunks written out of order and in parallel', async () => {
        const uploadId = randomUUID();
        const key = `blobs/${sha256(source)}-${randomUUID()}`;
        const chunks = chunksOf(size, [1 * MiB, 3 * MiB + 5, 512 * 1024, 2 * MiB - 3]);
        await stageAll(store, uploadId, source, chunks);

        // Re-sending received chunks, and an overlapping chunk with the same bytes, is harmless.
        const again = chunks[1]!;
        await store.writeStagedChunk(uploadId, again.offset, again.length, Readable.from([source.subarray(again.offset, again.offset + again.length)]));
        const overlap = { offset: 100, length: 2 * MiB };
        await store.writeStagedChunk(uploadId, overlap.offset, overlap.length, Readable.from([source.subarray(100, 100 + 2 * MiB)]));

        // Staged bytes can be read back across chunk boundaries (proofs of possession).
        const probe = { start: MiB - 10, end: 4 * MiB + 10 };
        expect((await readAll(await store.readStaged(uploadId, probe))).equals(source.subarray(probe.start, probe.end + 1))).toBe(true);

        const result = await store.assembleStaged(uploadId, { size, chunks: [...chunks, overlap], expectedSha256: sha256(source), key });
        expect(result).toEqual({ sha256: sha256(source), size });
        expect(await fingerprint(await store.get(key))).toEqual({ sha256: sha256(source), length: size });
        // Staging is gone once assembled.
        await expect(store.readStaged(uploadId, { start: 0, end: 0 })).rejects.toMatchObject({ code: 'NOT_FOUND' });
      });

      it('rejects chunk bodies shorter or longer than declared, or with the wrong digest', async () => {
        const uploadId = randomUUID();
        const piece = source.subarray(0, 64 * 1024);
        await expect(store.writeStagedChunk(uploadId, 0, piece.length + 1, Readable.from([piece]))).rejects.toMatchObject({
          code: 'CHUNK_LENGTH_MISMATCH',
        });
        await expect(store.writeStagedChunk(uploadId, 0, piece.length - 1, Readable.from([piece]))).rejects.toMatchObject({
          code: 'CHUNK_LENGTH_MISMATCH',
        });
        await expect(
          store.writeStagedChunk(uploadId, 0, piece.length, Readable.from([piece]), { expectedSha256: sha256(Buffer.from('other')) }),
        ).rejects.toMatchObject({ code: 'CHUNK_DIGEST_MISMATCH' });
        // A stream that fails midway rejects with its own error.
        const broken = new Readable({ read() { this.destroy(new Error('client went away')); } });
        await expect(store.writeStagedChunk(uploadId, 0, piece.length, broken)).rejects.toThrow('client went away');
        // One that failed before the store got it (a client gone while the server reserved the range).
        const failedEarly = new PassThrough();
        failedEarly.on('error', () => {});
        failedEarly.destroy(new Error('gone before the write began'));
        await new Promise((resolve) => setImmediate(resolve));
        await expect(store.writeStagedChunk(uploadId, 0, piece.length, failedEarly)).rejects.toThrow('gone before the write began');

        // The upload is still usable: the right bytes then assemble.
        const small = source.subarray(0, 200_000);
        await store.writeStagedChunk(uploadId, 0, small.length, Readable.from([small]), { expectedSha256: sha256(small) });
        const key = newKey();
        await store.assembleStaged(uploadId, { size: small.length, chunks: [{ offset: 0, length: small.length }], expectedSha256: sha256(small), key });
        expect(sha256(await readAll(await store.get(key)))).toBe(sha256(small));
      });

      it('on a digest mismatch writes nothing under the key and leaves a good blob there untouched', async () => {
        const good = source.subarray(0, 300_000);
        const goodKey = `blobs/${sha256(good)}-${randomUUID()}`;
        await store.put(goodKey, Readable.from([good]));

        // Someone stages other bytes but claims the good blob's hash and address.
        const forged = Buffer.from(good);
        forged[1234] = forged[1234]! ^ 0xff;
        const chunks = chunksOf(forged.length, [100_000]);
        const attempt = randomUUID();
        await stageAll(store, attempt, forged, chunks);
        const error = await store
          .assembleStaged(attempt, { size: forged.length, chunks, expectedSha256: sha256(good), key: goodKey })
          .catch((e: unknown) => e);
        expect(error).toMatchObject({ code: 'DIGEST_MISMATCH', details: { expected: sha256(good), actual: sha256(forged) } });
        expect(sha256(await readAll(await store.get(goodKey)))).toBe(sha256(good));

        // And at a fresh address nothing appears at all.
        const freshKey = newKey();
        await expect(
          store.assembleStaged(attempt, { size: forged.length, chunks, expectedSha256: sha256(good), key: freshKey }),
        ).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' });
        expect(await store.exists(freshKey)).toBe(false);

        // A declared size larger than what is staged is a mismatch too, not a hang or a short blob.
        await expect(
          store.assembleStaged(attempt, {
            size: forged.length + 10,
            chunks: [...chunks, { offset: forged.length, length: 10 }],
            expectedSha256: sha256(good),
            key: freshKey,
          }),
        ).rejects.toMatchObject({ code: expect.stringMatching(/DIGEST_MISMATCH|NOT_FOUND/) });
        expect(await store.exists(freshKey)).toBe(false);
        await store.dropStaged(attempt);
      });

      for (const early of [0, MiB / 2]) {
        it(`a chunk write racing assembly cannot change the bytes under the key (${early} bytes sent early)`, async () => {
          // A client re-sends a received range with other bytes, slowly, and completes the
          // upload meanwhile: the blob must hold verified bytes, before and after that write ends.
          const file = source.subarray(0, 3 * MiB);
          const chunks = chunksOf(file.length, [MiB]);
          const uploadId = randomUUID();
          const key = `blobs/${sha256(file)}-${randomUUID()}`;
          await stageAll(store, uploadId, file, chunks);

          let release!: () => void;
          const gate = new Promise<void>((resolve) => (release = resolve));
          const other = Buffer.alloc(MiB, 0xee);
          const slow = Readable.from(
            (async function* () {
              for (let at = 0; at < early; at += 64 * 1024) yield other.subarray(at, at + 64 * 1024);
              await gate;
              for (let at = early; at < MiB; at += 64 * 1024) yield other.subarray(at, at + 64 * 1024);
            })(),
          );
          const racing = store.writeStagedChunk(uploadId, 0, MiB, slow).then(
            () => 'written',
            (error: { code?: string }) => error.code ?? 'failed',
          );
          await new Promise((resolve) => setTimeout(resolve, 150)); // the write is under way

          const outcome = await store
            .assembleStaged(uploadId, { size: file.length, chunks, expectedSha256: sha256(file), key })
            .then(() => 'assembled', (error: { code?: string }) => error.code ?? 'failed');
          release();
          const raced = await racing;
          // Either the verified bytes are assembled (the racing write is then refused by fs,
          // or lands in S3 as a chunk of a dropped upload), or the changed bytes are caught
          // (fs once some were written; s3rver, whose PUTs are not atomic, likewise).
          expect(['assembled', 'DIGEST_MISMATCH']).toContain(outcome);
          expect(['CONFLICT', 'written']).toContain(raced);
          if (outcome === 'assembled') {
            expect(await fingerprint(await store.get(key))).toEqual({ sha256: sha256(file), length: file.length });
          } else {
            expect(await store.exists(key)).toBe(false);
          }
          await store.dropStaged(uploadId);
        });
      }

      it('refuses to assemble when the counted chunks leave a gap', async () => {
        const uploadId = randomUUID();
        const chunks = chunksOf(200_000, [50_000]);
        await stageAll(store, uploadId, source.subarray(0, 200_000), chunks);
        await expect(
          store.assembleStaged(uploadId, { size: 200_000, chunks: chunks.slice(1), expectedSha256: sha256(source.subarray(0, 200_000)), key: newKey() }),
        ).rejects.toMatchObject({ code: 'BAD_USER_INPUT', details: { missingFrom: 0 } });
        await store.dropStaged(uploadId);
      });

      it('succeeds when the key already holds the same content, also for two uploads at once', async () => {
        const file = source.subarray(0, 6 * MiB + 1);
        const key = `blobs/${sha256(file)}-${randomUUID()}`;
        const chunks = chunksOf(file.length, [2 * MiB]);
        const first = randomUUID();
        const second = randomUUID();
        const third = randomUUID();
        await Promise.all([stageAll(store, first, file, chunks), stageAll(store, second, file, chunks), stageAll(store, third, file, chunks)]);

        const opts = { size: file.length, chunks, expectedSha256: sha256(file), key };
        await store.assembleStaged(first, opts);
        await store.assembleStaged(second, opts); // key exists already
        await Promise.all([store.assembleStaged(third, opts), store.put(key, Readable.from([file]))]); // racing writers
        expect(await fingerprint(await store.get(key))).toEqual({ sha256: sha256(file), length: file.length });
      });

      it('assembles an empty file', async () => {
        const key = newKey();
        const empty = sha256(Buffer.alloc(0));
        await store.assembleStaged(randomUUID(), { size: 0, chunks: [], expectedSha256: empty, key });
        expect(await store.stat(key)).toEqual({ size: 0 });
      });

      it('readStaged refuses what is not staged', async () => {
        await expect(store.readStaged(randomUUID(), { start: 0, end: 0 })).rejects.toMatchObject({ code: 'NOT_FOUND' });
        const uploadId = randomUUID();
        await store.writeStagedChunk(uploadId, 0, 1000, Readable.from([source.subarray(0, 1000)]));
        await expect(store.readStaged(uploadId, { start: 500, end: 1000 })).rejects.toMatchObject({ code: 'RANGE_NOT_SATISFIABLE' });
        await store.dropStaged(uploadId);
      });

      it('dropStaged is idempotent', async () => {
        const uploadId = randomUUID();
        await store.dropStaged(uploadId); // never staged
        await store.writeStagedChunk(uploadId, 0, 10, Readable.from([source.subarray(0, 10)]));
        await store.dropStaged(uploadId);
        await store.dropStaged(uploadId);
        await expect(store.readStaged(uploadId, { start: 0, end: 9 })).rejects.toMatchObject({ code: 'NOT_FOUND' });
      });
    });

    driverSpecific?.(() => harness);
  });
}

// ---------------------------------------------------------------------------------------
// The filesystem driver, with its download route served by a real HTTP server.

const signingSecret = 'test-secret-not-for-production';

blobStoreContract(
  'fs',
  async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'pixshare-blobs-'));
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const store = createBlobStore({ driver: 'fs', root, publicBaseUrl: baseUrl, signingSecret });
    const handle = createBlobDownloadHandler({ store, signingSecret });
    server.on('request', (req, res) => {
      handle(req, res)
        .then((handled) => {
          if (!handled) res.writeHead(404).end();
        })
        .catch(() => (res.headersSent ? res.destroy() : res.writeHead(500).end()));
    });
    return {
      store,
      baseUrl,
      root,
      async close() {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
        await store.close();
        await rm(root, { recursive: true, force: true });
      },
    };
  },
  (harness) => {
    describe('running hash of the received prefix (noteReceived)', () => {
      const file = Buffer.from(Array.from({ length: 6 * MiB }, (_, i) => (i * 31 + (i >> 12)) % 256));
      const chunks = chunksOf(file.length, [MiB, MiB / 2, 2 * MiB]);
      const write = (uploadId: string, chunk: ByteRange, bytes = file) =>
        harness().store.writeStagedChunk(uploadId, chunk.offset, chunk.length, Readable.from([bytes.subarray(chunk.offset, chunk.offset + chunk.length)]), {
          expectedSha256: sha256(bytes.subarray(chunk.offset, chunk.offset + chunk.length)),
        });

      it('folds chunks as they are counted, in any order, and assembles the same verified blob', async () => {
        const { store } = harness();
        const uploadId = randomUUID();
        const received: ByteRange[] = [];
        for (const chunk of shuffled(chunks)) {
          await write(uploadId, chunk);
          received.push(chunk);
          store.noteReceived!(uploadId, received);
        }
        const key = newKey();
        // The folds were used: assembly continued the running hash instead of starting over.
        const digests = (store as unknown as { digests: { finish: (...args: unknown[]) => Promise<unknown> } }).digests;
        const finish = digests.finish.bind(digests);
        const froms: unknown[] = [];
        digests.finish = (...args: unknown[]) => (froms.push(args[2]), finish(...args));
        await new Promise((resolve) => setTimeout(resolve, 200)); // the last fold ends
        await expect(store.assembleStaged(uploadId, { size: file.length, chunks, expectedSha256: sha256(file), key })).resolves.toEqual({ sha256: sha256(file), size: file.length });
        expect(froms).toEqual([file.length]);
        expect(await fingerprint(await store.get(key))).toEqual({ sha256: sha256(file), length: file.length });
      });

      it('hashes a file sent as one chunk once: the chunk digest pass starts the running hash', async () => {
        const { store } = harness();
        const uploadId = randomUUID();
        const whole = { offset: 0, length: file.length };
        const digests = (store as unknown as { digests: Record<'finish' | 'fold', (...args: unknown[]) => Promise<unknown>> }).digests;
        const calls: string[] = [];
        for (const name of ['finish', 'fold'] as const) {
          const original = digests[name].bind(digests);
          digests[name] = (...args: unknown[]) => (calls.push(`${name} from ${String(args[2])}`), original(...args));
        }
        await write(uploadId, whole);
        store.noteReceived!(uploadId, [whole]);
        await expectAssembled(store, uploadId, file, [whole]);
        // Nothing read again: no fold, and assembly's finish starts at the end of the file.
        expect(calls).toEqual([`finish from ${file.length}`]);
      });

      it('does not trust the first chunk pass once another writer touched its bytes', async () => {
        // A writer whose reservation lapsed writes other bytes over a verified whole-file chunk and
        // its connection drops half-way: the bytes on disk are no longer those hashed, and assembly must see it.
        const { store } = harness();
        const uploadId = randomUUID();
        const whole = { offset: 0, length: file.length };
        await write(uploadId, whole);
        const other = Buffer.alloc(file.length, 0xee);
        const cutOff = Readable.from(
          (async function* () {
            // Pieces, then a pause: the verifier holds back only the latest, so the others reach the file.
            for (let at = 0; at < 2 * MiB; at += 256 * 1024) yield other.subarray(at, at + 256 * 1024);
            await new Promise((resolve) => setTimeout(resolve, 100));
            throw Object.assign(new Error('connection reset'), { code: 'ECONNRESET' });
          })(),
        );
        await expect(store.writeStagedChunk(uploadId, 0, file.length, cutOff, { expectedSha256: sha256(file) })).rejects.toThrow();
        store.noteReceived!(uploadId, [whole]);
        await new Promise((resolve) => setTimeout(resolve, 200));
        await expect(store.assembleStaged(uploadId, { size: file.length, chunks: [whole], expectedSha256: sha256(file), key: newKey() })).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' });
        await store.dropStaged(uploadId);
      });

      it('refuses a write into folded bytes, so they stay as hashed', async () => {
        const { store } = harness();
        const uploadId = randomUUID();
        for (const chunk of chunks) await write(uploadId, chunk);
        store.noteReceived!(uploadId, chunks.slice(0, 2));
        const other = Buffer.alloc(file.length, 0xee);
        await expect(write(uploadId, chunks[1]!, other)).rejects.toMatchObject({ code: 'CONFLICT' });
        // Bytes past the folded prefix may still be written (the caller's reservations decide).
        await write(uploadId, chunks[2]!);
        await expectAssembled(store, uploadId, file, chunks);
      });

      it('stops a writer whose reservation lapsed when its range is folded', async () => {
        // Writer A (other bytes, stalled) started before writer B delivered the verified chunk.
        const { store } = harness();
        const uploadId = randomUUID();
        let release!: () => void;
        const gate = new Promise<void>((resolve) => (release = resolve));
        const other = Buffer.alloc(MiB, 0xee);
        const stalled = store
          .writeStagedChunk(
            uploadId,
            0,
            MiB,
            Readable.from(
              (async function* () {
                // Two pieces: the verifier holds back the latest, so the first reaches the file.
                yield other.subarray(0, 256 * 1024);
                yield other.subarray(256 * 1024, 512 * 1024);
                await gate;
                yield other.subarray(512 * 1024);
              })(),
            ),
          )
          .then(() => 'written', (error: { code?: string }) => error.code ?? 'failed');
        await new Promise((resolve) => setTimeout(resolve, 100)); // A's first bytes are on disk
        for (const chunk of chunks) await write(uploadId, chunk);
        store.noteReceived!(uploadId, chunks);
        release();
        expect(await stalled).toBe('CONFLICT');
        await expectAssembled(store, uploadId, file, chunks);
      });

      it('folds nothing past a gap, and starts afresh after dropStaged', async () => {
        const { store } = harness();
        const uploadId = randomUUID();
        for (const chunk of chunks.slice(1)) await write(uploadId, chunk);
        store.noteReceived!(uploadId, chunks.slice(1)); // byte 0 is missing: nothing to fold
        await write(uploadId, chunks[0]!); // still writable
        store.noteReceived!(uploadId, chunks);
        await store.dropStaged(uploadId);
        // The same id again, with other content: the old running hash must not leak into it.
        const again = Buffer.from(file).reverse();
        for (const chunk of chunks) await write(uploadId, chunk, again);
        store.noteReceived!(uploadId, chunks); // folded afresh, from byte 0 of the new content
        await new Promise((resolve) => setTimeout(resolve, 200));
        await expectAssembled(store, uploadId, again, chunks);
      });
    });

    it('puts staging back when assembly fails after sealing it, so a retry needs nothing sent again', async () => {
      const { store, root } = harness();
      const file = Buffer.from(Array.from({ length: 3 * MiB }, (_, i) => (i * 7) % 251));
      const chunks = chunksOf(file.length, [MiB]);
      const uploadId = randomUUID();
      await stageAll(store, uploadId, file, chunks);
      // The key's parent path is a file: the rename into place fails (CONFLICT) after hashing.
      const parent = `blobs/${randomUUID()}`;
      await store.put(parent, Readable.from([Buffer.from('x')]));
      // And while it hashes, a chunk write that could not be stopped makes a new staging file:
      // it holds nothing that counted, so it must not win over the sealed one.
      const digests = (store as unknown as { digests: { finish: (...args: unknown[]) => Promise<unknown> } }).digests;
      const finish = digests.finish.bind(digests);
      digests.finish = async (...args: unknown[]) => {
        await writeFile(path.join(root, 'staging', uploadId), Buffer.from('a stray chunk'));
        return finish(...args);
      };
      try {
        await expect(store.assembleStaged(uploadId, { size: file.length, chunks, expectedSha256: sha256(file), key: `${parent}/child` })).rejects.toMatchObject({ code: 'CONFLICT' });
      } finally {
        digests.finish = finish;
      }
      expect(await readdir(path.join(root, 'staging'))).toEqual([uploadId]);
      await expectAssembled(store, uploadId, file, chunks);
    });

    it('finishes an assembly that died half-way (sealed file left, no staging file)', async () => {
      const { store, root } = harness();
      const file = Buffer.from(Array.from({ length: 2 * MiB }, (_, i) => (i * 13) % 251));
      const chunks = chunksOf(file.length, [MiB]);
      const uploadId = randomUUID();
      await stageAll(store, uploadId, file, chunks);
      await rename(path.join(root, 'staging', uploadId), path.join(root, 'staging', `${uploadId}.assembling`)); // as at a crash
      await expectAssembled(store, uploadId, file, chunks);
    });

    it('leaves no temporary files behind after everything above', async () => {
      expect(await readdir(path.join(harness().root, 'tmp'))).toEqual([]);
      // Nor stranded sealed files of failed assemblies.
      expect((await readdir(path.join(harness().root, 'staging'))).filter((name) => name.endsWith('.assembling'))).toEqual([]);
    });

    describe('download route', () => {
      const bytes = Buffer.from(Array.from({ length: 5000 }, (_, i) => i % 251));
      let key: string;
      let sign: (opts?: { expiresInSeconds?: number; downloadName?: string }) => Promise<string>;
      beforeAll(async () => {
        const { store } = harness();
        key = newKey();
        await store.put(key, Readable.from([bytes]));
        sign = (opts = {}) => store.signedUrl(key, { expiresInSeconds: opts.expiresInSeconds ?? 60, downloadName: opts.downloadName });
      });

      it('serves GET and HEAD with length, ranges and caching headers', async () => {
        const url = await sign({ downloadName: 'photo.jpg' });
        const head = await fetch(url, { method: 'HEAD' });
        expect(head.status).toBe(200);
        expect(head.headers.get('content-length')).toBe('5000');
        expect(head.headers.get('accept-ranges')).toBe('bytes');
        expect(head.headers.get('cache-control')).toMatch(/^private, max-age=(59|60)$/);
        expect(head.headers.get('content-disposition')).toBe(`attachment; filename="photo.jpg"; filename*=UTF-8''photo.jpg`);

        const cases: [string, number, number][] = [
          ['bytes=0-0', 0, 0],
          ['bytes=100-199', 100, 199],
          ['bytes=4990-', 4990, 4999],
          ['bytes=-10', 4990, 4999],
          ['bytes=4000-99999', 4000, 4999],
        ];
        for (const [range, start, end] of cases) {
          const response = await fetch(url, { headers: { range } });
          expect(response.status, range).toBe(206);
          expect(response.headers.get('content-range')).toBe(`bytes ${start}-${end}/5000`);
          expect(Buffer.from(await response.arrayBuffer()).equals(bytes.subarray(start, end + 1))).toBe(true);
        }

        const unsatisfiable = await fetch(url, { headers: { range: 'bytes=5000-5001' } });
        expect(unsatisfiable.status).toBe(416);
        expect(unsatisfiable.headers.get('content-range')).toBe('bytes */5000');
        expect((await unsatisfiable.json()) as unknown).toMatchObject({ error: { code: 'RANGE_NOT_SATISFIABLE' } });

        const ignored = await fetch(url, { headers: { range: 'bytes=0-1,5-6' } }); // multi-range: whole file
        expect(ignored.status).toBe(200);
        expect(Buffer.from(await ignored.arrayBuffer()).equals(bytes)).toBe(true);
      });

      it('refuses tampered, expired and foreign URLs with stable codes', async () => {
        const { store, baseUrl } = harness();
        const url = new URL(await sign());
        const errorOf = async (target: string | URL, init?: RequestInit) => {
          const response = await fetch(target, init);
          return { status: response.status, body: (await response.json()) as { error: { code: string; message: string } } };
        };

        const otherKey = new URL(url);
        otherKey.pathname = `/blobs/${newKey()}`;
        const longer = new URL(url);
        longer.searchParams.set('exp', String(Number(url.searchParams.get('exp')) + 3600));
        const renamed = new URL(url);
        renamed.searchParams.set('name', 'evil.html');
        const retyped = new URL(url);
        retyped.searchParams.set('type', 'text/html');
        const unsigned = new URL(url);
        unsigned.searchParams.delete('sig');
        const otherSecret = new URL(
          await createBlobStore({ driver: 'fs', root: tmpdir(), publicBaseUrl: baseUrl, signingSecret: 'another' }).signedUrl(key, {
            expiresInSeconds: 60,
          }),
        );
        for (const tampered of [otherKey, longer, renamed, retyped, unsigned, otherSecret]) {
          expect(await errorOf(tampered), tampered.href).toMatchObject({ status: 403, body: { error: { code: 'INVALID_SIGNATURE' } } });
        }

        const expiredUrl = await sign({ expiresInSeconds: 1 });
        await new Promise((resolve) => setTimeout(resolve, 2100));
        expect(await errorOf(expiredUrl)).toMatchObject({ status: 410, body: { error: { code: 'URL_EXPIRED' } } });

        expect(await errorOf(url, { method: 'POST' })).toMatchObject({ status: 405, body: { error: { code: 'METHOD_NOT_ALLOWED' } } });

        const gone = newKey();
        await store.put(gone, Readable.from([Buffer.from('bye')]));
        const goneUrl = await store.signedUrl(gone, { expiresInSeconds: 60 });
        await store.delete(gone);
        expect(await errorOf(goneUrl)).toMatchObject({ status: 404, body: { error: { code: 'NOT_FOUND' } } });

        const notOurs = await fetch(`${baseUrl}/elsewhere`);
        expect(notOurs.status).toBe(404); // the handler answered false; the test server's fallback replied
      });

      it('survives clients that abort mid-download without leaking file handles', async () => {
        const { store } = harness();
        const bigKey = newKey();
        await store.put(bigKey, patternStream(8 * MiB, 'abort'));
        const url = new URL(await store.signedUrl(bigKey, { expiresInSeconds: 60 }));
        const canCount = existsSync('/proc/self/fd');
        const openFiles = async () => (canCount ? (await readdir('/proc/self/fd')).length : 0);
        const before = await openFiles();

        for (let i = 0; i < 5; i++) {
          await new Promise<void>((resolve, reject) => {
            const request = http.get(url, (response) => {
              response.once('data', () => {
                request.destroy();
                resolve();
              });
            });
            request.on('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' ? resolve() : reject(error)));
          });
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
        expect(await openFiles()).toBeLessThanOrEqual(before);
        // And the route still answers.
        const response = await fetch(url, { headers: { range: 'bytes=0-9' } });
        expect(response.status).toBe(206);
        expect((await response.arrayBuffer()).byteLength).toBe(10);
      });
    });
  },
);

// ---------------------------------------------------------------------------------------
// The S3 driver against s3rver.

blobStoreContract(
  's3',
  async () => {
    const s3 = await startS3rver();
    const store = new S3BlobStore({
      endpoint: s3.endpoint,
      region: s3.region,
      bucket: s3.bucket,
      accessKeyId: s3.accessKeyId,
      secretAccessKey: s3.secretAccessKey,
      forcePathStyle: true,
      partSize: 5 * MiB, // the minimum, so modest test files already take the multipart path
    });
    return {
      store,
      s3,
      async close() {
        await store.close();
        await s3.close();
      },
    };
  },
  (harness) => {
    it('checkReady names the bucket and endpoint it cannot reach', async () => {
      const { s3 } = harness();
      const store = createBlobStore({ ...s3, driver: 's3', bucket: 'no-such-bucket', forcePathStyle: true });
      await expect(store.checkReady()).rejects.toThrow(`S3 bucket "no-such-bucket" is not reachable at ${s3.endpoint}`);
      await store.close();
    });

    it('presigned URLs carry the download name and content type', async () => {
      const { store } = harness();
      const key = newKey();
      await store.put(key, Readable.from([Buffer.from('hello')]));
      const response = await fetch(await store.signedUrl(key, { expiresInSeconds: 60, downloadName: 'a b.jpg', contentType: 'image/jpeg' }));
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('image/jpeg');
      expect(response.headers.get('content-disposition')).toBe(`attachment; filename="a b.jpg"; filename*=UTF-8''a%20b.jpg`);
      expect(await response.text()).toBe('hello');
    });
  },
);
