import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import sharp from 'sharp';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ApiClient } from '../src/client/api-client.js';
import { photoLikeJpeg } from './media/photo-like.js';
import { freePort, PASSWORD, startTestApp, type TestApp } from './support/app.js';
import { pixshare } from './support/cli.js';
import { scratchDir } from './support/files.js';
import { startTcpProxy } from './support/tcp-proxy.js';

let app: TestApp;
let files: Awaited<ReturnType<typeof scratchDir>>;
let config: string;
let email: string;

beforeAll(async () => {
  app = await startTestApp();
  files = await scratchDir();
  config = path.join(files.dir, 'config');
  ({ email } = await app.signUp());
  const camera = path.join(files.dir, 'Holidays');
  await mkdir(path.join(camera, 'day 2'), { recursive: true });
  for (let i = 0; i < 4; i++) await writeFile(path.join(camera, i < 2 ? '' : 'day 2', `IMG_000${i}.jpg`), await photoLikeJpeg({ width: 800, height: 600, seed: 500 + i }));
  await writeFile(path.join(camera, 'notes.txt'), 'not a photo\n');
  await writeFile(path.join(camera, '.hidden.jpg'), await photoLikeJpeg({ width: 64, height: 48, seed: 599 }));
});

afterAll(async () => {
  expect(app.loggedErrors).toEqual([]);
  await app.close();
  await files.remove();
});

const env = () => ({ PIXSHARE_CONFIG_DIR: config });
const outcomes = (lines: Record<string, unknown>[]) => lines.filter((l) => l.type === 'file').map((l) => l.outcome).sort();
const summaryOf = (lines: Record<string, unknown>[]) => lines.find((l) => l.type === 'summary')!;

