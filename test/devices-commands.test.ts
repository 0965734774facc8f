import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../src/client/api-client.js';
import { DIRECT_COMMAND_PATH } from '../src/protocol/direct-command.js';
import { photoLikeJpeg } from './media/photo-like.js';
import { PASSWORD, startTestApp, type TestApp } from './support/app.js';
import { pixshare, startPixshare, type JsonLine } from './support/cli.js';
import { scratchDir } from './support/files.js';

/**
 * Devices commanding each other (D2, D3): agents run as their own processes (`pixshare agent`),
 * commands are given with `pixshare command` as a person would, and the server's record of each
 * command — its path, attempts and outcome — is checked through the API.
 */
let app: TestApp;
let files: Awaited<ReturnType<typeof scratchDir>>;
let email: string;
/** The office computer (gives commands), the home computer (runs the agent). */
let office: string;
let home: string;
let homeId: string;
let photos: string;
const photoHashes: string[] = [];
const running: ReturnType<typeof startPixshare>[] = [];

const configOf = (name: string) => path.join(files.dir, `config-${name}`);
const envOf = (name: string) => ({ PIXSHARE_CONFIG_DIR: configOf(name) });
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

async function logIn(name: string): Promise<string> {
  const result = await pixshare(['--json', 'login', app.url, '--email', email, '--device-name', name], { env: envOf(name), input: `${PASSWORD}\n` });
  expect(result.code, result.stderr).toBe(0);
  return String(result.lines[0]!.deviceId);
}

const tokenOf = async (name: string) => (JSON.parse(await readFile(path.join(configOf(name), 'credentials.json'), 'utf8')) as { token: string }).token;
const apiOf = async (name: string) => new ApiClient(app.url, await tokenOf(name));

function startAgent(name: string, args: string[], env: Record<string, string> = envOf(name)) {
  const agent = startPixshare(['agent', ...args], env);
  running.push(agent);
  return agent;
}

async function stopAgent(agent: ReturnType<typeof startPixshare>, signal: NodeJS.Signals = 'SIGTERM') {
  agent.child.kill(signal);
  await agent.exited;
}

async function commandRow(id: string) {
  const [row] = await app.database.sql<{ state: string; path: string | null; attempts: number; result: { uploaded: number } | null }[]>`select state, path, attempts, result from device_commands where id = ${id}`;
  return row!;
}

async function storedHashes(api: ApiClient, folder: string): Promise<string[]> {
  const { folders } = await api.graphql<{ folders: { name: string; assets: { nodes: { sha256: string }[] } }[] }>('{ folders { name assets(first: 100) { nodes { sha256 } } } }');
  return (folders.find((f) => f.name === folder)?.assets.nodes.map((a) => a.sha256) ?? []).sort();
}

beforeAll(async () => {
  app = await startTestApp({ PIXSHARE_COMMAND_LEASE_SECONDS: '3' });
  files = await scratchDir();
  ({ email } = await app.signUp());
  office = await logIn('office');
  homeId = await logIn('home');
  home = homeId;
  photos = path.join(files.dir, 'home-photos');
  await mkdir(photos);
  for (let i = 0; i < 4; i++) {
    const bytes = await photoLikeJpeg({ width: 640, height: 480, seed: 900 + i });
    await writeFile(path.join(photos, `IMG_${i}.jpg`), bytes);
    photoHashes.push(sha256(bytes));
  }
  photoHashes.sort();
});

afterEach(async () => {
  for (const agent of running.splice(0)) if (agent.child.exitCode === null && agent.child.signalCode === null) await stopAgent(agent, 'SIGKILL');
});

afterAll(async () => {
  expect(app.loggedErrors).toEqual([]);
  await app.close();
  await files.remove();
});

