import { createHash } from 'node:crypto';
import { buffer } from 'node:stream/consumers';
import exifReader from 'exif-reader';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { uploadFile } from '../src/client/upload-file.js';
import { blobKey, BlobService } from '../src/services/blobs.js';
import { editRuleKey, parseEditRule } from '../src/services/media/apply-edit-rule.js';
import { startTestApp, type TestApp } from './support/app.js';
import { newClient, scratchDir, sha256 } from './support/files.js';
import { photoLikeJpeg } from './media/photo-like.js';

describe('edit rules (G3): the rule', () => {
  it('has one normal form, and a key that equal rules share', () => {
    expect(parseEditRule({})).toEqual({ maxDimension: null, format: 'jpeg', quality: 82, grayscale: false, colors: null, keepCamera: false, keepLocation: false });
    const a = parseEditRule({ maxDimension: 1024, format: 'webp' });
    const b = parseEditRule({ format: 'webp', maxDimension: 1024, keepLocation: false });
    expect(editRuleKey(a)).toBe(editRuleKey(b));
    expect(editRuleKey(a)).not.toBe(editRuleKey(parseEditRule({ maxDimension: 1024, format: 'avif' })));
    expect(editRuleKey(a)).toMatch(/^[A-Za-z0-9_-]{22}$/);
    // Lossless PNG has no quality: rules that differ only there are one rule.
    expect(editRuleKey(parseEditRule({ format: 'png', quality: 10 }))).toBe(editRuleKey(parseEditRule({ format: 'png', quality: 90 })));
    expect(editRuleKey(parseEditRule({ format: 'jpeg', quality: 10 }))).not.toBe(editRuleKey(parseEditRule({ format: 'jpeg', quality: 90 })));
  });

  it('refuses what it cannot do, naming the field', () => {
    for (const [input, field] of [
      [{ maxDimension: 4 }, 'editRule.maxDimension'],
      [{ format: 'gif' }, 'editRule.format'],
      [{ quality: 0 }, 'editRule.quality'],
      [{ colors: 16, format: 'jpeg' }, 'editRule.colors'],
      [{ sharpen: true }, 'editRule'],
    ] as const) {
      expect(() => parseEditRule(input), JSON.stringify(input)).toThrow(expect.objectContaining({ code: 'BAD_USER_INPUT', details: { field } }));
    }
  });
});

