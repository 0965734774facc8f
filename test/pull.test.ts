import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../src/client/api-client.js';
import { uploadFile } from '../src/client/upload-file.js';
import { safeFileName } from '../src/protocol/safe-names.js';
import { photoLikeJpeg } from './media/photo-like.js';
import { PASSWORD, startTestApp, type TestApp } from './support/app.js';
import { pixshare } from './support/cli.js';
import { scratchDir } from './support/files.js';

/**
 * Pull sync (D4): the library's change feed and `pixshare pull`, which brings a third device's
 * folder up to date — verified, incrementally, safely whatever the names.
 */
let app: TestApp;
let files: Awaited<ReturnType<typeof scratchDir>>;
let phone: ApiClient;
let email: string;
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

beforeAll(async () => {
  app = await startTestApp();
  files = await scratchDir();
  const account = await app.signUp();
  email = account.email;
  phone = new ApiClient(app.url, account.token);
});
afterAll(async () => {
  expect(app.loggedErrors).toEqual([]);
  await app.close();
  await files.remove();
});

/** Every file below `dir` (relative path → SHA-256), the pull's own bookkeeping aside. */
async function tree(dir: string): Promise<Record<string, string>> {
  const found: Record<string, string> = {};
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const full = path.join(entry.parentPath, entry.name);
    found[path.relative(dir, full)] = sha256(await readFile(full));
  }
  return found;
}

async function upload(name: string, bytes: Uint8Array, folder?: string): Promise<string> {
  const file = await files.write(`up-${sha256(bytes).slice(0, 8)}.jpg`, bytes);
  return (await uploadFile(phone, file, { name, folder })).asset.id;
}

