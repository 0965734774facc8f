import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, startTestApp, type TestApp } from '../support/app.js';
import { accessibilityViolations, collectErrors, DESKTOP, horizontalOverflow, launchChromium, PHONE, screenshot, signUpInBrowser, type Browser } from '../support/browser.js';
import { pixshare, startPixshare } from '../support/cli.js';
import { scratchDir } from '../support/files.js';
import { cameraJpeg } from '../support/sharing.js';

let app: TestApp;
let browser: Browser;
let files: Awaited<ReturnType<typeof scratchDir>>;
let agent: ReturnType<typeof startPixshare> | undefined;

beforeAll(async () => {
  app = await startTestApp();
  browser = await launchChromium();
  files = await scratchDir();
});
afterAll(async () => {
  agent?.child.kill('SIGKILL');
  await agent?.exited;
  await browser?.close();
  await files?.remove();
  expect(app.loggedErrors).toEqual([]);
  await app.close();
});

describe('the devices page', () => {
  it("shows what a computer's agent offers, asks it to upload a folder, and follows the command live to done", async () => {
    const email = `devices-${Date.now()}@example.com`;
    const context = await browser.newContext({ viewport: DESKTOP });
    const page = await context.newPage();
    const errors = collectErrors(page);
    await signUpInBrowser(page, app.url, { email, password: PASSWORD });

    // The home computer logs in with the same account and runs its agent over a folder of photos.
    const env = { PIXSHARE_CONFIG_DIR: path.join(files.dir, 'home') };
    expect((await pixshare(['login', app.url, '--email', email, '--device-name', 'Home computer'], { env, input: `${PASSWORD}\n` })).code).toBe(0);
    const dir = path.join(files.dir, 'Scans');
    await mkdir(dir);
    for (let i = 0; i < 3; i++) await writeFile(path.join(dir, `scan-${i}.jpg`), await cameraJpeg(700 + i, { width: 640, height: 480 }));
    agent = startPixshare(['agent', '--folder', dir], env);
    await agent.until((l) => l.type === 'agent', 'agent online');

    await page.goto(`${app.url}/devices`);
    await page.getByText('Offers “Scans”').waitFor();
    await page.getByRole('button', { name: 'Ask to upload from Home computer' }).click();
    const form = page.getByRole('form', { name: 'Ask Home computer to upload' });
    await form.getByLabel('Folder').selectOption('Scans');
    await form.getByLabel('What').selectOption({ label: 'everything' });
    expect(await accessibilityViolations(page)).toEqual([]);
    await screenshot(page, 'devices-ask-desktop');
    await form.getByRole('button', { name: 'Ask to upload' }).click();

    // The command appears at once and reaches done without a reload.
    const command = page.locator('.commands li').first();
    await command.getByText('Done').waitFor({ timeout: 30_000 });
    expect(await command.innerText()).toContain('3 files: 3 sent');
    expect(await command.innerText()).toContain('through the server');
    expect(await accessibilityViolations(page)).toEqual([]);
    await screenshot(page, 'devices-commands-desktop');

    await page.setViewportSize(PHONE);
    expect(await horizontalOverflow(page)).toBe(0);
    await screenshot(page, 'devices-commands-phone');
    expect(errors).toEqual([]);
    await context.close();
  });
});