describe('the pixshare command', () => {
  it('lists every command with --help, and says what is wrong with bad usage (exit 2)', async () => {
    const help = await pixshare(['--help']);
    expect(help.code).toBe(0);
    for (const command of ['login', 'logout', 'push', 'sync', 'watch', 'status', 'agent', 'command', 'devices', 'pull']) expect(help.stdout).toContain(command);
    expect((await pixshare(['push', '--help'])).stdout).toContain('--dry-run');
    const missing = await pixshare(['push'], { env: env() });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("missing required argument 'paths'");
    expect((await pixshare(['push', '--concurrency', 'lots', 'x'], { env: env() })).code).toBe(2);
    expect((await pixshare(['frobnicate'])).code).toBe(2);
  });

  it('logs in with the password from standard input, keeping only a device token, readable by its owner only', async () => {
    const result = await pixshare(['--json', 'login', app.url, '--email', email, '--device-name', 'test laptop'], { env: env(), input: `${PASSWORD}\n` });
    expect(result.code, result.stderr).toBe(0);
    expect(result.lines[0]).toMatchObject({ type: 'login', server: app.url, email });
    const file = path.join(config, 'credentials.json');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const stored = await readFile(file, 'utf8');
    expect(stored).not.toContain(PASSWORD);
    const { token } = JSON.parse(stored) as { token: string };
    const { me } = await new ApiClient(app.url, token).graphql<{ me: { email: string } }>('{ me { email } }');
    expect(me.email).toBe(email);

    // Both answers from standard input, a line each (as a script pipes them).
    const wrong = await pixshare(['login', app.url], { env: { PIXSHARE_CONFIG_DIR: path.join(files.dir, 'other-config') }, input: `${email}\nnot the password\n` });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/password/i);
    const none = await pixshare(['login', app.url], { env: { PIXSHARE_CONFIG_DIR: path.join(files.dir, 'other-config') }, input: '' });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('no answer');
  });

  it('pushes a folder tree; again: nothing sent (the sync list answers, a renamed file too); without the sync list: hashed, nothing uploaded', async () => {
    const tree = path.join(files.dir, 'Holidays');
    const first = await pixshare(['--json', 'push', tree], { env: env() });
    expect(first.code, first.stderr).toBe(0);
    expect(outcomes(first.lines)).toEqual(['uploaded', 'uploaded', 'uploaded', 'uploaded']);
    expect(summaryOf(first.lines)).toMatchObject({ files: 4, uploaded: 4, skipped: 1, failed: 0 });
    const folders = (await app.gql<{ folders: { name: string; status: { done: number } }[] }>('{ folders { name status { done } } }', {}, { token: await storedToken() })).data!.folders;
    expect(folders.find((f) => f.name === 'Holidays')?.status.done).toBe(4);

    const again = await pixshare(['--json', 'push', tree], { env: env() });
    expect(outcomes(again.lines)).toEqual(['unchanged', 'unchanged', 'unchanged', 'unchanged']);
    expect(summaryOf(again.lines)).toMatchObject({ unchanged: 4, uploaded: 0, sentBytes: 0 });

    await rename(path.join(tree, 'IMG_0000.jpg'), path.join(tree, 'renamed.jpg'));
    expect(outcomes((await pixshare(['--json', 'push', tree], { env: env() })).lines)).toEqual(['unchanged', 'unchanged', 'unchanged', 'unchanged']);

    await rm(path.join(config, 'sync-list.db'));
    const rebuilt = await pixshare(['--json', 'push', tree], { env: env() });
    expect(outcomes(rebuilt.lines)).toEqual(['exists', 'exists', 'exists', 'exists']);
    expect(summaryOf(rebuilt.lines)).toMatchObject({ sentBytes: 0 });

    // With --include-hidden and --all the dot file and the text file go too; --dry-run only says so.
    const dry = await pixshare(['--json', 'push', tree, '--all', '--include-hidden', '--dry-run'], { env: env() });
    expect(outcomes(dry.lines)).toEqual(['unchanged', 'unchanged', 'unchanged', 'unchanged', 'would-send', 'would-send']);
    // --ignore leaves out names anywhere ('*.txt') and folders ('day 2').
    const some = await pixshare(['--json', 'push', tree, '--all', '--include-hidden', '--dry-run', '--ignore', '*.txt', 'day 2'], { env: env() });
    expect(some.lines.filter((l) => l.type === 'file').map((l) => `${l.outcome} ${path.basename(String(l.path))}`).sort()).toEqual(['unchanged IMG_0001.jpg', 'unchanged renamed.jpg', 'would-send .hidden.jpg']);
  });

  it('a second account, with PIXSHARE_SERVER and PIXSHARE_TOKEN, gets the same photos instantly: no file bytes sent', async () => {
    const other = await app.signUp();
    const result = await pixshare(['--json', 'push', path.join(files.dir, 'Holidays'), '--folder', 'From a friend'], {
      env: { PIXSHARE_CONFIG_DIR: path.join(files.dir, 'config-2'), PIXSHARE_SERVER: app.url, PIXSHARE_TOKEN: other.token },
    });
    expect(result.code, result.stderr).toBe(0);
    expect(outcomes(result.lines)).toEqual(['instant', 'instant', 'instant', 'instant']);
    expect(summaryOf(result.lines)).toMatchObject({ sentBytes: 0, instant: 4 });
  });

  it('reports a file it cannot read and goes on (exit 1); a bad token or an unreachable server end the run (exit 3)', async () => {
    const photo = await files.write('single.jpg', await photoLikeJpeg({ width: 320, height: 240, seed: 777 }));
    const partly = await pixshare(['--json', 'push', photo, path.join(files.dir, 'no-such-file.jpg')], { env: env() });
    expect(partly.code).toBe(1);
    expect(outcomes(partly.lines)).toEqual(['failed', 'uploaded']);
    expect(partly.lines.find((l) => l.outcome === 'failed')).toMatchObject({ error: { code: 'UNREADABLE' } });

    const revoked = await pixshare(['push', photo], { env: { PIXSHARE_CONFIG_DIR: path.join(files.dir, 'config-3'), PIXSHARE_SERVER: app.url, PIXSHARE_TOKEN: 'not-a-token' } });
    expect(revoked.code).toBe(3);
    expect(revoked.stderr).toMatch(/log in again/);
    const away = await pixshare(['--json', 'status'], { env: { PIXSHARE_CONFIG_DIR: path.join(files.dir, 'config-3'), PIXSHARE_SERVER: `http://127.0.0.1:${await freePort()}`, PIXSHARE_TOKEN: 'x' } });
    expect(away.code).toBe(3);
    expect(away.lines).toEqual([expect.objectContaining({ type: 'error', code: 'UNREACHABLE' })]);
  });

  it('sync --since sends what was taken in the period (EXIF time, else the file time), not older files', async () => {
    const roll = path.join(files.dir, 'Camera roll');
    await mkdir(roll, { recursive: true });
    const taken = (date: string, seed: number) => sharp(Buffer.from(photoPixels(seed)), { raw: { width: 64, height: 48, channels: 3 } }).withExif({ IFD2: { DateTimeOriginal: date } }).jpeg().toBuffer();
    const recent = new Date(Date.now() - 2 * 86_400_000);
    const exifDate = (d: Date) => `${d.getFullYear()}:${String(d.getMonth() + 1).padStart(2, '0')}:${String(d.getDate()).padStart(2, '0')} 12:00:00`;
    await writeFile(path.join(roll, 'new.jpg'), await taken(exifDate(recent), 1));
    // Written just now, but taken in 2019: its EXIF time decides.
    await writeFile(path.join(roll, 'old.jpg'), await taken('2019:06:01 12:00:00', 2));
    // No EXIF: the file's time decides.
    await writeFile(path.join(roll, 'clip.mp4'), Buffer.from('not really a video, but named like one'));
    await writeFile(path.join(roll, 'old-clip.mov'), Buffer.from('an old video'));
    const longAgo = new Date('2018-03-03T10:00:00Z');
    await utimes(path.join(roll, 'old-clip.mov'), longAgo, longAgo);

    const dry = await pixshare(['--json', 'sync', roll, '--since', '30d', '--dry-run'], { env: env() });
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.lines.filter((l) => l.outcome === 'would-send').map((l) => path.basename(String(l.path))).sort()).toEqual(['clip.mp4', 'new.jpg']);
    const synced = await pixshare(['--json', 'sync', roll, '--since', '30d'], { env: env() });
    expect(outcomes(synced.lines)).toEqual(['uploaded', 'uploaded']);
    expect(summaryOf(synced.lines)).toMatchObject({ older: 2, uploaded: 2 });
    // A date reaches further back; bad periods are usage errors.
    const since2019 = await pixshare(['--json', 'sync', roll, '--since', '2019-01-01'], { env: env() });
    expect(outcomes(since2019.lines)).toEqual(['unchanged', 'unchanged', 'uploaded']);
    expect((await pixshare(['sync', roll, '--since', 'last tuesday'], { env: env() })).code).toBe(2);
  });

  it('checks many files per request, and small files are not held back by a large one', async () => {
    const dir = path.join(files.dir, 'Mixed');
    await mkdir(dir);
    // The large file is listed first (names sort), and each sender takes the next file in line.
    await writeFile(path.join(dir, 'A_long_clip.mp4'), Buffer.alloc(48 * 1024 * 1024, 7));
    for (let i = 0; i < 40; i++) await writeFile(path.join(dir, `IMG_${String(i).padStart(2, '0')}.jpg`), await sharp(photoPixels(2000 + i), { raw: { width: 64, height: 48, channels: 3 } }).jpeg().toBuffer());
    const checks: number[] = [];
    const original = app.services.uploads.checkUploads.bind(app.services.uploads);
    const counting = vi.spyOn(app.services.uploads, 'checkUploads').mockImplementation((viewer, batch) => {
      checks.push(batch.length);
      return original(viewer, batch);
    });
    // A link of 16 MB/s: the clip takes seconds on it, a photo a moment.
    const proxy = await startTcpProxy(new URL(app.url));
    proxy.setRate(16_000_000);
    try {
      const run = await pixshare(['--json', 'push', dir, '--concurrency', '2'], { env: { PIXSHARE_CONFIG_DIR: path.join(files.dir, 'config-mixed'), PIXSHARE_SERVER: proxy.url, PIXSHARE_TOKEN: await storedToken() } });
      expect(run.code, run.stderr).toBe(0);
      const order = run.lines.filter((l) => l.type === 'file').map((l) => path.basename(String(l.path)));
      expect(order).toHaveLength(41);
      // 41 files in a few requests, not 41.
      expect(checks.reduce((a, b) => a + b, 0)).toBe(41);
      expect(checks.length).toBeLessThanOrEqual(10);
      // The photos went by while the clip was on its way (the other sender took them, one after another).
      expect(order.at(-1)).toBe('A_long_clip.mp4');
    } finally {
      counting.mockRestore();
      await proxy.close();
    }
  });

  it('push --perceptual-hash works out each image\'s dHash and sends it with the check; the asset keeps it where the server cannot make one', async () => {
    const dir = path.join(files.dir, 'Similar');
    await mkdir(dir);
    const photo = await photoLikeJpeg({ width: 640, height: 480, seed: 4242 });
    await writeFile(path.join(dir, 'IMG_A.jpg'), photo);
    // The same picture re-encoded smaller: other bytes, nearly the same dHash.
    await writeFile(path.join(dir, 'IMG_B.jpg'), await sharp(photo).resize(320, 240).jpeg({ quality: 70 }).toBuffer());
    const run = await pixshare(['--json', 'push', dir, '--perceptual-hash'], { env: env() });
    expect(run.code, run.stderr).toBe(0);
    const sent = run.lines.filter((l) => l.type === 'file') as { path: string; perceptualHash?: string; sha256: string; assetId: string }[];
    expect(sent).toHaveLength(2);
    for (const line of sent) expect(line.perceptualHash).toMatch(/^[0-9a-f]{16}$/);
    // The server kept what the client sent with each upload session.
    for (const line of sent) {
      const [row] = await app.database.sql<{ phash: string }[]>`select phash::text from uploads where sha256 = ${line.sha256}`;
      expect(BigInt.asUintN(64, BigInt(row!.phash)).toString(16).padStart(16, '0')).toBe(line.perceptualHash);
    }
    await app.mediaSettled();
    const token = await storedToken();
    const [a, b] = sent.sort((x, y) => x.path.localeCompare(y.path));
    const similar = await app.gql<{ similarAssets: { asset: { id: string }; distance: number }[] }>('query($id: ID!) { similarAssets(assetId: $id) { asset { id } distance } }', { id: a!.assetId }, { token });
    expect(similar.data!.similarAssets.map((s) => s.asset.id)).toContain(b!.assetId);

    // A file the server cannot decode keeps the hash its client sent; a malformed hash is refused, that file only.
    const api = new ApiClient(app.url, token);
    const bytes = Buffer.from('not really an image, but its client says what it looks like');
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const check = await api.graphql<{ checkUploads: { status: string; upload: { id: string } | null; error: { code: string } | null }[] }>(
      'mutation($files: [CheckFileInput!]!) { checkUploads(files: $files) { status upload { id } error { code } } }',
      { files: [{ sha256, size: bytes.length, name: 'odd.jpg', perceptualHash: 'f0e1d2c3b4a59687' }, { sha256: 'ab'.repeat(32), size: 10, name: 'bad.jpg', perceptualHash: 'not-hex' }] },
    );
    expect(check.checkUploads.map((c) => c.status)).toEqual(['UPLOAD', 'REFUSED']);
    expect(check.checkUploads[1]!.error!.code).toBe('BAD_USER_INPUT');
    const put = await api.putChunk<{ asset: { id: string } }>(check.checkUploads[0]!.upload!.id, 0, bytes, createHash('sha256').update(bytes).digest());
    await app.mediaSettled();
    const odd = await app.gql<{ asset: { perceptualHash: string | null; thumbnailStatus: string } }>('query($id: ID!) { asset(id: $id) { perceptualHash thumbnailStatus } }', { id: put.asset.id }, { token });
    expect(odd.data!.asset).toEqual({ perceptualHash: 'f0e1d2c3b4a59687', thumbnailStatus: 'failed' });
  });

  it('status --follow shows a folder sync live as another device pushes, until interrupted', async () => {
    const follower = spawn(process.execPath, [path.resolve('bin/pixshare.js'), '--json', 'status', '--follow'], { env: { ...process.env, ...env() }, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: Record<string, unknown>[] = [];
    let stderr = '';
    let buffered = '';
    follower.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    follower.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      for (let end = buffered.indexOf('\n'); end >= 0; end = buffered.indexOf('\n')) {
        lines.push(JSON.parse(buffered.slice(0, end)) as Record<string, unknown>);
        buffered = buffered.slice(end + 1);
      }
    });
    const exited = new Promise<number | null>((resolve) => follower.on('close', resolve));
    const waitFor = async (test: (line: Record<string, unknown>) => boolean, what: string) => {
      for (const deadline = Date.now() + 20_000; !lines.some(test); await new Promise((r) => setTimeout(r, 50))) {
        if (Date.now() > deadline || follower.exitCode !== null) throw new Error(`no ${what}: ${JSON.stringify(lines)} ${stderr}`);
      }
    };
    try {
      // Subscribed once the first message (the folders with activity now) is there.
      await waitFor((l) => l.type === 'following', 'first message');
      const live = path.join(files.dir, 'Live');
      await mkdir(live);
      for (let i = 0; i < 3; i++) await writeFile(path.join(live, `IMG_${i}.jpg`), await sharp(photoPixels(900 + i), { raw: { width: 64, height: 48, channels: 3 } }).jpeg().toBuffer());
      // Another device: the same account, its own config.
      const other = await pixshare(['--json', 'push', live], { env: { PIXSHARE_CONFIG_DIR: path.join(files.dir, 'config-other'), PIXSHARE_SERVER: app.url, PIXSHARE_TOKEN: await storedToken() } });
      expect(other.code, other.stderr).toBe(0);
      await waitFor((l) => l.type === 'sync' && l.name === 'Live' && l.filesDone === 3 && l.filesPlanned === 3, '"3 of 3" for Live');
      const live3 = lines.find((l) => l.name === 'Live' && l.filesDone === 3)!;
      expect(live3).toMatchObject({ filesUploaded: 3, filesFailed: 0, active: false });
    } finally {
      follower.kill('SIGINT');
    }
    expect(await exited).toBe(0);
    expect(stderr).toBe('');
    const refused = await pixshare(['--json', 'status', '--follow'], { env: { PIXSHARE_CONFIG_DIR: path.join(files.dir, 'config-4'), PIXSHARE_SERVER: app.url, PIXSHARE_TOKEN: 'not-a-token' } });
    expect(refused.code).toBe(3);
    expect(refused.lines.at(-1)).toMatchObject({ type: 'error', code: 'UNAUTHENTICATED' });
  });

  it('shows the folders\' status, and logs out: the token stops working and is forgotten', async () => {
    const status = await pixshare(['status', 'Holidays'], { env: env() });
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain('Holidays: 4 of 4 uploaded');
    const token = await storedToken();
    const out = await pixshare(['logout'], { env: env() });
    expect(out.code, out.stderr).toBe(0);
    await expect(new ApiClient(app.url, token).graphql('{ me { email } }')).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    await expect(stat(path.join(config, 'credentials.json'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await pixshare(['status'], { env: env() })).code).toBe(3);
  });
});

