import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uploadFile } from '../../src/client/upload-file.js';
import { PASSWORD, startTestApp, type TestApp } from '../support/app.js';
import { accessibilityViolations, collectErrors, horizontalOverflow, signUpInBrowser, DESKTOP, launchChromium, PHONE, screenshot, type Browser } from '../support/browser.js';
import { logInAsProgram, newClient, scratchDir } from '../support/files.js';
import { cameraJpeg } from '../support/sharing.js';
import { startSmtp, type RunningSmtp } from '../support/smtp.js';

let app: TestApp;
let smtp: RunningSmtp;
let browser: Browser;
let files: Awaited<ReturnType<typeof scratchDir>>;

beforeAll(async () => {
  smtp = await startSmtp();
  app = await startTestApp({ SMTP_URL: smtp.url });
  browser = await launchChromium();
  files = await scratchDir();
});
afterAll(async () => {
  await browser?.close();
  await files?.remove();
  expect(app.loggedErrors).toEqual([]);
  await app.close();
  await smtp?.close();
});

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe('uploading from the browser', () => {
  it('uploads three photos (one instantly), a second tab sees "3 of 3" live, the folder shared by mail opens for a friend who downloads the exact bytes; revoked, the link says so', async () => {
    const email = `uploader-${Date.now()}@example.com`;
    const context = await browser.newContext({ viewport: DESKTOP });
    const page = await context.newPage();
    const errors = collectErrors(page);
    await signUpInBrowser(page, app.url, { email, password: PASSWORD });

    // Three real photos; someone else already stored the third: it goes instantly, with a proof.
    const photos = await Promise.all([0, 1, 2].map(async (i) => ({ name: `DSC_${i}.jpg`, bytes: await cameraJpeg(900 + i, { width: 1200, height: 800 }) })));
    const paths = await Promise.all(photos.map((p) => files.write(p.name, p.bytes)));
    const stranger = await newClient(app);
    await uploadFile(stranger, paths[2]!);

    // A second tab follows the sync live.
    const dashboard = await context.newPage();
    await dashboard.goto(`${app.url}/sync`);
    await dashboard.getByRole('heading', { name: 'Sync' }).waitFor();

    await page.getByRole('link', { name: 'Upload' }).click();
    await page.getByRole('textbox', { name: 'Folder' }).fill('Beach day');
    await page.locator('input[type=file]:not([webkitdirectory])').setInputFiles(paths);
    await expect.poll(() => page.locator('.upload-summary .done-of').innerText(), { timeout: 30_000 }).toBe('3 of 3 uploaded');
    expect(await page.locator('.upload-summary').innerText()).toContain('1 instantly');
    expect(await accessibilityViolations(page)).toEqual([]);
    await screenshot(page, 'upload-desktop');
    const beach = dashboard.locator('.sync-folder', { has: dashboard.getByRole('link', { name: 'Beach day' }) });
    await expect.poll(() => beach.locator('.done-of').innerText().catch(() => ''), { timeout: 15_000 }).toBe('3 of 3 uploaded');
    expect(await accessibilityViolations(dashboard)).toEqual([]);
    await screenshot(dashboard, 'sync-after-upload-desktop');

    // Shared from the browser to an address; the link comes by mail.
    const friend = `friend-${Date.now()}@example.com`;
    await page.getByRole('link', { name: 'Library' }).click();
    await page.getByRole('link', { name: /Beach day/ }).click();
    await page.getByRole('link', { name: 'Share this folder' }).click();
    await page.getByRole('heading', { name: 'Share' }).waitFor();
    await page.getByLabel('Email addresses').fill(friend);
    await page.getByLabel('Message').fill('The beach, as promised');
    expect(await accessibilityViolations(page)).toEqual([]);
    await screenshot(page, 'share-form-desktop');
    await page.getByRole('button', { name: 'Share', exact: true }).click();
    await page.getByRole('heading', { name: 'Shares' }).waitFor();
    const mail = await smtp.next(friend, 20_000);
    const link = /https?:\/\/[^\s"<>]+\/s\/pxl_[A-Za-z0-9_-]{43}/.exec(mail.text!)![0];
    await page.reload();
    await expect.poll(() => page.locator('.recipients tbody tr').first().innerText()).toContain('mail sent');

    const friendContext = await browser.newContext({ viewport: PHONE, acceptDownloads: true });
    const friendPage = await friendContext.newPage();
    const friendErrors = collectErrors(friendPage);
    await friendPage.goto(link);
    await expect.poll(() => friendPage.locator('.grid img').evaluateAll((imgs) => imgs.filter((img) => (img as HTMLImageElement).naturalWidth > 0).length)).toBe(3);
    await friendPage.locator('.tile').first().click();
    const name = (await friendPage.locator('.lightbox .name').innerText()).trim();
    const [download] = await Promise.all([friendPage.waitForEvent('download'), friendPage.getByRole('link', { name: 'Download original' }).click()]);
    expect(sha256(await readFile((await download.path())!))).toBe(sha256(photos.find((p) => p.name === name)!.bytes));
    expect(friendErrors).toEqual([]);

    // The owner sees the link opened, then withdraws it from the browser.
    await page.reload();
    await expect.poll(() => page.locator('.recipients tbody tr').first().innerText()).toMatch(/1× · last/);
    expect(await accessibilityViolations(page)).toEqual([]);
    await screenshot(page, 'shares-desktop');
    await page.getByRole('button', { name: 'Withdraw Beach day' }).click();
    await expect.poll(() => page.locator('.share-card .facts').first().innerText()).toContain('withdrawn');
    await friendPage.goto(link);
    await friendPage.getByRole('heading', { name: 'This link was withdrawn' }).waitFor();
    // The pages of this flow on a phone.
    await page.setViewportSize(PHONE);
    for (const [path, name] of [
      ['/shares', 'shares-phone'],
      ['/library', 'library-after-upload-phone'],
    ] as const) {
      await page.goto(`${app.url}${path}`);
      await page.locator('main h1').waitFor();
      await page.waitForLoadState('networkidle');
      expect(await accessibilityViolations(page), name).toEqual([]);
      await screenshot(page, name);
      expect(await horizontalOverflow(page), `${name}: sideways scrolling`).toBe(0);
    }
    await page.getByRole('link', { name: /Beach day/ }).click();
    await page.getByRole('heading', { name: 'Beach day' }).waitFor();
    await page.waitForLoadState('networkidle');
    expect(await accessibilityViolations(page)).toEqual([]);
    expect(await horizontalOverflow(page)).toBe(0);
    await screenshot(page, 'folder-phone');
    await page.getByRole('link', { name: 'Share this folder' }).click();
    await page.getByRole('heading', { name: 'Share' }).waitFor();
    expect(await accessibilityViolations(page)).toEqual([]);
    expect(await horizontalOverflow(page)).toBe(0);
    await screenshot(page, 'share-form-phone');
    expect(errors).toEqual([]);
    await friendContext.close();
    await context.close();
  });

  it('after a reload in the middle of a 100 MiB upload, picking the file again sends only the missing ranges', async () => {
    const email = `big-${Date.now()}@example.com`;
    const size = 100 * 2 ** 20;
    const big = await files.random('holiday-video.mp4', size);
    const context = await browser.newContext({ viewport: DESKTOP });
    const page = await context.newPage();
    await signUpInBrowser(page, app.url, { email, password: PASSWORD });
    await page.goto(`${app.url}/upload`);

    // Bytes the server acknowledged, per page load.
    let acknowledged = 0;
    page.on('response', (response) => {
      const request = response.request();
      if (request.method() === 'PUT' && request.url().includes('/chunks/') && response.status() === 200) acknowledged += request.postDataBuffer()?.length ?? 0;
    });
    await page.locator('input[type=file]:not([webkitdirectory])').setInputFiles(big.file);
    await expect.poll(() => acknowledged, { timeout: 60_000, interval: 50 }).toBeGreaterThanOrEqual(24 * 2 ** 20);
    await page.reload();
    const before = acknowledged;
    acknowledged = 0;
    await page.locator('input[type=file]:not([webkitdirectory])').setInputFiles(big.file);
    await expect.poll(() => page.locator('.upload-summary .done-of').innerText(), { timeout: 60_000 }).toBe('1 of 1 uploaded');
    // Only what was missing went again: chunks that were in flight at the reload, at most, are sent twice.
    expect(before + acknowledged).toBeLessThan(size + 4 * 8 * 2 ** 20);
    expect(acknowledged).toBeLessThanOrEqual(size - before);
    const owner = await logInAsProgram(app, email);
    const { assets } = await owner.graphql<{ assets: { nodes: { sha256: string; size: number }[] } }>('{ assets(first: 5) { nodes { sha256 size } } }');
    expect(assets.nodes).toEqual([{ sha256: sha256(big.bytes), size }]);
    await screenshot(page, 'upload-resumed-desktop');
    await context.close();
  });
});