describe('pixshare pull', { timeout: 90_000 }, () => {
  it('fills a folder with byte-identical photos, a subfolder per server folder; again transfers nothing; a removal reaches it only with --delete', async () => {
    const config = { PIXSHARE_CONFIG_DIR: path.join(files.dir, 'laptop') };
    expect((await pixshare(['login', app.url, '--email', email, '--device-name', 'laptop'], { env: config, input: `${PASSWORD}\n` })).code).toBe(0);
    const photos = await Promise.all([0, 1, 2, 3].map((i) => photoLikeJpeg({ width: 320, height: 240, seed: 1200 + i })));
    await upload('IMG_0.jpg', photos[0]!, 'Trip');
    await upload('IMG_1.jpg', photos[1]!, 'Trip');
    const removedLater = await upload('IMG_2.jpg', photos[2]!, 'Home');
    await upload('loose.jpg', photos[3]!);

    const dir = path.join(files.dir, 'pulled');
    const first = await pixshare(['--json', 'pull', dir], { env: config });
    expect(first.code, first.stderr + first.stdout).toBe(0);
    expect(await tree(dir)).toEqual({
      [path.join('Trip', 'IMG_0.jpg')]: sha256(photos[0]!),
      [path.join('Trip', 'IMG_1.jpg')]: sha256(photos[1]!),
      [path.join('Home', 'IMG_2.jpg')]: sha256(photos[2]!),
      'loose.jpg': sha256(photos[3]!),
    });
    expect(first.lines.at(-1)).toMatchObject({ type: 'summary', downloaded: 4, failed: 0 });

    // Nothing changed: nothing transferred.
    const again = await pixshare(['--json', 'pull', dir], { env: config });
    expect(again.lines.at(-1)).toMatchObject({ type: 'summary', changes: 0, downloaded: 0, bytes: 0 });

    // The pull's own records lost (a new config folder, a crash before they were written): the files
    // already in place are recognised by their SHA-256, not downloaded again, not duplicated.
    const fresh = { PIXSHARE_CONFIG_DIR: path.join(files.dir, 'laptop-again') };
    expect((await pixshare(['login', app.url, '--email', email, '--device-name', 'laptop again'], { env: fresh, input: `${PASSWORD}\n` })).code).toBe(0);
    const adopted = await pixshare(['--json', 'pull', dir], { env: fresh });
    expect(adopted.lines.at(-1)).toMatchObject({ type: 'summary', present: 4, downloaded: 0, bytes: 0 });
    expect(Object.keys(await tree(dir))).toHaveLength(4);

    // Changes since: a new photo, one put into a second folder (copied here, not downloaded), one removed.
    const extra = await photoLikeJpeg({ width: 320, height: 240, seed: 1210 });
    await upload('IMG_9.jpg', extra, 'Trip');
    await upload('IMG_0.jpg', photos[0]!, 'Best');
    await phone.graphql('mutation($id: ID!) { deleteAsset(id: $id) { id } }', { id: removedLater });
    const third = await pixshare(['--json', 'pull', dir], { env: config });
    expect(third.lines.at(-1)).toMatchObject({ type: 'summary', downloaded: 1, copied: 1, removed: 0, kept: 1, bytes: extra.length });
    expect(await tree(dir)).toMatchObject({ [path.join('Best', 'IMG_0.jpg')]: sha256(photos[0]!), [path.join('Trip', 'IMG_9.jpg')]: sha256(extra), [path.join('Home', 'IMG_2.jpg')]: sha256(photos[2]!) });

    // With --delete a removal removes the file (a fresh pull folder, so the removal is still to come).
    const other = path.join(files.dir, 'pulled-delete');
    await pixshare(['pull', other], { env: config });
    const id = await upload('IMG_8.jpg', await photoLikeJpeg({ width: 320, height: 240, seed: 1211 }), 'Trip');
    await pixshare(['pull', other], { env: config });
    expect(Object.keys(await tree(other))).toContain(path.join('Trip', 'IMG_8.jpg'));
    await phone.graphql('mutation($id: ID!) { deleteAsset(id: $id) { id } }', { id });
    const deleting = await pixshare(['--json', 'pull', other, '--delete'], { env: config });
    expect(deleting.lines.at(-1)).toMatchObject({ type: 'summary', removed: 1 });
    expect(Object.keys(await tree(other))).not.toContain(path.join('Trip', 'IMG_8.jpg'));
  });

  it('never writes outside the pull folder, whatever a folder or photo is called; same names stay apart', async () => {
    const config = { PIXSHARE_CONFIG_DIR: path.join(files.dir, 'tablet') };
    expect((await pixshare(['login', app.url, '--email', email, '--device-name', 'tablet'], { env: config, input: `${PASSWORD}\n` })).code).toBe(0);
    const hostile: [string, string | undefined][] = [
      ['../../escape.jpg', '../../x'],
      ['/etc/passwd.jpg', '/absolute'],
      [`${'long'.repeat(62)}.jpg`, 'a'.repeat(200)],
      ['..\\..\\windows.jpg', '..'],
      ['IMG_0.jpg', 'Dup'],
      ['img_0.JPG', 'Dup'],
    ];
    const sandbox = path.join(files.dir, 'sandbox');
    const dir = path.join(sandbox, 'inside');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(sandbox, 'canary.txt'), 'untouched');
    const hashes: string[] = [];
    for (const [i, [name, folder]] of hostile.entries()) {
      const bytes = await photoLikeJpeg({ width: 64, height: 48, seed: 1300 + i });
      hashes.push(sha256(bytes));
      await upload(name, bytes, folder);
    }
    const result = await pixshare(['--json', 'pull', dir, '--folder', '../../x'], { env: config });
    expect(result.code, result.stderr).toBe(0);
    const all = await pixshare(['--json', 'pull', dir], { env: config });
    expect(all.code, all.stderr + all.stdout).toBe(0);
    // Outside: only what was there.
    expect((await readdir(sandbox)).sort()).toEqual(['canary.txt', 'inside']);
    expect(await readFile(path.join(sandbox, 'canary.txt'), 'utf8')).toBe('untouched');
    // Inside: every photo, each under a safe name, the two same-named ones apart.
    const inside = await tree(dir);
    for (const hash of hashes) expect(Object.values(inside)).toContain(hash);
    for (const relative of Object.keys(inside)) {
      expect(relative.split(path.sep).every((part) => part.length > 0 && part.length <= 150 && !part.startsWith('.') && !part.includes('\u0000'))).toBe(true);
    }
    expect(Object.keys(inside).filter((p) => p.startsWith(`Dup${path.sep}`)).sort()).toEqual([path.join('Dup', 'IMG_0.jpg'), path.join('Dup', 'img_0.JPG')]);
  });

  it('goes on from where a cut-off download stopped, and never keeps bytes that do not match', async () => {
    const config = { PIXSHARE_CONFIG_DIR: path.join(files.dir, 'resume') };
    expect((await pixshare(['login', app.url, '--email', email, '--device-name', 'resume'], { env: config, input: `${PASSWORD}\n` })).code).toBe(0);
    const dir = path.join(files.dir, 'resumed');
    await pixshare(['pull', dir], { env: config });
    const { bytes } = await files.random('clip.mp4', 24 * 1024 * 1024);
    const id = (await uploadFile(phone, path.join(files.dir, 'clip.mp4'), { name: 'clip.mp4', folder: 'Clips' })).asset.id;
    // What a pull killed in the middle of the download leaves: the first 10 MiB in its partial file.
    await mkdir(path.join(dir, '.pixshare-partial'), { recursive: true });
    await writeFile(path.join(dir, '.pixshare-partial', `${id}.part`), bytes.subarray(0, 10 * 1024 * 1024));
    const resumed = await pixshare(['--json', 'pull', dir], { env: config });
    expect(resumed.lines.at(-1)).toMatchObject({ type: 'summary', downloaded: 1, bytes: bytes.length - 10 * 1024 * 1024 });
    expect(sha256(await readFile(path.join(dir, 'Clips', 'clip.mp4')))).toBe(sha256(bytes));

    // A partial file that is not the start of the photo: refused, nothing kept, whole next time.
    const other = await files.random('clip2.mp4', 3 * 1024 * 1024);
    const second = (await uploadFile(phone, other.file, { name: 'clip2.mp4', folder: 'Clips' })).asset.id;
    await mkdir(path.join(dir, '.pixshare-partial'), { recursive: true });
    await writeFile(path.join(dir, '.pixshare-partial', `${second}.part`), Buffer.alloc(1024 * 1024, 7));
    const refused = await pixshare(['--json', 'pull', dir], { env: config });
    expect(refused.code).toBe(1);
    expect(refused.lines.find((l) => l.outcome === 'failed')).toMatchObject({ error: { code: 'DIGEST_MISMATCH' } });
    expect(Object.keys(await tree(dir))).not.toContain(path.join('Clips', 'clip2.mp4'));
    const whole = await pixshare(['--json', 'pull', dir], { env: config });
    expect(whole.lines.at(-1)).toMatchObject({ type: 'summary', downloaded: 1, bytes: other.bytes.length, failed: 0 });
    expect(sha256(await readFile(path.join(dir, 'Clips', 'clip2.mp4')))).toBe(sha256(other.bytes));
  });

  it('makes any name one safe path part, even those the server refuses to store (NUL, 10,000 characters)', () => {
    for (const name of ['../../x', '/etc/passwd', '..', '.', 'a/../../b', 'nul\u0000byte.jpg', `${'x'.repeat(10_000)}.jpg`, '\\server\\share', 'C:\\Windows', ' ', '']) {
      const safe = safeFileName(name, null);
      expect(safe.length).toBeGreaterThan(0);
      expect(safe.length).toBeLessThanOrEqual(150);
      expect(safe).not.toMatch(/[/\\\u0000]/);
      expect(safe.startsWith('.')).toBe(false);
      expect(path.resolve('/pull', safe).startsWith('/pull/')).toBe(true);
    }
  });
});
