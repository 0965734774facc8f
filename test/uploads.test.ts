import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ApiClient, ApiError } from '../src/client/api-client.js';
import { checkFiles, uploadFile } from '../src/client/upload-file.js';
import { blobKey } from '../src/services/blobs.js';
import { topics } from '../src/services/events.js';
import { ChallengeTokens } from '../src/services/uploads/challenge-tokens.js';
import type { TestApp } from './support/app.js';
import { allInside, countChunkPuts, download, newClient, proofFor, scratchDir, sha256, startAppOn } from './support/files.js';

const MiB = 2 ** 20;
const CHECK = `mutation($files: [CheckFileInput!]!) { checkUploads(files: $files) {
  sha256 status asset { id name } challenge { id nonce ranges { offset length } expiresAt }
  upload { id state size receivedBytes missing { offset length } limits { minChunkBytes maxChunkBytes } }
  error { code message } } }`;

type CheckAnswer = {
  sha256: string;
  status: 'EXISTS' | 'PROOF_REQUIRED' | 'UPLOAD' | 'REFUSED';
  asset: { id: string; name: string } | null;
  challenge: { id: string; nonce: string; ranges: { offset: number; length: number }[] } | null;
  upload: { id: string; state: string; size: number; receivedBytes: number; missing: { offset: number; length: number }[]; limits: { minChunkBytes: number; maxChunkBytes: number } } | null;
  error: { code: string; message: string } | null;
};

async function check(api: ApiClient, files: { sha256: string; size: number; name: string; folder?: string }[]): Promise<CheckAnswer[]> {
  return (await api.graphql<{ checkUploads: CheckAnswer[] }>(CHECK, { files })).checkUploads;
}

const CLAIM = 'mutation($id: ID!, $proof: String!) { claimUpload(challengeId: $id, proof: $proof) { id sha256 origin } }';

async function expectCode(promise: Promise<unknown>, code: string): Promise<ApiError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ApiError);
  expect((error as ApiError).code, (error as ApiError).message).toBe(code);
  return error as ApiError;
}

