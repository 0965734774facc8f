import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uploadFile } from '../src/client/upload-file.js';
import { bombPng } from './media/crafted-files.js';
import type { TestApp } from './support/app.js';
import { download, newClient, scratchDir, startAppOn } from './support/files.js';

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
  describe(`thumbnails and media facts (${driver} storage)`, () => {
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
      const result = await uploadFile(api, await files.write('sideways.jpg', jpeg));
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
      const pngAsset = await uploadFile(api, await files.write('wide.png', png));
      const pngThumbs = await thumbnailsOf(api.token!, pngAsset.asset.id);
      expect(pngThumbs.preview).toMatchObject({ width: 1000, height: 400, hasAlpha: true }); // transparency kept
      expect(pngThumbs.thumbnail).toMatchObject({ width: 320, height: 320 });

      const webp = await photo(200, 150).webp().toBuffer();
      const webpAsset = await uploadFile(api, await files.write('small.webp', webp));
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
      const broken = await uploadFile(api, await files.write('broken.jpg', truncated));
      const text = await uploadFile(api, await files.write('notes.txt', Buffer.from('not a photo at all\n')));
      const reasons = await app.database.sql<{ thumbnail_error: string }[]>`select thumbnail_error from blobs where sha256 in (${broken.asset.sha256}, ${text.asset.sha256}) order by thumbnail_error`;
      expect(reasons.map((r) => r.thumbnail_error.split(':')[0])).toEqual(['corrupt', 'not an image']);
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
      const result = await uploadFile(api, await files.write('bomb.png', bomb));
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
      const result = await uploadFile(api, await files.write('cut.jpg', cut));
      const { asset } = await api.graphql<{ asset: { thumbnailStatus: string; takenAt: string; width: number; height: number } }>(
        'query($id: ID!) { asset(id: $id) { thumbnailStatus takenAt width height } }',
        { id: result.asset.id },
      );
      // The EXIF time (not the file time the client sent), though the image data ends early.
      expect(asset).toEqual({ thumbnailStatus: 'failed', takenAt: '2023-07-14T16:05:09.000Z', width: 1200, height: 900 });
    });
  });
}
