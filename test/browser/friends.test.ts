import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, startTestApp, type TestApp } from '../support/app.js';
import { logInAsProgram, scratchDir } from '../support/files.js';
import { createShare, uploadPhotos } from '../support/sharing.js';
import { accessibilityViolations, collectErrors, horizontalOverflow, signUpInBrowser, DESKTOP, launchChromium, PHONE, screenshot, type Browser, type Page } from '../support/browser.js';

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
  expect(app.loggedErrors).toEqual([]);
  await app.close();
});

async function signedIn(email: string, nickname: string, viewport = DESKTOP): Promise<{ page: Page; errors: string[] }> {
  const page = await (await browser.newContext({ viewport })).newPage();
  const errors = collectErrors(page);
  await signUpInBrowser(page, app.url, { email, password: PASSWORD, nickname });
  return { page, errors };
}

describe('friends and groups in the browser', () => {
  it('asks a friend by email, who accepts; makes a group with them, renames it, takes them out; removes the friend', async () => {
    const stamp = Date.now();
    const ana = await signedIn(`ana-${stamp}@example.com`, 'Ana');
    const ben = await signedIn(`ben-${stamp}@example.com`, 'Ben', PHONE);

    await ana.page.getByRole('link', { name: 'Friends' }).click();
    await ana.page.getByLabel('Ask someone by email').fill(`ben-${stamp}@example.com`);
    await ana.page.getByRole('button', { name: 'Send request' }).click();
    await expect.poll(() => ana.page.getByRole('status').innerText()).toContain('Asked');
    await ana.page.getByRole('button', { name: `Cancel the request to ben-${stamp}@example.com` }).waitFor();

    await ben.page.goto(`${app.url}/friends`);
    await ben.page.getByRole('button', { name: 'Accept Ana' }).click();
    await ben.page.getByRole('button', { name: 'Remove Ana' }).waitFor();
    expect(await accessibilityViolations(ben.page)).toEqual([]);
    await screenshot(ben.page, 'friends-phone');

    await ana.page.reload();
    await ana.page.getByRole('button', { name: 'Remove Ben' }).waitFor();

    // Ana shares two photos with her new friend; Ben finds them under "With me".
    const anaApi = await logInAsProgram(app, `ana-${stamp}@example.com`, { name: 'laptop', platform: 'linux' });
    const uploaded = await uploadPhotos(anaApi, files, 2, { folder: 'Picnic', width: 640, height: 480 });
    const { friends } = await anaApi.graphql<{ friends: { id: string }[] }>('{ friends { id } }');
    await createShare(anaApi, { assetIds: uploaded.map((u) => u.id), friendIds: [friends[0]!.id], message: 'From Sunday' });
    await ben.page.getByRole('link', { name: 'With me' }).click();
    await ben.page.getByRole('heading', { name: /IMG_/ }).waitFor();
    expect(await ben.page.locator('.share-card').innerText()).toContain('From Sunday');
    await expect.poll(() => ben.page.locator('.share-card img').evaluateAll((imgs) => imgs.filter((i) => (i as HTMLImageElement).naturalWidth > 0).length)).toBe(2);
    await ben.page.locator('.share-card .tile').first().click();
    await ben.page.getByRole('dialog').waitFor();
    await ben.page.keyboard.press('Escape');
    expect(await accessibilityViolations(ben.page)).toEqual([]);
    expect(await horizontalOverflow(ben.page)).toBe(0);
    await screenshot(ben.page, 'with-me-phone');
    await ana.page.getByLabel('New group').fill('Family');
    await ana.page.getByRole('checkbox', { name: 'Ben' }).check();
    await ana.page.getByRole('button', { name: 'Make the group' }).click();
    const family = ana.page.getByRole('region', { name: 'Group Family' });
    await family.getByRole('button', { name: 'Take out Ben (Family)' }).waitFor();
    expect(await accessibilityViolations(ana.page)).toEqual([]);
    await screenshot(ana.page, 'friends-desktop');

    ana.page.once('dialog', (dialog) => void dialog.accept('Close family'));
    await family.getByRole('button', { name: 'Rename Family' }).click();
    const renamed = ana.page.getByRole('region', { name: 'Group Close family' });
    await renamed.getByRole('button', { name: 'Take out Ben (Close family)' }).click();
    await expect.poll(() => renamed.locator('h3').innerText()).toContain('0 people');
    await ana.page.getByRole('button', { name: 'Remove Ben' }).click();
    await expect.poll(() => ana.page.locator('.empty').first().innerText()).toBe('No friends yet.');
    expect(ana.errors).toEqual([]);
    expect(ben.errors).toEqual([]);
  });
});
