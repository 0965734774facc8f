import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { uploadFile } from '../src/client/upload-file.js';
import { endExifTool } from '../src/services/media/exiftool.js';
import { cameraJpegCutShort, exifBlock, IPHONE_EXIF, makeVideo, rawWithPreview } from './media/camera-files.js';
import { bombPng } from './media/crafted-files.js';
import { makeHeic } from './media/make-heic.js';
import { photoLikeJpeg } from './media/photo-like.js';
import { startTestApp, type TestApp } from './support/app.js';
import { download, newClient, s3Env, scratchDir, startAppOn } from './support/files.js';
import { Collected, wsClient } from './support/live.js';

afterAll(() => endExifTool());

/** A photo-like image: gradients and texture, so encoders and hashes have something to work on. */
function photo(width: number, height: number, channels: 3 | 4 = 3) {
  const pixels = Buffer.alloc(width * height * channels);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * channels;
      pixels[i] = (x * 255) / width;
      pixels[i + 1] = (y * 255) / height;
      pixels[i + 2] = (x ^ y) & 0xff;
      if (channels === 4) pixels[i + 3] = x < width / 2 ? 255 : 128;
    }
  return sharp(pixels, { raw: { width, height, channels } });
}

for (const driver of ['fs', 's3'] as const) {
  describe(`background processing: thumbnails and media facts (${driver} storage)`, () => {
    let app: TestApp;
    let files: Awaited<ReturnType<typeof scratchDir>>;
    beforeAll(async () => {
      app = await startAppOn(driver);
      files = await scratchDir();
    });
    afterAll(async () => {
      expect(app.loggedErrors).toEqual([]);
      await app.close();
      await files.remove();
    });

    /** Uploads a file; the completion answers before its thumbnails exist; then waits for them. */
    async function upload(api: Awaited<ReturnType<typeof newClient>>, name: string, bytes: Buffer) {
      const result = await uploadFile(api, await files.write(name, bytes));
      expect(result.asset.thumbnailStatus).toBe('pending');
      await app.mediaSettled();
      return result;
    }

    async function thumbnailsOf(token: string, assetId: string) {
      const thumb = await download(app, token, assetId, 'thumbnail');
      const preview = await download(app, token, assetId, 'preview');
      expect(thumb.status).toBe(200);
      expect(preview.status).toBe(200);
      return { thumbnail: await sharp(thumb.bytes).metadata(), preview: await sharp(preview.bytes).metadata() };
    }

    it('JPEG with EXIF orientation 6: portrait dimensions, rotated thumbnail and preview, EXIF time', async () => {
      const api = await newClient(app);
      // Stored landscape 2400×1800, to be shown rotated: portrait 1800×2400.
      const jpeg = await photo(2400, 1800).jpeg({ quality: 85 }).withMetadata({ orientation: 6 }).withExif({ IFD2: { DateTimeOriginal: '2024:07:14 18:30:05' } }).toBuffer();
      const result = await upload(api, 'sideways.jpg', jpeg);
      const { asset } = await api.graphql<{ asset: { width: number; height: number; mimeType: string; takenAt: string; thumbnailStatus: string; thumbnailUrl: string; perceptualHash: string } }>(
        'query($id: ID!) { asset(id: $id) { width height mimeType takenAt thumbnailStatus thumbnailUrl perceptualHash } }',
        { id: result.asset.id },
      );
      expect(asset).toMatchObject({ width: 1800, height: 2400, mimeType: 'image/jpeg', takenAt: '2024-07-14T18:30:05.000Z', thumbnailStatus: 'ready' });
      expect(asset.perceptualHash).toMatch(/^[0-9a-f]{16}$/);
      expect(asset.thumbnailUrl).toBe(`${app.url}/assets/${result.asset.id}/thumbnail`);
      const { thumbnail, preview } = await thumbnailsOf(api.token!, result.asset.id);
      expect(thumbnail).toMatchObject({ format: 'webp', width: 320, height: 320 });
      expect(preview).toMatchObject({ format: 'webp', width: 1200, height: 1600 });
      // The square thumbnail shows rotation in its pixels only: rotated, its left edge is the stored
      // bottom row (green = 255 all along); unrotated it would be a column (green rising, ≈128 midway).
      const square = await download(app, api.token, result.asset.id, 'thumbnail');
      const [, green] = await sharp(square.bytes).extract({ left: 2, top: 160, width: 1, height: 1 }).removeAlpha().raw().toBuffer();
      expect(green).toBeGreaterThan(200);
    });

    it('PNG with alpha and WebP: right dimensions; small images are never enlarged', async () => {
      const api = await newClient(app);
      const png = await photo(1000, 400, 4).png().toBuffer();
      const pngAsset = await upload(api, 'wide.png', png);
      const pngThumbs = await thumbnailsOf(api.token!, pngAsset.asset.id);
      expect(pngThumbs.preview).toMatchObject({ width: 1000, height: 400, hasAlpha: true }); // transparency kept
      expect(pngThumbs.thumbnail).toMatchObject({ width: 320, height: 320 });

      const webp = await photo(200, 150).webp().toBuffer();
      const webpAsset = await upload(api, 'small.webp', webp);
      const { asset } = await api.graphql<{ asset: { width: number; height: number; mimeType: string } }>('query($id: ID!) { asset(id: $id) { width height mimeType } }', { id: webpAsset.asset.id });
      expect(asset).toEqual({ width: 200, height: 150, mimeType: 'image/webp' });
      const webpThumbs = await thumbnailsOf(api.token!, webpAsset.asset.id);
      expect(webpThumbs.preview).toMatchObject({ width: 200, height: 150 });
      expect(webpThumbs.thumbnail).toMatchObject({ width: 150, height: 150 });
    });

    it('stores what sharp cannot read, verified, with its thumbnail marked failed', async () => {
      const api = await newClient(app);
      const good = await photo(800, 600).jpeg().toBuffer();
      const truncated = good.subarray(0, Math.floor(good.length / 2));
      const broken = await upload(api, 'broken.jpg', truncated);
      const text = await upload(api, 'notes.txt', Buffer.from('not a photo at all\n'));
      const reasons = await app.database.sql<{ thumbnail_error: string }[]>`select thumbnail_error from blobs where sha256 in (${broken.asset.sha256}, ${text.asset.sha256}) order by thumbnail_error`;
      expect(reasons.map((r) => r.thumbnail_error.split(':')[0])).toEqual(['corrupt', 'unsupported']);
      // The cut JPEG's header still gave its width; the text file has none.
      for (const [id, width] of [
        [broken.asset.id, 800],
        [text.asset.id, null],
      ] as const) {
        const { asset } = await api.graphql<{ asset: { thumbnailStatus: string; thumbnailUrl: string | null; width: number | null } }>('query($id: ID!) { asset(id: $id) { thumbnailStatus thumbnailUrl width } }', { id });
        expect(asset).toEqual({ thumbnailStatus: 'failed', thumbnailUrl: null, width });
        expect((await download(app, api.token, id, 'thumbnail')).status).toBe(404);
      }
      const original = await download(app, api.token, broken.asset.id);
      expect(original.bytes.equals(truncated)).toBe(true);
    });

    it('refuses a decompression bomb quietly: stored, no thumbnail', async () => {
      const api = await newClient(app);
      // 30000×30000 in ~110 KB would need 2.7 GB decoded; the limit is 100 MP.
      const bomb = bombPng(30_000, 30_000);
      const result = await upload(api, 'bomb.png', bomb);
      const { asset } = await api.graphql<{ asset: { thumbnailStatus: string } }>('query($id: ID!) { asset(id: $id) { thumbnailStatus } }', { id: result.asset.id });
      expect(asset.thumbnailStatus).toBe('failed');
      // Refused by the pixel limit from its header, not merely found broken after a decode attempt.
      const [blob] = await app.database.sql<{ thumbnail_error: string }[]>`select thumbnail_error from blobs where sha256 = ${result.asset.sha256}`;
      expect(blob?.thumbnail_error).toMatch(/^too_large:/);
    }, 60_000);

    it('keeps the capture time and dimensions of a camera photo cut short (no thumbnail)', async () => {
      const api = await newClient(app);
      const camera = await photo(1200, 900)
        .withExif({ IFD0: { Make: 'Acme Optical', Model: 'X-100' }, IFD2: { DateTimeOriginal: '2023:07:14 18:05:09', OffsetTimeOriginal: '+02:00' } })
        .jpeg({ quality: 90 })
        .toBuffer();
      const cut = camera.subarray(0, Math.floor(camera.length * 0.6));
      const result = await upload(api, 'cut.jpg', cut);
      const { asset } = await api.graphql<{ asset: { thumbnailStatus: string; takenAt: string; width: number; height: number } }>(
        'query($id: ID!) { asset(id: $id) { thumbnailStatus takenAt width height } }',
        { id: result.asset.id },
      );
      // The EXIF time (not the file time the client sent), though the image data ends early.
      expect(asset).toEqual({ thumbnailStatus: 'failed', takenAt: '2023-07-14T16:05:09.000Z', width: 1200, height: 900 });
      // A real camera's EXIF (ExifTool's Nikon D70 sample) in front of image data cut short.
      const nikon = await upload(api, 'DSC_0001.JPG', await cameraJpegCutShort('NikonD70.jpg', 0.4));
      const { asset: d70 } = await api.graphql<{ asset: Record<string, unknown> }>(`query($id: ID!) { asset(id: $id) { ${FACTS} } }`, { id: nikon.asset.id });
      expect(d70).toMatchObject({ kind: 'image', thumbnailStatus: 'failed', takenAtLocal: '2005-01-14T08:57:59', takenAtZone: null, camera: { make: 'NIKON CORPORATION', model: 'NIKON D70' } });
    });

    it('iPhone HEIC, MP4 and MOV videos, and a DNG get thumbnails and facts; videos stream with ranges', async () => {
      const api = await newClient(app);
      const exif = await exifBlock(IPHONE_EXIF);
      const heic = await upload(api, 'IMG_0001.HEIC', await makeHeic({ image: await photoLikeJpeg({ width: 1200, height: 800, seed: 21 }), rotation: 3, exif }));
      const mp4 = await upload(api, 'clip.mp4', await makeVideo(files.dir, { container: 'mp4', width: 640, height: 360, seconds: 2, creationTime: '2024-03-04T05:06:07Z' }));
      const mov = await upload(api, 'IMG_0002.MOV', await makeVideo(files.dir, { container: 'mov', width: 640, height: 360, seconds: 1, creationTime: '2024-03-05T05:06:07Z' }));
      const dng = await upload(api, 'IMG_0003.DNG', await rawWithPreview('DNG.dng', files.dir, { width: 3000, height: 2000, orientation: 6 }));
      const facts = async (id: string) => (await api.graphql<{ asset: Record<string, unknown> }>(`query($id: ID!) { asset(id: $id) { ${FACTS} } }`, { id })).asset;

      expect(await facts(heic.asset.id)).toMatchObject({ kind: 'image', mimeType: 'image/heic', thumbnailStatus: 'ready', width: 800, height: 1200, takenAt: '2024-05-06T05:08:09.000Z', takenAtZone: '+02:00', takenAtLocal: '2024-05-06T07:08:09', camera: { make: 'Apple', model: 'iPhone 15' } });
      expect((await thumbnailsOf(api.token!, heic.asset.id)).preview).toMatchObject({ width: 800, height: 1200 });
      expect(await facts(mp4.asset.id)).toMatchObject({ kind: 'video', mimeType: 'video/mp4', thumbnailStatus: 'ready', width: 640, height: 360, durationSeconds: 2, videoCodec: 'avc1', takenAt: '2024-03-04T05:06:07.000Z', takenAtZone: 'Z' });
      expect(await facts(mov.asset.id)).toMatchObject({ kind: 'video', mimeType: 'video/quicktime', thumbnailStatus: 'ready', durationSeconds: 1, videoCodec: 'hvc1' });
      expect((await thumbnailsOf(api.token!, mov.asset.id)).preview).toMatchObject({ format: 'webp', width: 640, height: 360 });
      expect(await facts(dng.asset.id)).toMatchObject({ kind: 'image', mimeType: 'image/x-adobe-dng', thumbnailStatus: 'ready', camera: { make: 'Canon', model: 'Canon EOS 350D DIGITAL' }, takenAtLocal: '2005-08-03T18:59:18' });
      expect((await thumbnailsOf(api.token!, dng.asset.id)).preview).toMatchObject({ width: 1067, height: 1600 });

      // The original video as a player asks for it: a byte range (S3 redirects to a signed URL that honours it).
      const response = await fetch(`${app.url}/assets/${mp4.asset.id}/original`, { headers: { authorization: `Bearer ${api.token}`, range: 'bytes=0-99' } });
      expect(response.status).toBe(206);
      expect((await response.arrayBuffer()).byteLength).toBe(100);
      expect(response.headers.get('content-type')).toBe('video/mp4');
    }, 120_000);

    it('tells the owner live when processing is done, and reprocesses one asset or the whole library on request', async () => {
      const api = await newClient(app);
      const client = wsClient(app.url, api.token!);
      const live = new Collected<{ assetsProcessed: { id: string; thumbnailStatus: string; width: number }[] }>(client.iterate({ query: 'subscription { assetsProcessed { id thumbnailStatus width } }' }));
      try {
        await new Promise((resolve) => setTimeout(resolve, 300)); // subscribed before the upload
        const jpeg = await photoLikeJpeg({ width: 1600, height: 1200, seed: 22 });
        const first = await uploadFile(api, await files.write('live.jpg', jpeg));
        expect(first.asset.thumbnailStatus).toBe('pending');
        const message = await live.until((m) => m.data?.assetsProcessed.some((a) => a.id === first.asset.id) ?? false);
        expect(message.data!.assetsProcessed).toEqual([{ id: first.asset.id, thumbnailStatus: 'ready', width: 1600 }]);

        // An upgrade that reads a format better: the stored facts are redone from the bytes.
        await app.database.sql`update blobs set width = null, thumbnail_status = 'failed' where sha256 = ${first.asset.sha256}`;
        const again = await api.graphql<{ reprocessMedia: number }>('mutation($id: ID) { reprocessMedia(assetId: $id) }', { id: first.asset.id });
        expect(again.reprocessMedia).toBe(1);
        await app.mediaSettled();
        const told = () => live.messages.filter((m) => m.data?.assetsProcessed.some((a) => a.id === first.asset.id)).length;
        await vi.waitFor(() => expect(told()).toBe(2));
        const [blob] = await app.database.sql<{ width: number; thumbnail_status: string }[]>`select width, thumbnail_status from blobs where sha256 = ${first.asset.sha256}`;
        expect(blob).toEqual({ width: 1600, thumbnail_status: 'ready' });
        await uploadFile(api, await files.write('second.jpg', await photoLikeJpeg({ width: 800, height: 600, seed: 23 })));
        expect((await api.graphql<{ reprocessMedia: number }>('mutation { reprocessMedia }')).reprocessMedia).toBe(2);
        await app.mediaSettled();
        // Another user's asset is not theirs to reprocess.
        const stranger = await newClient(app);
        await expect(stranger.graphql('mutation($id: ID) { reprocessMedia(assetId: $id) }', { id: first.asset.id })).rejects.toMatchObject({ code: 'NOT_FOUND' });
      } finally {
        await client.dispose();
      }
    }, 60_000);
  });
}

