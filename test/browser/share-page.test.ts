import { readFile } from 'node:fs/promises';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/app.js';
import { accessibilityViolations, collectErrors, horizontalOverflow, DESKTOP, launchChromium, layoutShift, PHONE, screenshot, type Browser, type Page } from '../support/browser.js';
import { newClient, scratchDir } from '../support/files.js';
import { createShare, tokenOf, uploadPhotos, type Client } from '../support/sharing.js';

let app: TestApp;
let browser: Browser;
let files: Awaited<ReturnType<typeof scratchDir>>;
let owner: Client;
let photos: { id: string; name: string; bytes: Buffer }[];
let folderId: string;

beforeAll(async () => {
  app = await startTestApp();
  browser = await launchChromium();
  files = await scratchDir();
  owner = await newClient(app, 'anna-share-page@example.com');
  photos = await uploadPhotos(owner, files, 3, { folder: 'Lake trip', width: 800, height: 600 });
  folderId = (await owner.graphql<{ folders: { id: string; name: string }[] }>('{ folders { id name } }')).folders.find((f) => f.name === 'Lake trip')!.id;
});
afterAll(async () => {
  await browser?.close();
  await files?.remove();
  expect(app.loggedErrors).toEqual([]);
  await app.close();
});

async function shareLink(options: { allowOriginals?: boolean; message?: string } = {}): Promise<{ token: string; shareId: string; recipientId: string }> {
  const created = await createShare(owner, { folderIds: [folderId], emails: [`friend-${Date.now()}-${Math.random()}@example.com`], allowOriginals: options.allowOriginals ?? true, message: options.message });
  return { token: tokenOf(created.links[0]!.url), shareId: created.share.id, recipientId: created.links[0]!.recipient.id };
}

async function open(path: string, viewport = DESKTOP): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport, acceptDownloads: true });
  const page = await context.newPage();
  const errors = collectErrors(page);
  await page.goto(`${app.url}${path}`);
  return { page, errors };
}