for (const driver of ['fs', 's3'] as const) {
  describe(`check and upload (${driver} storage)`, () => {
    let app: TestApp;
    let files: Awaited<ReturnType<typeof scratchDir>>;

    beforeAll(async () => {
      app = await startAppOn(driver, { PIXSHARE_MIN_CHUNK_SIZE: '16KiB', PIXSHARE_MAX_CHUNK_SIZE: '4MiB', PIXSHARE_CHALLENGE_SECONDS: '2' });
      files = await scratchDir();
    });
    afterAll(async () => {
      expect(app.loggedErrors).toEqual([]);
      await app.close();
      await files.remove();
    });

    it('uploads a new file in chunks, then finds it in the library (same user: nothing sent; other user: instant with proof)', async () => {
      const anna = await newClient(app);
      const { file, bytes } = await files.random('holiday.bin', 5 * MiB + 123);
      const first = await uploadFile(anna, file, { initialChunkBytes: 1 * MiB, parallel: 3 });
      expect(first.outcome).toBe('uploaded');
      expect(first.sentBytes).toBe(bytes.length);
      expect(first.asset).toMatchObject({ name: 'holiday.bin', sha256: sha256(bytes), size: bytes.length });
      const got = await download(app, anna.token, first.asset.id);
      expect(got.status).toBe(200);
      expect(sha256(got.bytes)).toBe(sha256(bytes));
      expect(got.bytes.length).toBe(bytes.length);

      const again = await uploadFile(anna, file);
      expect(again).toMatchObject({ outcome: 'exists', sentBytes: 0, asset: { id: first.asset.id } });

      const ben = await newClient(app);
      const instant = await uploadFile(ben, file, { name: 'from-ben.bin' });
      expect(instant.outcome).toBe('instant');
      expect(instant.sentBytes).toBe(0);
      expect(instant.asset.id).not.toBe(first.asset.id);
      const bens = await download(app, ben.token, instant.asset.id);
      expect(sha256(bens.bytes)).toBe(sha256(bytes));
      // Stored once.
      const [blob] = await app.database.sql<{ ref_count: number }[]>`select ref_count from blobs where sha256 = ${sha256(bytes)}`;
      expect(blob?.ref_count).toBe(2);
    });

    it('refuses a wrong, a reused and an expired proof; the client then uploads', async () => {
      const owner = await newClient(app);
      const { file, bytes } = await files.random('proof.bin', 300 * 1024);
      await uploadFile(owner, file);
      const other = await newClient(app);
      const entry = { sha256: sha256(bytes), size: bytes.length, name: 'proof.bin' };

      const [wrong] = await check(other, [entry]);
      expect(wrong!.status).toBe('PROOF_REQUIRED');
      expect(wrong!.challenge!.ranges.length).toBeGreaterThan(1);
      // A malformed proof is a mistake, not an answer: refused with a clear error, the challenge still usable.
      for (const malformed of ['', 'not hex', proofFor(bytes, wrong!.challenge!).slice(1), Buffer.from(proofFor(bytes, wrong!.challenge!), 'hex').toString('base64')]) {
        await expectCode(other.graphql(CLAIM, { id: wrong!.challenge!.id, proof: malformed }), 'BAD_USER_INPUT');
      }
      await expectCode(other.graphql(CLAIM, { id: wrong!.challenge!.id, proof: sha256(Buffer.from('just the hash')) }), 'PROOF_REJECTED');
      // Single use: even the right answer is refused now.
      await expectCode(other.graphql(CLAIM, { id: wrong!.challenge!.id, proof: proofFor(bytes, wrong!.challenge!) }), 'CHALLENGE_USED');

      const [late] = await check(other, [entry]);
      await new Promise((r) => setTimeout(r, 2100));
      await expectCode(other.graphql(CLAIM, { id: late!.challenge!.id, proof: proofFor(bytes, late!.challenge!) }), 'CHALLENGE_EXPIRED');

      // Someone else's challenge is not ours to answer.
      const [theirs] = await check(other, [entry]);
      const third = await newClient(app);
      await expectCode(third.graphql(CLAIM, { id: theirs!.challenge!.id, proof: proofFor(bytes, theirs!.challenge!) }), 'NOT_FOUND');

      const [right] = await check(other, [entry]);
      const claimed = await other.graphql<{ claimUpload: { sha256: string; origin: string } }>(CLAIM, { id: right!.challenge!.id, proof: proofFor(bytes, right!.challenge!) });
      expect(claimed.claimUpload).toMatchObject({ sha256: sha256(bytes), origin: 'instant' });

      // The fallback: a client whose proof was refused uploads the bytes instead.
      const fallback = await third.graphql<{ startUpload: { id: string; missing: { offset: number; length: number }[] } }>(
        'mutation($file: CheckFileInput!) { startUpload(file: $file) { id missing { offset length } } }',
        { file: entry },
      );
      expect(fallback.startUpload.missing).toEqual([{ offset: 0, length: bytes.length }]);
      const result = await third.putChunk<{ asset: { sha256: string } }>(fallback.startUpload.id, 0, bytes, createHash('sha256').update(bytes).digest());
      expect(result.asset.sha256).toBe(sha256(bytes));
    });

    it('claims an instant upload: the asset as the library shows it, filed, counted and announced; single use', async () => {
      const owner = await newClient(app);
      const { file, bytes } = await files.random('alike.jpg', 200 * 1024);
      const uploaded = await uploadFile(owner, file);
      const entry = { sha256: sha256(bytes), size: bytes.length, name: 'alike.jpg', folder: 'Trip' };
      const tokens = new ChallengeTokens(app.config.secret);
      const FACTS = 'id name sha256 size mimeType width height takenAt uploadedAt origin perceptualHash thumbnailStatus';
      const claimer = await newClient(app);
      const [answer] = await check(claimer, [entry]);
      expect(answer!.status).toBe('PROOF_REQUIRED');
      const challenge = answer!.challenge!;
      // On filesystem storage the check worked out the right answer and sealed it into the
      // challenge: the claim reads no bytes. On object storage the claim reads the ranges.
      const local = driver === 'fs';
      expect(tokens.open(challenge.id)).toMatchObject({ sha256: entry.sha256, expected: local ? proofFor(bytes, challenge) : null });
      const reads = local ? vi.spyOn(app.storage, 'localPath') : vi.spyOn(app.storage, 'get');
      const events = app.services.events.subscribe(topics.sync(claimer.userId));
      const event = events.next();
      const { claimUpload } = await claimer.graphql<{ claimUpload: { id: string; uploadedAt: string } }>(
        `mutation($id: ID!, $proof: String!) { claimUpload(challengeId: $id, proof: $proof) { ${FACTS} } }`,
        { id: challenge.id, proof: proofFor(bytes, challenge) },
      );
      expect(reads).toHaveBeenCalledTimes(local ? 0 : challenge.ranges.length);
      vi.restoreAllMocks();
      // The answer is the asset as the library shows it, with the facts of the stored file.
      const { asset: shown } = await claimer.graphql<{ asset: unknown }>(`query($id: ID!) { asset(id: $id) { ${FACTS} } }`, { id: claimUpload.id });
      expect(claimUpload).toEqual(shown);
      const { asset: original } = await owner.graphql<{ asset: Record<string, unknown> }>(`query($id: ID!) { asset(id: $id) { ${FACTS} } }`, { id: uploaded.asset.id });
      // (takenAt: the file has no EXIF time, so each client's declared file time stands.)
      const facts = ({ id: _id, uploadedAt: _at, origin: _origin, takenAt: _taken, ...rest }: Record<string, unknown>) => rest;
      expect(facts(claimUpload)).toEqual(facts(original));
      expect(claimUpload).toMatchObject({ sha256: sha256(bytes), name: 'alike.jpg', size: bytes.length, origin: 'instant' });
      // Announced to the claimer's dashboards, filed in its folder, counted against the quota.
      await expect(event).resolves.toMatchObject({ done: false, value: { userId: claimer.userId } });
      await events.return?.();
      const folders = await app.database.sql`select f.name from folder_assets fa join folders f on f.id = fa.folder_id where fa.asset_id = ${claimUpload.id}`;
      expect(folders.map((f) => f.name)).toEqual(['Trip']);
      expect((await claimer.graphql<{ me: { usedBytes: number } }>('{ me { usedBytes } }')).me.usedBytes).toBe(bytes.length);
      const [blob] = await app.database.sql<{ ref_count: number }[]>`select ref_count from blobs where sha256 = ${sha256(bytes)}`;
      expect(blob!.ref_count).toBe(2);
      // Single use.
      await expectCode(claimer.graphql(CLAIM, { id: challenge.id, proof: proofFor(bytes, challenge) }), 'CHALLENGE_USED');
      // Checking the same file again finds the asset: nothing added twice.
      const [again] = await check(claimer, [entry]);
      expect(again).toMatchObject({ status: 'EXISTS', asset: { id: claimUpload.id } });

      // Bytes collected between check and claim: refused, nothing recorded, and the client uploads instead.
      const late = await newClient(app);
      const [lateAnswer] = await check(late, [entry]);
      await app.database.sql`update blobs set stored = false where sha256 = ${entry.sha256}`;
      try {
        const error = await expectCode(late.graphql(CLAIM, { id: lateAnswer!.challenge!.id, proof: proofFor(bytes, lateAnswer!.challenge!) }), 'NOT_FOUND');
        expect(error.message).toMatch(/no longer stored/);
        const [recorded] = await app.database.sql`select count(*)::int as n from answered_challenges where user_id = ${late.userId}`;
        expect(recorded!.n).toBe(0);
        expect((await late.graphql<{ me: { usedBytes: number } }>('{ me { usedBytes } }')).me.usedBytes).toBe(0);
      } finally {
        await app.database.sql`update blobs set stored = true where sha256 = ${entry.sha256}`;
      }

      // A challenge is the server's own: an altered or made-up one is none (NOT_FOUND: the client uploads).
      const [fresh] = await check(await newClient(app), [entry]);
      const id = fresh!.challenge!.id;
      const altered = id.slice(0, 20) + (id[20] === 'A' ? 'B' : 'A') + id.slice(21);
      for (const made of [altered, 'pxc1_!', '6f1c2a34-9b7e-4c1d-8e2f-0a1b2c3d4e5f']) {
        await expectCode(owner.graphql(CLAIM, { id: made, proof: proofFor(bytes, fresh!.challenge!) }), 'NOT_FOUND');
      }
      await expectCode(owner.graphql(CLAIM, { id: 'x'.repeat(5000), proof: proofFor(bytes, fresh!.challenge!) }), 'BAD_USER_INPUT');
    });

    it('runs a claim that lost a deadlock again', async () => {
      const owner = await newClient(app);
      const { file, bytes } = await files.random('deadlock.bin', 30 * 1024);
      await uploadFile(owner, file);
      await app.mediaSettled(); // its background job uses transactions too
      const other = await newClient(app);
      const [answer] = await check(other, [{ sha256: sha256(bytes), size: bytes.length, name: 'deadlock.bin' }]);
      // PostgreSQL undid the transaction (as it does to a deadlock's victim); the second run goes through.
      const transaction = vi.spyOn(app.database.db, 'transaction').mockRejectedValueOnce(Object.assign(new Error('Failed query'), { cause: Object.assign(new Error('deadlock detected'), { code: '40P01' }) }));
      try {
        const claimed = await other.graphql<{ claimUpload: { sha256: string } }>(CLAIM, { id: answer!.challenge!.id, proof: proofFor(bytes, answer!.challenge!) });
        expect(claimed.claimUpload.sha256).toBe(sha256(bytes));
        expect(transaction).toHaveBeenCalledTimes(2);
      } finally {
        transaction.mockRestore();
      }
      // Anything else is not run again: it reaches the client as an error.
      const third = await newClient(app);
      const [another] = await check(third, [{ sha256: sha256(bytes), size: bytes.length, name: 'deadlock.bin' }]);
      const failing = vi.spyOn(app.database.db, 'transaction').mockRejectedValueOnce(Object.assign(new Error('Failed query'), { cause: Object.assign(new Error('unique violation'), { code: '23505' }) }));
      try {
        await expectCode(third.graphql(CLAIM, { id: another!.challenge!.id, proof: proofFor(bytes, another!.challenge!) }), 'INTERNAL_SERVER_ERROR');
        expect(failing).toHaveBeenCalledTimes(1);
      } finally {
        failing.mockRestore();
        app.loggedErrors.length = 0;
      }
    });

    it('leaves the answers of a large batch to the claims', async () => {
      const owner = await newClient(app);
      const many = await Promise.all(Array.from({ length: 17 }, (_, i) => files.random(`many${i}.bin`, 1000 + i)));
      for (const f of many) await uploadFile(owner, f.file);
      const other = await newClient(app);
      const answers = await check(other, many.map((f, i) => ({ sha256: sha256(f.bytes), size: f.bytes.length, name: `many${i}.bin` })));
      expect(answers.every((a) => a.status === 'PROOF_REQUIRED')).toBe(true);
      const tokens = new ChallengeTokens(app.config.secret);
      expect(answers.map((a) => tokens.open(a.challenge!.id)?.expected)).toEqual(answers.map(() => null));
      // The claim reads the ranges from the stored file: one open file (fs), a request per range (S3).
      const reads = driver === 'fs' ? vi.spyOn(app.storage, 'localPath') : vi.spyOn(app.storage, 'get');
      try {
        const claimed = await other.graphql<{ claimUpload: { sha256: string } }>(CLAIM, { id: answers[3]!.challenge!.id, proof: proofFor(many[3]!.bytes, answers[3]!.challenge!) });
        expect(claimed.claimUpload.sha256).toBe(sha256(many[3]!.bytes));
        expect(reads).toHaveBeenCalledTimes(driver === 'fs' ? 1 : answers[3]!.challenge!.ranges.length);
      } finally {
        vi.restoreAllMocks();
      }
    });

    it('resumes after the client stops half-way: only the missing bytes are sent again', async () => {
      const api = await newClient(app);
      const { file, bytes } = await files.random('resume.bin', 6 * MiB);
      const abort = new AbortController();
      await expect(
        uploadFile(api, file, {
          initialChunkBytes: 512 * 1024,
          parallel: 1,
          retries: 0,
          signal: abort.signal,
          onProgress: ({ receivedBytes }) => {
            if (receivedBytes >= 2 * MiB) abort.abort();
          },
        }),
      ).rejects.toThrow();
      const [answer] = await check(api, [{ sha256: sha256(bytes), size: bytes.length, name: 'resume.bin' }]);
      expect(answer!.status).toBe('UPLOAD');
      const missingBytes = answer!.upload!.missing.reduce((n, s) => n + s.length, 0);
      expect(answer!.upload!.receivedBytes).toBeGreaterThanOrEqual(2 * MiB);
      expect(missingBytes).toBe(bytes.length - answer!.upload!.receivedBytes);

      const wire = countChunkPuts(api);
      const resumed = await uploadFile(api, file, { initialChunkBytes: 768 * 1024 });
      expect(resumed.outcome).toBe('uploaded');
      expect(resumed.uploadId).toBe(answer!.upload!.id);
      expect(resumed.sentBytes).toBe(missingBytes);
      // What really crossed the wire: exactly the missing bytes, nothing the server had.
      expect(wire.bytes()).toBe(missingBytes);
      expect(allInside(wire.spans, answer!.upload!.missing)).toBe(true);
      expect(sha256((await download(app, api.token, resumed.asset.id)).bytes)).toBe(sha256(bytes));
    });

    it('stops every chunk of an attempt when one fails for good, and reports that failure', async () => {
      const api = await newClient(app);
      const { file } = await files.random('stopped.bin', 8 * 512 * 1024);
      const send = api.putChunk.bind(api);
      let started = 0;
      let inFlight = 0;
      api.putChunk = (async (...args: Parameters<ApiClient['putChunk']>) => {
        started++;
        // The sibling's chunk is slow, so it is still on its way when the other one fails.
        if (args[1] === 512 * 1024) throw new ApiError('CHUNK_OVERLAP', 'refused for this test');
        inFlight++;
        try {
          await new Promise((resolve) => setTimeout(resolve, 300));
          return await send(...args);
        } finally {
          inFlight--;
        }
      }) as ApiClient['putChunk'];
      await expect(uploadFile(api, file, { initialChunkBytes: 512 * 1024, parallel: 2 })).rejects.toMatchObject({ code: 'CHUNK_OVERLAP' });
      // When uploadFile gives up, nothing of the attempt is still sending behind the caller's back,
      // and no further chunk was started.
      expect(inFlight).toBe(0);
      expect(started).toBeLessThanOrEqual(2);
    });

    it('refuses options it cannot use, before touching the file or the server', async () => {
      const api = await newClient(app);
      for (const options of [{ parallel: 0 }, { parallel: Number.NaN }, { initialChunkBytes: 1.5 }, { targetChunkSeconds: 0 }, { retries: -1 }, { sha256: 'abc' }]) {
        await expect(uploadFile(api, '/nonexistent/file', options)).rejects.toBeInstanceOf(RangeError);
      }
    });

    it('hashes a file again when it changed since the hash it was given', async () => {
      const api = await newClient(app);
      const { file, bytes } = await files.random('edited.bin', 40 * 1024);
      const hashedFile = statSync(file);
      const first = await uploadFile(api, file, { sha256: sha256(bytes), hashedFile });
      expect(first.outcome).toBe('uploaded');
      // Edited after the sync list recorded its hash: the stale hash is not used.
      const edited = Buffer.concat([bytes, Buffer.from('more')]);
      await writeFile(file, edited);
      const second = await uploadFile(api, file, { sha256: sha256(bytes), hashedFile: { size: hashedFile.size, mtimeMs: hashedFile.mtimeMs } });
      expect(second).toMatchObject({ outcome: 'uploaded', asset: { sha256: sha256(edited) } });
      // Unchanged since: the hash is used as given.
      const unchanged = statSync(file);
      await expect(uploadFile(api, file, { sha256: sha256(edited), hashedFile: { size: unchanged.size, mtimeMs: unchanged.mtimeMs } })).resolves.toMatchObject({ outcome: 'exists' });
      await expect(uploadFile(api, file, { hashedFile: { size: -1, mtimeMs: 0 } })).rejects.toThrow(RangeError);
    });

    it('takes 8 chunks of one file in parallel, in any order, of changing sizes', async () => {
      const api = await newClient(app);
      const { bytes } = await files.random('parallel.bin', 8 * 512 * 1024 + 4321);
      const [answer] = await check(api, [{ sha256: sha256(bytes), size: bytes.length, name: 'parallel.bin' }]);
      const id = answer!.upload!.id;
      const sizes = [700, 300, 512, 512, 400, 624, 600, 448].map((k) => k * 1024);
      const spans: { offset: number; length: number }[] = [];
      let offset = 0;
      for (const [i, size] of sizes.entries()) {
        const length = i === sizes.length - 1 ? bytes.length - offset : size;
        spans.push({ offset, length });
        offset += length;
      }
      const results = await Promise.all(
        spans.reverse().map((s) => {
          const chunk = bytes.subarray(s.offset, s.offset + s.length);
          return api.putChunk<{ upload: { state: string }; asset: { id: string } | null }>(id, s.offset, chunk, createHash('sha256').update(chunk).digest());
        }),
      );
      const completed = results.filter((r) => r.asset);
      expect(completed).toHaveLength(1);
      expect(sha256((await download(app, api.token, completed[0]!.asset!.id)).bytes)).toBe(sha256(bytes));
    });

    it('ends with one blob and two assets when two users upload the same new file at once', async () => {
      const [a, b] = [await newClient(app), await newClient(app)];
      const { file, bytes } = await files.random('together.bin', 3 * MiB);
      const [ra, rb] = await Promise.all([uploadFile(a, file, { initialChunkBytes: MiB }), uploadFile(b, file, { initialChunkBytes: MiB })]);
      expect(ra.asset.id).not.toBe(rb.asset.id);
      const rows = await app.database.sql<{ ref_count: number }[]>`select ref_count from blobs where sha256 = ${sha256(bytes)}`;
      expect(rows).toEqual([{ ref_count: 2 }]);
      for (const [client, result] of [[a, ra], [b, rb]] as const) {
        expect(sha256((await download(app, client.token, result.asset.id)).bytes)).toBe(sha256(bytes));
      }
    });

    it('refuses bad chunks with clear codes and records nothing', async () => {
      const api = await newClient(app);
      const { bytes } = await files.random('bad.bin', 256 * 1024);
      const [answer] = await check(api, [{ sha256: sha256(bytes), size: bytes.length, name: 'bad.bin' }]);
      const id = answer!.upload!.id;
      const digest = (b: Uint8Array) => createHash('sha256').update(b).digest();
      const first = bytes.subarray(0, 64 * 1024);

      // Corrupted in transit: the digest does not match the bytes.
      const corrupted = Buffer.from(first);
      corrupted[100]! ^= 0xff;
      await expectCode(api.putChunk(id, 0, corrupted, digest(first)), 'CHUNK_DIGEST_MISMATCH');
      await expectCode(api.putChunk(id, 0, first, digest(bytes.subarray(1, 64 * 1024 + 1))), 'CHUNK_DIGEST_MISMATCH');
      // Past the declared size; over the chunk limit; too small in the middle.
      await expectCode(api.putChunk(id, 200 * 1024, bytes.subarray(0, 64 * 1024), digest(bytes.subarray(0, 64 * 1024))), 'CHUNK_OUT_OF_RANGE');
      const big = Buffer.alloc(4 * MiB + 1);
      await expectCode(api.putChunk(id, 0, big, digest(big)), 'CHUNK_TOO_LARGE');
      await expectCode(api.putChunk(id, 0, bytes.subarray(0, 1000), digest(bytes.subarray(0, 1000))), 'CHUNK_TOO_SMALL');
      let upload = (await api.graphql<{ upload: { receivedBytes: number; missing: unknown[] } }>('query($id: ID!) { upload(id: $id) { receivedBytes missing { offset length } } }', { id })).upload;
      expect(upload).toEqual({ receivedBytes: 0, missing: [{ offset: 0, length: bytes.length }] });

      // A received range may be sent again (harmless); different bytes over it are refused.
      await api.putChunk(id, 0, first, digest(first));
      await api.putChunk(id, 0, first, digest(first));
      const other = Buffer.alloc(64 * 1024, 7);
      await expectCode(api.putChunk(id, 0, other, digest(other)), 'CHUNK_OVERLAP');
      await expectCode(api.putChunk(id, 32 * 1024, bytes.subarray(32 * 1024, 96 * 1024), digest(bytes.subarray(32 * 1024, 96 * 1024))), 'CHUNK_OVERLAP');
      upload = (await api.graphql<{ upload: { receivedBytes: number; missing: unknown[] } }>('query($id: ID!) { upload(id: $id) { receivedBytes missing { offset length } } }', { id })).upload;
      expect(upload).toEqual({ receivedBytes: 64 * 1024, missing: [{ offset: 64 * 1024, length: bytes.length - 64 * 1024 }] });

      // Missing headers on the PUT route.
      const noDigest = await fetch(`${app.url}/uploads/${id}/chunks/0`, { method: 'PUT', headers: { authorization: `Bearer ${api.token}` }, body: new Uint8Array(first) });
      expect(noDigest.status).toBe(400);
      expect(((await noDigest.json()) as { error: { code: string } }).error.code).toBe('BAD_USER_INPUT');
    });

    it('frees the range of a chunk whose client went away mid-body, so a retry of another size goes through', async () => {
      const api = await newClient(app);
      const { bytes } = await files.random('dropped.bin', 2 * MiB);
      const [answer] = await check(api, [{ sha256: sha256(bytes), size: bytes.length, name: 'dropped.bin' }]);
      const id = answer!.upload!.id;
      // A PUT that declares 1 MiB, sends a quarter of it, and loses its connection.
      await new Promise<void>((resolve) => {
        const request = http.request(`${app.url}/uploads/${id}/chunks/0`, {
          method: 'PUT',
          headers: { authorization: `Bearer ${api.token}`, 'content-length': String(MiB), 'content-digest': `sha-256=:${createHash('sha256').update(bytes.subarray(0, MiB)).digest('base64')}:` },
        });
        request.on('error', () => resolve());
        request.write(bytes.subarray(0, MiB / 4), () => setTimeout(() => request.destroy(), 200));
      });
      // Without the client gone being noticed, the reservation lived on (renewed) and this was CHUNK_OVERLAP.
      let result: { upload: { receivedBytes: number } } | undefined;
      for (let attempt = 0; attempt < 50 && !result; attempt++) {
        const half = bytes.subarray(0, MiB / 2);
        result = await api.putChunk<{ upload: { receivedBytes: number } }>(id, 0, half, createHash('sha256').update(half).digest()).catch((error: ApiError) => {
          if (error.code !== 'CHUNK_OVERLAP') throw error;
          return new Promise<undefined>((resolve) => setTimeout(resolve, 100));
        });
      }
      expect(result?.upload.receivedBytes).toBe(MiB / 2);
    });

    it('survives clients that leave before sending any of the chunk, however early', async () => {
      const api = await newClient(app);
      const { bytes } = await files.random('left.bin', 2 * MiB);
      const [answer] = await check(api, [{ sha256: sha256(bytes), size: bytes.length, name: 'left.bin' }]);
      const id = answer!.upload!.id;
      const digest = `sha-256=:${createHash('sha256').update(bytes.subarray(0, MiB)).digest('base64')}:`;
      // Gone while the server authenticates, while it reserves the range, or as the store starts reading.
      for (const delayMs of [0, 0, 1, 2, 5, 10, 20]) {
        await new Promise<void>((resolve) => {
          const request = http.request(`${app.url}/uploads/${id}/chunks/0`, { method: 'PUT', headers: { authorization: `Bearer ${api.token}`, 'content-length': String(MiB), 'content-digest': digest } });
          request.on('error', () => resolve());
          request.on('response', () => resolve());
          request.flushHeaders();
          setTimeout(() => request.destroy(), delayMs);
        });
      }
      // Each reservation was let go: a chunk of another size goes through (the server is still up).
      let result: { upload: { receivedBytes: number } } | undefined;
      for (let attempt = 0; attempt < 50 && !result; attempt++) {
        const half = bytes.subarray(0, MiB / 2);
        result = await api.putChunk<{ upload: { receivedBytes: number } }>(id, 0, half, createHash('sha256').update(half).digest()).catch((error: ApiError) => {
          if (error.code !== 'CHUNK_OVERLAP') throw error;
          return new Promise<undefined>((resolve) => setTimeout(resolve, 100));
        });
      }
      expect(result?.upload.receivedBytes).toBe(MiB / 2);
    });

    it('discards an assembly that does not match the declared hash, and says so', async () => {
      const api = await newClient(app);
      const { bytes } = await files.random('liar.bin', 200 * 1024);
      const claimed = sha256(Buffer.from('some other file'));
      const [answer] = await check(api, [{ sha256: claimed, size: bytes.length, name: 'liar.bin' }]);
      const error = await expectCode(api.putChunk(answer!.upload!.id, 0, bytes, createHash('sha256').update(bytes).digest()), 'UPLOAD_DIGEST_MISMATCH');
      expect(error.details).toMatchObject({ expected: claimed, actual: sha256(bytes) });
      expect(await app.storage.exists(blobKey(claimed))).toBe(false);
      expect(await app.storage.exists(blobKey(sha256(bytes)))).toBe(false);
      const [again] = await check(api, [{ sha256: claimed, size: bytes.length, name: 'liar.bin' }]);
      expect(again!.status).toBe('UPLOAD');
      expect(again!.upload!.id).not.toBe(answer!.upload!.id);
    });

    it('keeps each user to their own sessions, assets and downloads', async () => {
      const owner = await newClient(app);
      const stranger = await newClient(app);
      const { file, bytes } = await files.random('private.bin', 128 * 1024);
      const [answer] = await check(owner, [{ sha256: sha256(bytes), size: bytes.length, name: 'private.bin' }]);
      const chunk = bytes.subarray(0, 64 * 1024);
      await expectCode(stranger.putChunk(answer!.upload!.id, 0, chunk, createHash('sha256').update(chunk).digest()), 'NOT_FOUND');
      await expectCode(stranger.graphql('query($id: ID!) { upload(id: $id) { id } }', { id: answer!.upload!.id }), 'NOT_FOUND');
      const done = await uploadFile(owner, file);
      await expectCode(stranger.graphql('query($id: ID!) { asset(id: $id) { id } }', { id: done.asset.id }), 'NOT_FOUND');
      const page = await stranger.graphql<{ assets: { totalCount: number } }>('{ assets { totalCount } }');
      expect(page.assets.totalCount).toBe(0);
      expect((await download(app, stranger.token, done.asset.id)).status).toBe(404);
      expect((await download(app, undefined, done.asset.id)).status).toBe(401);
      expect((await download(app, owner.token, done.asset.id)).status).toBe(200);
    });

    it('takes a chunk through the GraphQL multipart transport too', async () => {
      const api = await newClient(app);
      const { bytes } = await files.random('multipart.bin', 100 * 1024);
      const [answer] = await check(api, [{ sha256: sha256(bytes), size: bytes.length, name: 'multipart.bin' }]);
      const form = new FormData();
      form.set(
        'operations',
        JSON.stringify({
          query: 'mutation($id: ID!, $sha: String!, $chunk: File!) { commitChunk(uploadId: $id, offset: 0, sha256: $sha, chunk: $chunk) { upload { state missing { offset } } asset { sha256 } } }',
          variables: { id: answer!.upload!.id, sha: sha256(bytes), chunk: null },
        }),
      );
      form.set('map', JSON.stringify({ 0: ['variables.chunk'] }));
      form.set('0', new Blob([new Uint8Array(bytes)]), 'chunk');
      const response = await fetch(`${app.url}/graphql`, { method: 'POST', headers: { authorization: `Bearer ${api.token}` }, body: form });
      const body = (await response.json()) as { data: { commitChunk: { upload: { state: string; missing: unknown[] }; asset: { sha256: string } } } };
      expect(body.data.commitChunk).toEqual({ upload: { state: 'DONE', missing: [] }, asset: { sha256: sha256(bytes) } });
    });

    it('completes idempotently, and refuses to complete while bytes are missing', async () => {
      const api = await newClient(app);
      const { bytes } = await files.random('complete.bin', 128 * 1024);
      const [answer] = await check(api, [{ sha256: sha256(bytes), size: bytes.length, name: 'complete.bin' }]);
      const id = answer!.upload!.id;
      const COMPLETE = 'mutation($id: ID!) { completeUpload(uploadId: $id) { id sha256 } }';
      const early = await expectCode(api.graphql(COMPLETE, { id }), 'UPLOAD_NOT_OPEN');
      expect(early.details.missing).toEqual([{ offset: 0, length: bytes.length }]);
      const done = await api.putChunk<{ asset: { id: string } }>(id, 0, bytes, createHash('sha256').update(bytes).digest());
      const again = await api.graphql<{ completeUpload: { id: string; sha256: string } }>(COMPLETE, { id });
      expect(again.completeUpload).toEqual({ id: done.asset.id, sha256: sha256(bytes) });
      // A chunk re-sent after completion is harmless too.
      const late = await api.putChunk<{ upload: { state: string }; asset: { id: string } }>(id, 0, bytes, createHash('sha256').update(bytes).digest());
      expect(late).toMatchObject({ upload: { state: 'DONE' }, asset: { id: done.asset.id } });
    });

    it('recovers an upload whose staged bytes were lost, and does not revive a deleted asset', async () => {
      const api = await newClient(app);
      const { bytes } = await files.random('lost.bin', 128 * 1024);
      const [answer] = await check(api, [{ sha256: sha256(bytes), size: bytes.length, name: 'lost.bin' }]);
      const id = answer!.upload!.id;
      const half = bytes.subarray(0, 64 * 1024);
      await api.putChunk(id, 0, half, createHash('sha256').update(half).digest());
      // As after a crash in the middle of assembly: the interrupt list says complete, the bytes are gone.
      await app.storage.dropStaged(id);
      await app.database.sql`insert into upload_chunks (upload_id, "offset", length, sha256, state) values (${id}, ${64 * 1024}, ${64 * 1024}, ${'0'.repeat(64)}, 'received')`;
      const COMPLETE = 'mutation($id: ID!) { completeUpload(uploadId: $id) { id } }';
      await expectCode(api.graphql(COMPLETE, { id }), 'UPLOAD_NOT_OPEN');
      const [again] = await check(api, [{ sha256: sha256(bytes), size: bytes.length, name: 'lost.bin' }]);
      expect(again!.upload).toMatchObject({ id, receivedBytes: 0, missing: [{ offset: 0, length: bytes.length }] });
      const done = await api.putChunk<{ asset: { id: string } }>(id, 0, bytes, createHash('sha256').update(bytes).digest());
      expect(sha256((await download(app, api.token, done.asset.id)).bytes)).toBe(sha256(bytes));

      await api.graphql('mutation($id: ID!) { deleteAsset(id: $id) { id } }', { id: done.asset.id });
      await expectCode(api.graphql(COMPLETE, { id }), 'NOT_FOUND');
      expect((await api.graphql<{ assets: { totalCount: number } }>('{ assets { totalCount } }')).assets.totalCount).toBe(0);
    });

    it('answers malformed ids and cookies with clear errors, not server errors', async () => {
      const api = await newClient(app);
      const dashes = '-'.repeat(36);
      expect((await download(app, api.token, dashes)).status).toBe(404);
      const put = await fetch(`${app.url}/uploads/${dashes}/chunks/0`, { method: 'PUT', headers: { authorization: `Bearer ${api.token}`, 'content-digest': `sha-256=:${Buffer.alloc(32).toString('base64')}:` }, body: 'x' });
      expect(put.status).toBe(404);
      const cookie = await fetch(`${app.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', cookie: 'pixshare_session=%E0%A4' }, body: JSON.stringify({ query: '{ me { id } }' }) });
      expect(cookie.status).toBe(200);
      await expectCode(api.graphql('mutation { createFolder(name: "tab\\there") { id } }'), 'BAD_USER_INPUT');
    });

    it('answers every file of a batch, in order, including refusals', async () => {
      const api = await newClient(app);
      const { file, bytes } = await files.random('batch.bin', 70 * 1024);
      await uploadFile(api, file);
      const fresh = sha256(Buffer.from('fresh'));
      const answers = await check(api, [
        { sha256: sha256(bytes), size: bytes.length, name: 'batch.bin' },
        { sha256: fresh, size: 5, name: 'fresh.txt', folder: 'Notes' },
        { sha256: 'not-a-hash', size: 5, name: 'x' },
        { sha256: fresh, size: -1, name: 'negative' },
        { sha256: fresh, size: 5 * 2 ** 40, name: 'huge' },
        { sha256: fresh, size: 5, name: '' },
        // A folder name with a control character refuses this file only, not the batch.
        { sha256: sha256(Buffer.from('other')), size: 5, name: 'other.txt', folder: 'bell\u0007folder' },
      ]);
      expect(answers.map((a) => a.status)).toEqual(['EXISTS', 'UPLOAD', 'REFUSED', 'REFUSED', 'REFUSED', 'REFUSED', 'REFUSED']);
      expect(answers.slice(2).map((a) => a.error?.code)).toEqual(['BAD_USER_INPUT', 'BAD_USER_INPUT', 'FILE_TOO_LARGE', 'BAD_USER_INPUT', 'BAD_USER_INPUT']);
      // The SDK's batch check asks only for the asset id.
      const [known] = await checkFiles(api, [{ sha256: sha256(bytes), size: bytes.length, name: 'batch.bin' }]);
      expect(known).toMatchObject({ status: 'EXISTS', assetId: answers[0]!.asset!.id });
      // Asking again resumes the same session.
      const [again] = await check(api, [{ sha256: fresh, size: 5, name: 'fresh.txt' }]);
      expect(again!.upload!.id).toBe(answers[1]!.upload!.id);
    });
  });
}
