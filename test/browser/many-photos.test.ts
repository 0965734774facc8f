import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, startTestApp, type TestApp } from '../support/app.js';
import { collectErrors, DESKTOP, launchChromium, type Browser } from '../support/browser.js';
import { newClient, scratchDir } from '../support/files.js';
import { createShare, tokenOf, uploadPhotos, type Client } from '../support/sharing.js';

let app: TestApp;
let browser: Browser;
let files: Awaited<ReturnType<typeof scratchDir>>;
let owner: Client;
const COUNT = 130;

beforeAll(async () => {
  app = await startTestApp();
  browser = await launchChromium();
  files = await scratchDir();
  owner = await newClient(app, `many-${Date.now()}@example.com`);
  await uploadPhotos(owner, files, COUNT, { folder: 'Many', width: 96, height: 64 });
}, 120_000);
afterAll(async () => {
  await browser?.close();
  await files?.remove();
  expect(app.loggedErrors).toEqual([]);
  await app.close();
});

describe('more photos than a page', () => {
  it('the share page loads the next photos as the end of the grid comes into view; the ZIP of all downloads', async () => {
    const { folders } = await owner.graphql<{ folders: { id: string }[] }>('{ folders { id } }');
    const created = await createShare(owner, { folderIds: [folders[0]!.id], emails: ['many@example.com'], allowOriginals: true });
    const context = await browser.newContext({ viewport: DESKTOP, acceptDownloads: true });
    const page = await context.newPage();
    const errors = collectErrors(page);
    await page.goto(`${app.url}/s/${tokenOf(created.links[0]!.url)}`);
    await expect.poll(() => page.locator('.grid .tile').count()).toBe(100);
    await page.locator('.sentinel').scrollIntoViewIfNeeded();
    await expect.poll(() => page.locator('.grid .tile').count()).toBe(COUNT);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download all' }).click()]);
    expect(download.suggestedFilename()).toMatch(/\.zip$/);
    const zip = await readFile((await download.path())!);
    expect(zip.subarray(0, 2).toString()).toBe('PK');
    expect(errors).toEqual([]);
    await context.close();
  });

  it("the owner's folder page shows a page of photos, then more", async () => {
    const context = await browser.newContext({ viewport: DESKTOP });
    const page = await context.newPage();
    const errors = collectErrors(page);
    await page.goto(`${app.url}/login`);
    await page.getByLabel('Email').fill(owner.email);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('link', { name: /Many/ }).click();
    await expect.poll(() => page.locator('.grid .tile').count()).toBe(100);
    await page.getByRole('button', { name: 'More photos' }).click();
    await expect.poll(() => page.locator('.grid .tile').count()).toBe(COUNT);
    expect(await page.getByRole('button', { name: 'More photos' }).count()).toBe(0);
    expect(errors).toEqual([]);
    await context.close();
  });
});
