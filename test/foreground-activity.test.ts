import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { describe, expect, it } from 'vitest';
import { checkFiles, uploadFile } from '../src/client/upload-file.js';
import { contentDigestHeader } from '../src/protocol/content-digest.js';
import { ForegroundActivity } from '../src/services/jobs/foreground-activity.js';
import { photoLikeJpeg } from './media/photo-like.js';
import { startTestApp } from './support/app.js';
import { newClient, scratchDir } from './support/files.js';

describe('ForegroundActivity (background work gives way to uploads)', () => {
  it('waits while a chunk is arriving and for a quiet moment after, but never past the longest wait', async () => {
    const activity = new ForegroundActivity();
    expect(activity.isQuiet(100)).toBe(true);
    const end = activity.begin();
    const started = Date.now();
    let waited: number | undefined;
    const waiting = activity.quiet(100, 5_000).then(() => (waited = Date.now() - started));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(waited).toBeUndefined(); // still receiving
    end();
    end(); // twice is once
    await waiting;
    expect(waited).toBeGreaterThanOrEqual(400); // 300 ms receiving + 100 ms quiet
    expect(activity.isQuiet(100)).toBe(true);

    // An upload that never pauses: the wait ends at its limit.
    activity.begin();
    const before = Date.now();
    await activity.quiet(100, 250);
    expect(Date.now() - before).toBeGreaterThanOrEqual(240);
    expect(Date.now() - before).toBeLessThan(2_000);
  });
});

describe('media jobs and uploads in one server', () => {
  it("a photo's processing waits while another upload's chunk is arriving, and runs once it has", async () => {
    const app = await startTestApp({ PIXSHARE_MEDIA_YIELD_SECONDS: '20' });
    const files = await scratchDir();
    try {
      const owner = await newClient(app);
      // A slow chunk: 4 MiB, a quarter every 700 ms.
      const body = randomBytes(4 * 1024 * 1024);
      const [answer] = await checkFiles(owner, [{ sha256: createHash('sha256').update(body).digest('hex'), size: body.length, name: 'slow.mov' }]);
      const url = new URL(`${app.url}/uploads/${answer!.upload!.id}/chunks/0`);
      const request = http.request(url, {
        method: 'PUT',
        headers: { authorization: `Bearer ${owner.token}`, 'content-length': String(body.length), 'content-digest': contentDigestHeader(createHash('sha256').update(body).digest()) },
      });
      const answered = new Promise<number>((resolve, reject) => request.on('response', (res) => (res.resume(), res.on('end', () => resolve(res.statusCode ?? 0)))).on('error', reject));
      const quarter = body.length / 4;
      request.write(body.subarray(0, quarter));
      await new Promise((resolve) => setTimeout(resolve, 300));

      const result = await uploadFile(owner, await files.write('quick.jpg', await photoLikeJpeg({ width: 640, height: 480, seed: 77 })));
      const status = async () => (await owner.graphql<{ asset: { thumbnailStatus: string } }>('query($id: ID!) { asset(id: $id) { thumbnailStatus } }', { id: result.asset.id })).asset.thumbnailStatus;
      for (let i = 1; i < 4; i++) {
        await new Promise((resolve) => setTimeout(resolve, 700));
        // Bytes still arriving: the photo's thumbnails wait (they take a fraction of a second otherwise).
        expect(await status()).toBe('pending');
        if (i < 3) request.write(body.subarray(i * quarter, (i + 1) * quarter));
        else request.end(body.subarray(i * quarter));
      }
      expect(await answered).toBe(200);
      await app.mediaSettled();
      expect(await status()).toBe('ready');
    } finally {
      await app.close();
      await files.remove();
    }
  }, 60_000);
});