describe('pixshare agent and pixshare command', { timeout: 120_000 }, () => {
  it('on the same network: the office asks home to upload a folder, handed over directly; home uploads it, the office sees it done, the laptop pulls it', async () => {
    const agent = startAgent('home', ['--folder', `Camera=${photos}`]);
    await agent.until((l) => l.type === 'agent', 'agent online');
    const devices = await pixshare(['--json', 'devices'], { env: envOf('office') });
    expect(devices.lines.find((l) => l.id === home)).toMatchObject({ name: 'home', online: true, agent: { folders: ['Camera'] } });

    const given = await pixshare(['--json', 'command', 'home', 'upload', '--folder', 'Camera'], { env: envOf('office') });
    expect(given.code, given.stderr + given.stdout).toBe(0);
    const id = String(given.lines.find((l) => l.type === 'given')!.commandId);
    expect(given.lines.find((l) => l.type === 'delivery')).toMatchObject({ path: 'direct', address: expect.any(String) });
    const states = given.lines.filter((l) => l.type === 'command').map((l) => l.status);
    expect(states.at(-1)).toBe('done');
    expect(given.lines.at(-1)).toMatchObject({ type: 'command', status: 'done', result: { files: 4, uploaded: 4 } });

    expect(await storedHashes(await apiOf('office'), 'Camera')).toEqual(photoHashes);
    expect(await commandRow(id)).toMatchObject({ state: 'done', path: 'direct', attempts: 1 });
    await agent.until((l) => l.type === 'command' && l.commandId === id && l.status === 'done', 'the agent saying done');

    // A third device, the laptop, pulls them: byte-identical; pulling again transfers nothing.
    await logIn('laptop');
    const pulled = path.join(files.dir, 'laptop-photos');
    const pull = await pixshare(['--json', 'pull', pulled, '--folder', 'Camera'], { env: envOf('laptop') });
    expect(pull.code, pull.stderr).toBe(0);
    const names = (await readdir(path.join(pulled, 'Camera'))).sort();
    expect(names).toEqual(['IMG_0.jpg', 'IMG_1.jpg', 'IMG_2.jpg', 'IMG_3.jpg']);
    for (const name of names) expect(sha256(await readFile(path.join(pulled, 'Camera', name)))).toBe(sha256(await readFile(path.join(photos, name))));
    expect((await pixshare(['--json', 'pull', pulled, '--folder', 'Camera'], { env: envOf('laptop') })).lines.at(-1)).toMatchObject({ type: 'summary', changes: 0, bytes: 0 });
  });

  it('with the direct endpoint unreachable the command goes through the server; to an offline device it runs when its agent starts', async () => {
    const folder = await photoFolder('offline', 2, 910);
    const first = startAgent('home', ['--folder', `Offline=${folder.dir}`]);
    await first.until((l) => l.type === 'agent', 'agent online');
    await stopAgent(first, 'SIGKILL'); // gone without a word: the server still has its addresses

    const requester = startPixshare(['command', 'home', 'upload', '--folder', 'Offline'], envOf('office'));
    running.push(requester);
    const delivery = await requester.until((l) => l.type === 'delivery', 'the delivery');
    expect(delivery).toMatchObject({ path: 'relayed', directFailures: expect.arrayContaining([expect.stringMatching(/ECONNREFUSED/)]) });
    const id = String(requester.lines.find((l) => l.type === 'given')!.commandId);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await commandRow(id)).toMatchObject({ state: 'pending', attempts: 0 });

    const second = startAgent('home', ['--folder', `Offline=${folder.dir}`]);
    expect(await requester.exited).toBe(0);
    expect(requester.lines.at(-1)).toMatchObject({ type: 'command', status: 'done', path: 'relayed', result: { uploaded: 2 } });
    expect(await commandRow(id)).toMatchObject({ state: 'done', path: 'relayed', attempts: 1 });
    expect(await storedHashes(await apiOf('office'), 'Offline')).toEqual(folder.hashes);
    await second.until((l) => l.commandId === id && l.status === 'done', 'the agent saying done');
  });

  it('two agents serving one device: a command runs once', async () => {
    const folder = await photoFolder('twice', 3, 920);
    const token = await tokenOf('home');
    // Two processes with the device's token (as two installs of one device would), each its own state.
    const agents = ['a', 'b'].map((n) => startAgent('home', ['--folder', `Twice=${folder.dir}`], { PIXSHARE_CONFIG_DIR: path.join(files.dir, `config-twin-${n}`), PIXSHARE_SERVER: app.url, PIXSHARE_TOKEN: token }));
    for (const agent of agents) await agent.until((l) => l.type === 'agent', 'agent online');
    for (let round = 0; round < 3; round++) {
      const given = await pixshare(['--json', 'command', home, 'upload', '--folder', 'Twice', '--no-direct'], { env: envOf('office') });
      expect(given.code, given.stdout + given.stderr).toBe(0);
      const id = String(given.lines.find((l) => l.type === 'given')!.commandId);
      expect(await commandRow(id)).toMatchObject({ state: 'done', path: 'relayed', attempts: 1 });
      const ran = (agent: (typeof agents)[number]) => agent.lines.filter((l) => l.commandId === id && l.status === 'running').length;
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(ran(agents[0]!) + ran(agents[1]!)).toBe(1);
    }
    expect(await storedHashes(await apiOf('office'), 'Twice')).toEqual(folder.hashes);
  });

  it('an agent killed in the middle of a command picks it up again when restarted, and it completes once', async () => {
    const dir = path.join(files.dir, 'long');
    await mkdir(dir);
    const { bytes } = await files.random(path.join('long', 'clip.mp4'), 96 * 1024 * 1024);
    const api = await apiOf('office');
    const first = startAgent('home', ['--folder', `Long=${dir}`, '--concurrency', '1', '--max-memory', '16']);
    await first.until((l) => l.type === 'agent', 'agent online');
    const given = await pixshare(['--json', 'command', 'home', 'upload', '--folder', 'Long', '--no-wait'], { env: envOf('office') });
    const id = String(given.lines.find((l) => l.type === 'given')!.commandId);
    // Killed once some of the clip has arrived.
    for (const deadline = Date.now() + 30_000; ; await new Promise((r) => setTimeout(r, 20))) {
      const { deviceCommand } = await api.graphql<{ deviceCommand: { progress: { bytesDone: number } | null } }>('query($id: ID!) { deviceCommand(id: $id) { progress { bytesDone } } }', { id });
      if ((deviceCommand.progress?.bytesDone ?? 0) > 8 * 1024 * 1024) break;
      if (Date.now() > deadline) throw new Error(`the upload did not get going: ${JSON.stringify(first.lines)}`);
    }
    await stopAgent(first, 'SIGKILL');
    expect(await commandRow(id)).toMatchObject({ state: 'running', attempts: 1 });

    // Restarted at once (well inside the lease): it takes its own run up again.
    const second = startAgent('home', ['--folder', `Long=${dir}`]);
    await second.until((l) => l.commandId === id && l.status === 'done', 'the resumed command done', 60_000);
    expect(await commandRow(id)).toMatchObject({ state: 'done', attempts: 2, result: { uploaded: 1 } });
    expect(await storedHashes(api, 'Long')).toEqual([sha256(bytes)]);
    expect(second.lines.filter((l) => l.commandId === id && l.status === 'done')).toHaveLength(1);
  });

  it('a command not taken up in time expires and never runs', async () => {
    const folder = await photoFolder('late', 1, 930);
    const first = startAgent('home', ['--folder', `Late=${folder.dir}`]);
    await first.until((l) => l.type === 'agent', 'agent online');
    await stopAgent(first);
    const given = await pixshare(['--json', 'command', 'home', 'upload', '--folder', 'Late', '--no-direct', '--no-wait'], { env: envOf('office') });
    const id = String(given.lines.find((l) => l.type === 'given')!.commandId);
    // Its time passes while the device is away (PIXSHARE_COMMAND_TTL_SECONDS; moved here instead of waited for).
    await app.database.sql`update device_commands set expires_at = now() - interval '1 second' where id = ${id}`;
    const api = await apiOf('office');
    expect((await api.graphql<{ deviceCommand: { status: string } }>('query($id: ID!) { deviceCommand(id: $id) { status } }', { id })).deviceCommand.status).toBe('EXPIRED');

    const second = startAgent('home', ['--folder', `Late=${folder.dir}`]);
    await second.until((l) => l.type === 'agent', 'agent online');
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(second.lines.filter((l) => l.commandId === id)).toEqual([]);
    expect(await commandRow(id)).toMatchObject({ state: 'pending', attempts: 0 });
    expect(await storedHashes(api, 'Late')).toEqual([]);
    // Its agent cannot take it either, asked directly.
    const homeApi = await apiOf('home');
    await expect(homeApi.graphql('mutation($id: ID!) { claimDeviceCommand(id: $id, leaseId: "0123456789abcdef0123", path: RELAYED) { id } }', { id })).rejects.toMatchObject({ code: 'COMMAND_NOT_OPEN' });
  });

  it('refuses with clear codes: another account\'s device, a revoked one, a browser, a folder not offered, bad arguments', async () => {
    const offering = startAgent('home', ['--folder', `Camera=${photos}`]);
    await offering.until((l) => l.type === 'agent', 'agent online');
    await stopAgent(offering);
    const office_ = await apiOf('office');
    const give = (deviceId: string, extra: Record<string, unknown> = {}) =>
      office_.graphql('mutation($d: ID!, $f: String, $s: DateTime) { commandDevice(deviceId: $d, folder: $f, since: $s) { command { id } } }', { d: deviceId, f: null, s: null, ...extra });
    const stranger = await app.signUp();
    await expect(give(stranger.deviceId)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(give(home, { f: 'Nope' })).rejects.toMatchObject({ code: 'FOLDER_NOT_OFFERED' });
    await expect(give(home, { s: new Date(Date.now() + 86_400_000).toISOString() })).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
    await expect(give('not-an-id')).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
    await expect(give(office)).rejects.toMatchObject({ code: 'DEVICE_NOT_AGENT' });
    // Someone else cannot read, cancel or run the account's commands either.
    const { commandDevice } = await office_.graphql<{ commandDevice: { command: { id: string } } }>('mutation($d: ID!) { commandDevice(deviceId: $d, folder: "Camera") { command { id } } }', { d: home });
    const strangerApi = new ApiClient(app.url, stranger.token);
    await expect(strangerApi.graphql('query($id: ID!) { deviceCommand(id: $id) { id } }', { id: commandDevice.command.id })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(strangerApi.graphql('mutation($id: ID!) { claimDeviceCommand(id: $id, leaseId: "0123456789abcdef0123", path: RELAYED) { id } }', { id: commandDevice.command.id })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(strangerApi.graphql('mutation($id: ID!) { cancelDeviceCommand(id: $id) { id } }', { id: commandDevice.command.id })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    // The office cannot take up a command meant for home.
    await expect(office_.graphql('mutation($id: ID!) { claimDeviceCommand(id: $id, leaseId: "0123456789abcdef0123", path: RELAYED) { id } }', { id: commandDevice.command.id })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect((await office_.graphql<{ cancelDeviceCommand: { status: string } }>('mutation($id: ID!) { cancelDeviceCommand(id: $id) { status } }', { id: commandDevice.command.id })).cancelDeviceCommand.status).toBe('CANCELLED');

    // From the command line: exit 1 with the server's words, exit 2 for usage.
    const notOffered = await pixshare(['command', 'home', 'upload', '--folder', 'Nope'], { env: envOf('office') });
    expect(notOffered.code).toBe(1);
    expect(notOffered.stderr).toContain('offers no folder "Nope"');
    expect((await pixshare(['command', 'home', 'delete'], { env: envOf('office') })).code).toBe(2);
    expect((await pixshare(['command', 'nobody', 'upload'], { env: envOf('office') })).stderr).toContain('no device named "nobody"');

    // A revoked device takes no commands.
    const spare = await logIn('spare');
    const agent = startAgent('spare', ['--folder', `Spare=${photos}`]);
    await agent.until((l) => l.type === 'agent', 'agent online');
    await office_.graphql('mutation($id: ID!) { revokeDevice(id: $id) { id } }', { id: spare });
    await expect(give(spare)).rejects.toMatchObject({ code: 'DEVICE_REVOKED' });
    expect(await agent.exited).toBe(3);
  });

  it("the agent's endpoint takes only a credential the server issued for that command, still valid", async () => {
    const agent = startAgent('home', ['--folder', `Camera=${photos}`]);
    const online = await agent.until((l) => l.type === 'agent', 'agent online');
    const post = (body: unknown) =>
      new Promise<{ status: number; body: JsonLine }>((resolve, reject) => {
        const text = JSON.stringify(body);
        const request = http.request({ host: '127.0.0.1', port: Number(online.port), path: DIRECT_COMMAND_PATH, method: 'POST', headers: { 'content-type': 'application/json' } }, (response) => {
          let data = '';
          response.on('data', (piece: Buffer) => (data += piece.toString()));
          response.on('end', () => resolve({ status: response.statusCode!, body: JSON.parse(data) as JsonLine }));
        });
        request.on('error', reject);
        request.end(text);
      });
    const office_ = await apiOf('office');
    const { commandDevice } = await office_.graphql<{ commandDevice: { command: { id: string }; direct: { credential: string; expiresAt: number } } }>(
      'mutation($d: ID!) { commandDevice(deviceId: $d, folder: "Camera") { command { id } direct { credential expiresAt } } }',
      { d: home },
    );
    const { command, direct } = commandDevice;
    expect(direct).not.toBeNull();
    expect((await post({ commandId: command.id, expiresAt: direct.expiresAt, credential: 'x'.repeat(43) })).status).toBe(401);
    expect((await post({ commandId: command.id, expiresAt: direct.expiresAt + 1, credential: direct.credential })).status).toBe(401);
    expect((await post({ commandId: '00000000-0000-4000-8000-000000000000', expiresAt: direct.expiresAt, credential: direct.credential })).status).toBe(401);
    expect((await post({ nonsense: true })).status).toBe(400);
    expect((await post({ commandId: command.id, expiresAt: direct.expiresAt, credential: direct.credential })).status).toBe(202);
    // Handed over once: the same credential again finds the command taken.
    await agent.until((l) => l.commandId === command.id && l.status === 'done', 'the command done');
    expect((await post({ commandId: command.id, expiresAt: direct.expiresAt, credential: direct.credential })).status).toBe(409);
    expect(await commandRow(command.id)).toMatchObject({ state: 'done', path: 'direct', attempts: 1 });
  });
});

/** A folder of `count` distinct photos, with their SHA-256s sorted. */
async function photoFolder(name: string, count: number, seed: number): Promise<{ dir: string; hashes: string[] }> {
  const dir = path.join(files.dir, name);
  await mkdir(dir);
  const hashes: string[] = [];
  for (let i = 0; i < count; i++) {
    const bytes = await photoLikeJpeg({ width: 320, height: 240, seed: seed + i });
    await writeFile(path.join(dir, `P${i}.jpg`), bytes);
    hashes.push(sha256(bytes));
  }
  return { dir, hashes: hashes.sort() };
}