describe('the share page (/s/<token>)', () => {
  it('shows the sender, title, message, expiry and every thumbnail; opens the lightbox; downloads an original byte for byte', async () => {
    const { token } = await shareLink({ message: 'Photos from the lake <b>not bold</b>' });
    const { page, errors } = await open(`/s/${token}`);
    await page.getByRole('heading', { level: 1, name: 'Lake trip' }).waitFor();
    await expect.poll(() => page.locator('.grid img').evaluateAll((imgs) => imgs.filter((img) => (img as HTMLImageElement).complete && (img as HTMLImageElement).naturalWidth > 0).length)).toBe(3);
    const text = await page.locator('main').innerText();
    expect(text).toContain('shared with you');
    expect(text).toContain('3 photos');
    expect(text).toMatch(/expires in \d+ days/);
    // The message is text, never markup.
    expect(await page.locator('.message').innerText()).toBe('Photos from the lake <b>not bold</b>');
    expect(await page.locator('.message b').count()).toBe(0);
    expect(await layoutShift(page)).toBeLessThan(0.01);
    expect(await accessibilityViolations(page)).toEqual([]);
    await screenshot(page, 'share-desktop');

    // The lightbox (newest first): keyboard navigation, then the original's bytes.
    await page.locator('.tile').first().click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    await expect.poll(() => dialog.locator('.count').innerText()).toBe('1 of 3');
    await page.keyboard.press('ArrowRight');
    await expect.poll(() => dialog.locator('.count').innerText()).toBe('2 of 3');
    await expect.poll(() => dialog.locator('img').evaluate((img) => (img as HTMLImageElement).naturalWidth)).toBeGreaterThan(0);
    expect(await accessibilityViolations(page)).toEqual([]);
    await screenshot(page, 'share-lightbox-desktop');
    const [download] = await Promise.all([page.waitForEvent('download'), dialog.getByRole('link', { name: 'Download original' }).click()]);
    const second = photos.find((p) => p.name === download.suggestedFilename())!;
    expect(second.name).toBe(photos[1]!.name);
    expect(Buffer.compare(await readFile((await download.path())!), second.bytes)).toBe(0);
    await page.keyboard.press('Escape');
    await expect.poll(() => dialog.isVisible()).toBe(false);
    expect(errors).toEqual([]);
    await page.context().close();
  });

  it('works on a phone: three columns, swipe between photos', async () => {
    const { token } = await shareLink();
    const { page, errors } = await open(`/s/${token}`, PHONE);
    await page.locator('.grid img').first().waitFor();
    const boxes = await page.locator('.tile').evaluateAll((tiles) => tiles.map((t) => t.getBoundingClientRect()).map((r) => ({ left: Math.round(r.left), top: Math.round(r.top), width: r.width })));
    // One row of three squares across the screen.
    expect(new Set(boxes.map((b) => b.top)).size).toBe(1);
    expect(new Set(boxes.map((b) => b.left)).size).toBe(3);
    expect(boxes.every((b) => b.width > PHONE.width / 4)).toBe(true);
    expect(await accessibilityViolations(page)).toEqual([]);
    expect(await horizontalOverflow(page)).toBe(0);
    await screenshot(page, 'share-phone');
    await page.locator('.tile').first().click();
    const stage = page.locator('.lightbox .stage');
    await stage.waitFor();
    const box = (await stage.boundingBox())!;
    // A swipe to the left: the next photo.
    await stage.dispatchEvent('pointerdown', { clientX: box.x + box.width * 0.8, clientY: box.y + 100 });
    await stage.dispatchEvent('pointerup', { clientX: box.x + box.width * 0.2, clientY: box.y + 110 });
    await expect.poll(() => page.locator('.lightbox .count').innerText()).toBe('2 of 3');
    await screenshot(page, 'share-lightbox-phone');
    expect(errors).toEqual([]);
    await page.context().close();
  });

  it('says clearly when a link is unknown, revoked or expired', async () => {
    const revoked = await shareLink();
    await owner.graphql('mutation($id: ID!) { revokeShare(id: $id) { id } }', { id: revoked.shareId });
    const expired = await shareLink();
    await app.database.db.execute(sql`update shares set expires_at = now() - interval '1 minute' where id = ${expired.shareId}`);
    const cases = [
      ['unknown', `pxl_${'A'.repeat(43)}`, 'This link leads nowhere'],
      ['revoked', revoked.token, 'This link was withdrawn'],
      ['expired', expired.token, 'This share has expired'],
    ] as const;
    for (const [name, token, heading] of cases) {
      for (const [size, viewport] of [
        ['desktop', DESKTOP],
        ['phone', PHONE],
      ] as const) {
        const { page } = await open(`/s/${token}`, viewport);
        await page.getByRole('heading', { level: 1, name: heading }).waitFor();
        expect(await page.locator('.grid').count()).toBe(0);
        expect(await accessibilityViolations(page)).toEqual([]);
        await screenshot(page, `share-${name}-${size}`);
        await page.context().close();
      }
    }
  });

  it('gives chat apps a preview (title, sender, count, one thumbnail) without counting an open, and sends its security headers', async () => {
    const { token, shareId } = await shareLink();
    const response = await fetch(`${app.url}/s/${token}`);
    expect(response.headers.get('content-security-policy')).toMatch(/script-src 'self'/);
    expect(response.headers.get('referrer-policy')).toBe('no-referrer');
    const html = await response.text();
    const meta = (property: string) => new RegExp(`<meta property="${property}" content="([^"]*)"`).exec(html)?.[1];
    expect(meta('og:title')).toBe('Lake trip');
    expect(meta('og:description')).toMatch(/shared 3 photos with you/);
    const image = await fetch(meta('og:image')!.replaceAll('&amp;', '&'));
    expect(image.status).toBe(200);
    expect(image.headers.get('content-type')).toMatch(/^image\//);
    // Nothing about the message, the files or other recipients.
    expect(html).not.toContain('@example.com');
    const { sharesSent } = await owner.graphql<{ sharesSent: { nodes: { id: string; recipients: { opens: number }[] }[] } }>('{ sharesSent(first: 50) { nodes { id recipients { opens } } } }');
    expect(sharesSent.nodes.find((s) => s.id === shareId)!.recipients[0]!.opens).toBe(0);
    // An unknown link gets no preview at all.
    const unknown = await (await fetch(`${app.url}/s/pxl_${'B'.repeat(43)}`)).text();
    expect(unknown).not.toContain('og:title');
    // A malformed address is simply not found.
    expect((await fetch(`${app.url}/%E0%A4%A`)).status).toBe(404);
    // The app's files are cached for good (their names change with their content).
    const script = /src="(\/app\/[^"]+\.js)"/.exec(html)![1]!;
    expect((await fetch(`${app.url}${script}`)).headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
  });
});