/** A tiny distinct image's pixels. */
function photoPixels(seed: number): Uint8Array {
  return Uint8Array.from({ length: 64 * 48 * 3 }, (_, i) => (i * seed * 37) % 256);
}

async function storedToken(): Promise<string> {
  return (JSON.parse(await readFile(path.join(config, 'credentials.json'), 'utf8')) as { token: string }).token;
}

describe('pixshare push against a full account', () => {
  it('reports each file that does not fit with the numbers, sends the rest, and exits 1', async () => {
    const small = await startTestApp({ PIXSHARE_STANDARD_QUOTA: '150KiB' });
    const scratch = await scratchDir();
    try {
      const { token } = await small.signUp();
      const dir = path.join(scratch.dir, 'Full');
      await mkdir(dir);
      for (let i = 0; i < 3; i++) await writeFile(path.join(dir, `IMG_${i}.jpg`), Buffer.alloc(60 * 1024, i + 1));
      const run = await pixshare(['--json', 'push', dir], { env: { PIXSHARE_CONFIG_DIR: path.join(scratch.dir, 'config'), PIXSHARE_SERVER: small.url, PIXSHARE_TOKEN: token } });
      expect(run.code).toBe(1);
      const results = run.lines.filter((l) => l.type === 'file') as { outcome: string; error?: { code: string; message: string } }[];
      expect(results.map((r) => r.outcome).sort()).toEqual(['failed', 'uploaded', 'uploaded']);
      const refused = results.find((r) => r.outcome === 'failed')!;
      expect(refused.error).toMatchObject({ code: 'QUOTA_EXCEEDED' });
      expect(refused.error!.message).toMatch(/61440 bytes needed, \d+ of 153600 free/);
      expect(summaryOf(run.lines)).toMatchObject({ uploaded: 2, failed: 1 });
      // Plain output says it in words, on standard error.
      const plain = await pixshare(['push', dir], { env: { PIXSHARE_CONFIG_DIR: path.join(scratch.dir, 'config'), PIXSHARE_SERVER: small.url, PIXSHARE_TOKEN: token } });
      expect(plain.code).toBe(1);
      expect(plain.stderr).toMatch(/failed: .*IMG_\d\.jpg: Not enough space: 61440 bytes needed/);
    } finally {
      await small.close();
      await scratch.remove();
    }
  });
});