const FACTS = 'kind mimeType thumbnailStatus width height takenAt takenAtZone takenAtLocal durationSeconds videoCodec camera { make model } location { latitude longitude }';

describe('background processing with two instances on one database and one S3 bucket', () => {
  it('runs each job once: every photo is processed, and announced, exactly once', async () => {
    const storage = await s3Env();
    const first = await startTestApp(storage.env);
    // The second instance shares the first one's database (and bucket): both run media jobs.
    const second = await startTestApp({ ...storage.env, DATABASE_URL: first.database.url });
    const files = await scratchDir();
    const api = await newClient(first);
    const client = wsClient(first.url, api.token!);
    const live = new Collected<{ assetsProcessed: { id: string }[] }>(client.iterate({ query: 'subscription { assetsProcessed { id } }' }));
    try {
      await new Promise((resolve) => setTimeout(resolve, 300));
      const uploaded = [];
      for (let i = 0; i < 8; i++) uploaded.push(await uploadFile(api, await files.write(`p${i}.jpg`, await photoLikeJpeg({ width: 1600, height: 1200, seed: 60 + i }))));
      await first.mediaSettled();
      await new Promise((resolve) => setTimeout(resolve, 500)); // any second announcement would be here by now
      const announced = live.messages.flatMap((m) => m.data?.assetsProcessed.map((a) => a.id) ?? []);
      expect(announced.sort()).toEqual(uploaded.map((u) => u.asset.id).sort());
      const [row] = await first.database.sql<{ n: number }[]>`select count(*)::int as n from assets where thumbnail_status = 'ready'`;
      expect(row!.n).toBe(8);
      expect([...first.loggedErrors, ...second.loggedErrors]).toEqual([]);
    } finally {
      await client.dispose();
      await second.close();
      await first.close();
      await storage.s3.close();
      await files.remove();
    }
  }, 60_000);
});
