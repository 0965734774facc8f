import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, ApiError } from '../src/client/api-client.js';
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

describe('pixshare agent and pixshare command', () => {
  it('on the same network: the office asks home to upload a folder, handed over directly; home uploads it and the office sees it done', async () => {
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
  });
});