describe('edit rules (G3): images made by them', () => {
  let app: TestApp;
  let files: Awaited<ReturnType<typeof scratchDir>>;
  let photo: { sha256: string; bytes: Buffer };
  beforeAll(async () => {
    app = await startTestApp({ PIXSHARE_BLOB_GRACE_SECONDS: '0' });
    files = await scratchDir();
    // A camera photo with its make, model, time and where it was taken.
    const bytes = await sharp(await photoLikeJpeg({ width: 2400, height: 1600, seed: 7 }))
      .withExif({
        IFD0: { Make: 'Acme Optical', Model: 'X-100', DateTime: '2024:05:06 07:08:09' },
        IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '48/1 51/1 24/1', GPSLongitudeRef: 'E', GPSLongitude: '2/1 21/1 3/1' },
      })
      .jpeg({ quality: 90 })
      .toBuffer();
    const owner = await newClient(app);
    await uploadFile(owner, await files.write('camera.jpg', bytes));
    photo = { sha256: sha256(bytes), bytes };
    await app.mediaSettled(); // the camera facts keepCamera writes come from the background processing
  });
  afterAll(async () => {
    expect(app.loggedErrors).toEqual([]);
    await app.close();
    await files.remove();
  });

  const exifOf = async (data: Buffer) => {
    const { exif } = await sharp(data).metadata();
    return exif ? exifReader(exif) : undefined;
  };

  it('caps the size, converts the format and drops location and camera by default; the original is untouched', async () => {
    const rule = parseEditRule({ maxDimension: 1024, format: 'webp' });
    const edited = await app.services.blobs.editedImage(photo.sha256, rule);
    expect(edited).toMatchObject({ mediaType: 'image/webp', width: 1024, height: 683 });
    const data = await buffer(await app.storage.get(edited.key));
    expect(data.length).toBe(edited.size);
    const meta = await sharp(data).metadata();
    expect(meta).toMatchObject({ format: 'webp', width: 1024, height: 683 });
    expect(await exifOf(data)).toBeUndefined();
    const original = await buffer(await app.storage.get(blobKey(photo.sha256)));
    expect(createHash('sha256').update(original).digest('hex')).toBe(photo.sha256);
  });

  it('keeps the camera without the location, or everything, when the rule says so; grayscale; palette PNG', async () => {
    const camera = await app.services.blobs.editedImage(photo.sha256, parseEditRule({ maxDimension: 800, format: 'jpeg', keepCamera: true }));
    const cameraExif = await exifOf(await buffer(await app.storage.get(camera.key)));
    expect(cameraExif?.Image).toMatchObject({ Make: 'Acme Optical', Model: 'X-100' });
    expect(cameraExif?.GPSInfo).toBeUndefined();
    const everything = await app.services.blobs.editedImage(photo.sha256, parseEditRule({ maxDimension: 800, format: 'jpeg', keepLocation: true }));
    expect((await exifOf(await buffer(await app.storage.get(everything.key))))?.GPSInfo).toMatchObject({ GPSLatitudeRef: 'N' });

    const gray = await app.services.blobs.editedImage(photo.sha256, parseEditRule({ maxDimension: 256, format: 'png', grayscale: true, colors: 16 }));
    const grayMeta = await sharp(await buffer(await app.storage.get(gray.key))).metadata();
    expect(grayMeta).toMatchObject({ format: 'png', width: 256, isPalette: true });
    const { dominant } = await sharp(await buffer(await app.storage.get(gray.key))).stats();
    expect(Math.max(dominant.r, dominant.g, dominant.b) - Math.min(dominant.r, dominant.g, dominant.b)).toBeLessThanOrEqual(8);
  });

  it('makes each image once, whoever asks at the same time on however many instances', async () => {
    const rule = parseEditRule({ maxDimension: 640, format: 'avif', quality: 50 });
    const puts = vi.spyOn(app.storage, 'put');
    try {
      // A second service over the same database and storage stands for another server instance.
      const other = new BlobService({ db: app.database.db, storage: app.storage, config: app.config, log: { error: () => {} } });
      const results = await Promise.all([...Array.from({ length: 4 }, () => app.services.blobs.editedImage(photo.sha256, rule)), ...Array.from({ length: 4 }, () => other.editedImage(photo.sha256, rule))]);
      expect(new Set(results.map((r) => r.key)).size).toBe(1);
      expect(puts.mock.calls.filter(([key]) => key.includes('/rule-'))).toHaveLength(1);
      // And later requests find it.
      await app.services.blobs.editedImage(photo.sha256, parseEditRule({ format: 'avif', quality: 50, maxDimension: 640 }));
      expect(puts.mock.calls.filter(([key]) => key.includes('/rule-'))).toHaveLength(1);
    } finally {
      puts.mockRestore();
    }
  });

  it('says so for a file that is not an image, and goes with its blob', async () => {
    const owner = await newClient(app);
    const notImage = await files.random('notes.bin', 4096);
    await uploadFile(owner, notImage.file);
    await app.mediaSettled();
    // Not before its processing is done (an image made once must not miss facts it would carry).
    await app.database.sql`update blobs set thumbnail_status = 'pending' where sha256 = ${sha256(notImage.bytes)}`;
    await expect(app.services.blobs.editedImage(sha256(notImage.bytes), parseEditRule({}))).rejects.toMatchObject({ code: 'MEDIA_PENDING' });
    await owner.graphql('mutation { reprocessMedia }');
    await app.mediaSettled();
    await expect(app.services.blobs.editedImage(sha256(notImage.bytes), parseEditRule({}))).rejects.toMatchObject({ code: 'MEDIA_UNREADABLE' });
    await expect(app.services.blobs.editedImage('0'.repeat(64), parseEditRule({}))).rejects.toMatchObject({ code: 'NOT_FOUND' });

    // A photo nobody has any more: its edited images are collected with it.
    const other = await newClient(app);
    const lone = await sharp(await photoLikeJpeg({ width: 600, height: 400, seed: 9 })).jpeg().toBuffer();
    const { asset } = await uploadFile(other, await files.write('lone.jpg', lone));
    await app.mediaSettled();
    const edited = await app.services.blobs.editedImage(sha256(lone), parseEditRule({ maxDimension: 100 }));
    await other.graphql('mutation($id: ID!) { deleteAsset(id: $id) { id } }', { id: asset.id });
    await app.database.sql`update blobs set gc_after = now() - interval '1 second' where sha256 = ${sha256(lone)}`;
    expect(await app.services.blobs.collectGarbage()).toBeGreaterThanOrEqual(1);
    expect(await app.storage.exists(edited.key)).toBe(false);
    const [row] = await app.database.sql`select count(*)::int as n from edited_images where sha256 = ${sha256(lone)}`;
    expect(row!.n).toBe(0);
  });
});
