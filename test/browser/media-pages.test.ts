import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uploadFile } from '../../src/client/upload-file.js';
import { endExifTool } from '../../src/services/media/exiftool.js';
import { exifBlock, IPHONE_EXIF, makeVideo } from '../media/camera-files.js';
import { makeHeic } from '../media/make-heic.js';
import { photoLikeJpeg } from '../media/photo-like.js';
import { PASSWORD, startTestApp, type TestApp } from '../support/app.js';
import { accessibilityViolations, collectErrors, DESKTOP, launchChromium, screenshot, signUpInBrowser, type Browser } from '../support/browser.js';
import { logInAsProgram, scratchDir } from '../support/files.js';

let app: TestApp;
let browser: Browser;
let files: Awaited<ReturnType<typeof scratchDir>>;

beforeAll(async () => {
  app = await startTestApp();
  browser = await launchChromium();
  files = await scratchDir();
});
afterAll(async () => {
  await browser?.close();
  await files?.remove();
  await endExifTool();
  expect(app.loggedErrors).toEqual([]);
  await app.close();
});

describe('videos and iPhone photos in the owner pages', () => {
  it('a folder of a HEIC and a video: thumbnails arrive; the video plays from its original; the photo shows its camera, place-free time and size', async () => {
    const email = `media-${Date.now()}@example.com`;
    const context = await browser.newContext({ viewport: DESKTOP });
    const page = await context.newPage();
    const errors = collectErrors(page);
    await signUpInBrowser(page, app.url, { email, password: PASSWORD });
    const phone = await logInAsProgram(app, email, { name: 'iPhone', platform: 'ios' });

    const exif = await exifBlock(IPHONE_EXIF);
    const heic = await uploadFile(phone, await files.write('IMG_0001.HEIC', await makeHeic({ image: await photoLikeJpeg({ width: 1200, height: 800, seed: 31 }), rotation: 3, exif })), { folder: 'Camera roll' });
    const video = await uploadFile(phone, await files.write('VID_0002.mp4', await makeVideo(files.dir, { container: 'mp4', width: 640, height: 360, seconds: 2, creationTime: '2024-05-06T06:00:00Z' })), { folder: 'Camera roll' });
    expect([heic.asset.thumbnailStatus, video.asset.thumbnailStatus]).toEqual(['pending', 'pending']);

    // The folder page: each tile gets its thumbnail (live, or already there when the page loads).
    await page.goto(`${app.url}/library`);
    await page.getByRole('link', { name: /Camera roll/ }).click();
    await page.getByRole('heading', { name: 'Camera roll' }).waitFor();
    // Under load (other test files decode at the same time) a HEIC and a video take a while.
    await page.locator('.grid img').nth(1).waitFor({ timeout: 45_000 });
    await screenshot(page, 'media-folder');

    // The video's page: a player whose source is the original (ranges let it start), the poster frame, its length.
    await page.goto(`${app.url}/photos/${video.asset.id}`);
    const player = page.locator('video');
    await player.waitFor();
    expect(await player.getAttribute('poster')).toMatch(/\/preview$/);
    await expect.poll(() => player.evaluate((element: HTMLVideoElement) => element.readyState), { timeout: 20_000 }).toBeGreaterThanOrEqual(1);
    expect(await player.evaluate((element: HTMLVideoElement) => element.duration)).toBeCloseTo(2, 0);
    expect(await page.locator('.facts-list').innerText()).toMatch(/0:02 · avc1/);
    expect(await accessibilityViolations(page)).toEqual([]);
    await screenshot(page, 'media-video');

    // The HEIC photo's page: upright preview, the camera, the time as the camera showed it with its offset.
    await page.goto(`${app.url}/photos/${heic.asset.id}`);
    const preview = page.locator('.photo-view img');
    await preview.waitFor();
    await expect.poll(() => preview.evaluate((image: HTMLImageElement) => [image.naturalWidth, image.naturalHeight])).toEqual([800, 1200]);
    const facts = await page.locator('.facts-list').innerText();
    expect(facts).toContain('Apple iPhone 15');
    expect(facts).toContain('(UTC+02:00)');
    expect(facts).toContain('800 × 1200');
    await screenshot(page, 'media-heic');
    expect(errors).toEqual([]);
    await context.close();
  }, 90_000);
});
