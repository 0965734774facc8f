import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uploadFile } from '../../src/client/upload-file.js';
import { PASSWORD, startTestApp, type TestApp } from '../support/app.js';
import { accessibilityViolations, collectErrors, horizontalOverflow, DESKTOP, launchChromium, PHONE, screenshot, type Browser, type Page } from '../support/browser.js';
import { logInAsProgram, scratchDir } from '../support/files.js';
import { cameraJpeg } from '../support/sharing.js';

let app: TestApp;
let browser: Browser;
let files: Awaited<ReturnType<typeof scratchDir>>;
const email = `owner-${Date.now()}@example.com`;

beforeAll(async () => {
  app = await startTestApp();
  browser = await launchChromium();
  files = await scratchDir();
});
afterAll(async () => {
  await browser?.close();
  await files?.remove();
  expect(app.loggedErrors).toEqual([]);
  await app.close();
});

async function check(page: Page, name: string, errors: string[]): Promise<void> {
  expect(await accessibilityViolations(page), name).toEqual([]);
  expect(errors, name).toEqual([]);
  await screenshot(page, name);
}

describe("the owner's pages", () => {
  it('sign up, library with covers and status, a folder page by page, a photo with its details, live sync from another device, devices, delete, log out', async () => {
    const context = await browser.newContext({ viewport: DESKTOP });
    const page = await context.newPage();
    const errors = collectErrors(page);

    // Not signed in: the app asks to log in; from there, sign up.
    await page.goto(`${app.url}/library`);
    await page.getByRole('heading', { name: 'Log in' }).waitFor();
    await check(page, 'login-desktop', errors);
    await page.getByRole('link', { name: 'Create an account' }).click();
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Name others see').fill('Mira');
    await page.getByLabel('Password').fill(PASSWORD);
    await check(page, 'signup-desktop', errors);
    await page.getByRole('button', { name: 'Sign up' }).click();
    await page.getByRole('heading', { name: 'Library' }).waitFor();
    expect(await page.locator('.empty').innerText()).toContain('No folders yet');

    // A phone uploads three photos into "Harbour".
    const device = await logInAsProgram(app, email, { name: 'Pixel 8', platform: 'android' });
    const photos: { name: string; id: string }[] = [];
    for (let i = 0; i < 3; i++) {
      const name = `PXL_${i}.jpg`;
      const result = await uploadFile(device, await files.write(name, await cameraJpeg(500 + i, { width: 900, height: 600 })), { name, folder: 'Harbour' });
      photos.push({ name, id: result.asset.id });
    }
    // Thumbnails are made in the background: the cover appears once one is ready, without a reload.
    await page.reload();
    const card = page.getByRole('link', { name: /Harbour/ });
    await card.waitFor();
    expect(await card.innerText()).toContain('3 photos');
    await expect.poll(() => card.locator('img').evaluate((img) => (img as HTMLImageElement).naturalWidth)).toBeGreaterThan(0);
    await check(page, 'library-desktop', errors);

    // The folder: three synced photos.
    await card.click();
    await page.getByRole('heading', { name: 'Harbour' }).waitFor();
    await expect.poll(() => page.locator('.grid .tile.synced').count()).toBe(3);
    await check(page, 'folder-desktop', errors);

    // A photo's details: taken at, size, the device it came from.
    await page.getByRole('link', { name: `${photos[0]!.name} (synced)` }).click();
    await page.getByRole('heading', { name: photos[0]!.name }).waitFor();
    const facts = await page.locator('.facts-list').innerText();
    expect(facts).toContain('Pixel 8 (android)');
    expect(facts).toMatch(/2024/); // the EXIF capture time of the test photos
    await check(page, 'photo-desktop', errors);

    // Live sync: the dashboard follows uploads the phone makes now.
    await page.getByRole('link', { name: 'Sync' }).click();
    await page.getByRole('heading', { name: 'Sync' }).waitFor();
    await page.locator('.sync-folder').first().waitFor();
    for (let i = 0; i < 2; i++) {
      const name = `PXL_new_${i}.jpg`;
      await uploadFile(device, await files.write(name, await cameraJpeg(700 + i)), { name, folder: 'Ferry' });
    }
    const ferry = page.locator('.sync-folder', { has: page.getByRole('link', { name: 'Ferry' }) });
    await expect.poll(() => ferry.locator('.done-of').innerText().catch(() => '')).toBe('2 of 2 uploaded');
    await check(page, 'sync-desktop', errors);

    // Devices: this browser and the phone; revoke the phone.
    await page.getByRole('link', { name: 'Devices' }).click();
    await page.locator('tbody tr', { hasText: 'Pixel 8' }).waitFor();
    expect(await page.locator('tbody tr').count()).toBe(2);
    await check(page, 'devices-desktop', errors);
    await page.getByRole('button', { name: 'Revoke Pixel 8' }).click();
    await expect.poll(() => page.locator('tbody tr').count()).toBe(1);
    await expect(device.graphql('{ me { id } }')).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });

    // Delete a photo.
    await page.goto(`${app.url}/photos/${photos[1]!.id}`);
    await page.getByRole('button', { name: 'Delete…' }).click();
    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    await page.getByRole('heading', { name: 'Library' }).waitFor();
    // Gone: its page says so, and the folder counts one photo less.
    await page.goto(`${app.url}/photos/${photos[1]!.id}`);
    await expect.poll(() => page.getByRole('alert').innerText()).toBe('No such asset');
    await page.goto(`${app.url}/library`);
    await expect.poll(() => page.getByRole('link', { name: /Harbour/ }).innerText()).toContain('2 photos');

    // Phone-sized screens.
    await page.setViewportSize(PHONE);
    for (const [path, name] of [
      ['/library', 'library-phone'],
      ['/upload', 'upload-phone'],
      ['/shares', 'shares-empty-phone'],
      ['/friends', 'friends-empty-phone'],
      [`/photos/${photos[0]!.id}`, 'photo-phone'],
      ['/sync', 'sync-phone'],
      ['/devices', 'devices-phone'],
    ] as const) {
      await page.goto(`${app.url}${path}`);
      await page.locator('main h1').waitFor();
      await page.waitForLoadState('networkidle');
      await check(page, name, errors);
      expect(await horizontalOverflow(page), `${name}: sideways scrolling`).toBe(0);
    }

    // Log out: back to the log-in page, and the pages ask again.
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('heading', { name: 'Log in' }).waitFor();
    await page.goto(`${app.url}/devices`);
    await page.getByRole('heading', { name: 'Log in' }).waitFor();
    expect(errors).toEqual([]);
    await context.close();
  });

  it('refuses a wrong password with a clear message', async () => {
    const context = await browser.newContext({ viewport: PHONE });
    const page = await context.newPage();
    await page.goto(`${app.url}/login`);
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill('not the password at all');
    await page.getByRole('button', { name: 'Log in' }).click();
    await expect.poll(() => page.getByRole('alert').innerText()).toMatch(/password/i);
    expect(await accessibilityViolations(page)).toEqual([]);
    await screenshot(page, 'login-error-phone');
    await context.close();
  });
});
