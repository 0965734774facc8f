/**
 * Devices commanding each other and pull sync (D2–D4), as people use them: the real `pixshare agent`
 * and `pixshare pull` as their own processes against a server process (embedded PostgreSQL, files).
 *
 * - `command_first_byte_ms` (p50, p99 of 20): an agent online on the same machine (loopback: the
 *   direct path); from the requester giving the command (the `commandDevice` mutation, then the
 *   direct handover the CLI makes) until the server is receiving the new photo's bytes (its folder
 *   sync shows bytes or the file stored, heard over graphql-ws). Each round a new photo is dropped
 *   into the offered folder; the next round starts once the command is done.
 * - `pull_vs_rsync`: `pixshare pull` of 300 photos of 2–8 MB (the client benchmark's folder) into an
 *   empty folder — every file downloaded, verified by SHA-256 and written — against `rsync -a` from a
 *   daemon serving the server's storage folder (the same bytes, no checks) into an empty folder:
 *   rsync time / pull time. Both after `sync`, page cache warm. Also the pull again (nothing to do).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import path from 'node:path';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { ApiClient } from '../src/client/api-client.js';
import { handOverDirectly } from '../src/client/local-network.js';
import { photoLikeJpeg } from '../test/media/photo-like.js';
import { makeBases, startRsyncDaemon, timed, writeFolder } from './support/camera-folder.js';
import { folderId, thumbnailsPending } from './support/photos.js';
import { execFileAsync, fmtMs, median, percentile, r1, r2, ROOT, signUp, sleep, startBench, startServerProcess, tempDir, PASSWORD, type Cleanup } from './support/kit.js';

const ROUNDS = Number(process.env.BENCH_COMMANDS ?? 20);
const FILES = Number(process.env.BENCH_PULL_FILES ?? 300);

export async function run(): Promise<void> {
  const cleanup = startBench();
  const dir = await tempDir(cleanup, 'devices');
  try {
    const { stdout: rsyncVersion } = await execFileAsync('rsync', ['--version']);
    console.log(`devices bench: ${ROUNDS} commands, pull of ${FILES} photos; ${cpus().length} CPUs; ${rsyncVersion.split('\n')[0]}`);
    const dataDir = path.join(dir, 'data');
    const server = await startServerProcess(cleanup, dataDir, {});
    const office = await signUp(server.url, 'devices');
    const device = async (name: string) => {
      const { logIn } = await new ApiClient(server.url).graphql<{ logIn: { token: string } }>(
        'mutation($e: String!, $p: String!, $d: DeviceInput) { logIn(email: $e, password: $p, device: $d) { token } }',
        { e: office.email, p: PASSWORD, d: { name, platform: 'linux' } },
      );
      return logIn.token;
    };
    const homeToken = await device('home');
    const laptopToken = await device('laptop');

    // Command to first byte.
    const inbox = path.join(dir, 'inbox');
    await mkdir(inbox);
    const agent = await startAgent(cleanup, server.url, homeToken, path.join(dir, 'home-config'), inbox);
    const { devices } = await office.graphql<{ devices: { id: string; name: string }[] }>('{ devices { id name } }');
    const homeId = devices.find((d) => d.name === 'home')!.id;
    const { createFolder } = await office.graphql<{ createFolder: { id: string } }>('mutation { createFolder(name: "Inbox") { id } }');
    const live = createClient({ url: server.url.replace(/^http/, 'ws') + '/graphql', webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${office.token}` } });
    cleanup.add('graphql-ws', () => live.dispose() as Promise<void>);
    const firstByte: number[] = [];
    const done: number[] = [];
    let direct = 0;
    for (let round = 0; round < ROUNDS; round++) {
      cleanup.checkpoint();
      await writeFile(path.join(inbox, `IMG_${round}.jpg`), await photoLikeJpeg({ width: 1600, height: 1200, seed: 9000 + round }));
      const seen = watchFolder(live, createFolder.id);
      await seen.ready;
      const started = performance.now();
      const { commandDevice } = await office.graphql<{ commandDevice: { command: { id: string }; direct: { addresses: { address: string; prefixLength: number }[]; port: number; credential: string; expiresAt: number } | null } }>(
        'mutation($d: ID!) { commandDevice(deviceId: $d, folder: "Inbox") { command { id } direct { addresses { address prefixLength } port credential expiresAt } } }',
        { d: homeId },
      );
      const { command } = commandDevice;
      if (commandDevice.direct && (await handOverDirectly(commandDevice.direct, { commandId: command.id, credential: commandDevice.direct.credential, expiresAt: commandDevice.direct.expiresAt })).ok) direct++;
      else await office.graphql('mutation($id: ID!) { relayDeviceCommand(id: $id) { id } }', { id: command.id });
      firstByte.push((await seen.bytes) - started);
      for (const deadline = Date.now() + 60_000; ; await sleep(10)) {
        const { deviceCommand } = await office.graphql<{ deviceCommand: { status: string } }>('query($id: ID!) { deviceCommand(id: $id) { status } }', { id: command.id });
        if (deviceCommand.status === 'DONE') break;
        if (deviceCommand.status !== 'PENDING' && deviceCommand.status !== 'RUNNING') throw new Error(`command ${deviceCommand.status}`);
        if (Date.now() > deadline) throw new Error('command not done in 60 s');
      }
      done.push(performance.now() - started);
      seen.stop();
    }
    agent.kill('SIGTERM');
    console.log(`command to first byte: p50 ${fmtMs(median(firstByte))}, p99 ${fmtMs(percentile(firstByte, 99))} (${direct} of ${ROUNDS} handed over directly); to done: p50 ${fmtMs(median(done))}`);

    // Pull against rsync from the storage folder.
    const bases = await makeBases();
    const photos = path.join(dir, 'photos');
    const folderBytes = await writeFolder(photos, bases, 1, FILES);
    const laptopConfig = path.join(dir, 'laptop-config');
    await cli(['push', photos, '--folder', 'Camera'], { PIXSHARE_SERVER: server.url, PIXSHARE_TOKEN: office.token, PIXSHARE_CONFIG_DIR: path.join(dir, 'office-config') });
    // Background processing of the pushed photos done: the pulls and rsync have the cores to themselves.
    const camera = await folderId(office, 'Camera');
    for (const deadline = Date.now() + 900_000; await thumbnailsPending(office, camera); await sleep(500)) {
      if (Date.now() > deadline) throw new Error('thumbnails still pending after 15 minutes');
    }
    await cli(['pull', path.join(dir, 'warm'), '--folder', 'Inbox'], { PIXSHARE_SERVER: server.url, PIXSHARE_TOKEN: laptopToken, PIXSHARE_CONFIG_DIR: path.join(dir, 'warm-config') });
    // The originals as the fs store keeps them (thumbnails and previews aside; the inbox's few photos too).
    const rsync = await startRsyncDaemon(cleanup, path.join(dir, 'rsync'), path.join(dataDir, 'blobs', 'objects', 'blobs'));
    const pulls: number[] = [];
    const rsyncs: number[] = [];
    let again = 0;
    for (let round = 1; round <= 3; round++) {
      cleanup.checkpoint();
      const target = path.join(dir, `pulled-${round}`);
      const copy = path.join(dir, `rsynced-${round}`);
      await execFileAsync('sync');
      const env = { PIXSHARE_SERVER: server.url, PIXSHARE_TOKEN: laptopToken, PIXSHARE_CONFIG_DIR: path.join(laptopConfig, String(round)) };
      const ours = async () => pulls.push(await cli(['pull', target, '--folder', 'Camera'], env));
      const theirs = async () => rsyncs.push(await timed('rsync', ['-a', `${rsync.url}/`, `${copy}/`]));
      if (round % 2) {
        await ours();
        await execFileAsync('sync');
        await theirs();
      } else {
        await theirs();
        await execFileAsync('sync');
        await ours();
      }
      if (round === 1) again = await cli(['pull', target, '--folder', 'Camera'], env);
      const pulled = (await readdir(path.join(target, 'Camera'))).length;
      if (pulled !== FILES) throw new Error(`pull wrote ${pulled} files, expected ${FILES}`);
      const copied = (await readdir(copy, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).length;
      if (copied < FILES) throw new Error(`rsync copied ${copied} files, expected at least ${FILES}`);
      await rm(target, { recursive: true, force: true });
      await rm(copy, { recursive: true, force: true });
    }
    console.log(`pull ${fmtMs(median(pulls))} vs rsync ${fmtMs(median(rsyncs))} (${r1(folderBytes / 1e6)} MB): ${r2(median(rsyncs) / median(pulls))}; pull again ${fmtMs(again)}`);
    const result = {
      bench: 'devices',
      commands: ROUNDS,
      command_first_byte_p50_ms: r1(median(firstByte)),
      command_first_byte_p99_ms: r1(percentile(firstByte, 99)),
      command_done_p50_ms: r1(median(done)),
      direct_handovers: direct,
      pull_files: FILES,
      pull_mb: r1(folderBytes / 1e6),
      pull_ms: r1(median(pulls)),
      rsync_ms: r1(median(rsyncs)),
      pull_vs_rsync: r2(median(rsyncs) / median(pulls)),
      pull_again_ms: r1(again),
    };
    console.log(JSON.stringify(result));
  } finally {
    await cleanup.run();
  }
}

/** `pixshare agent` offering `folder` as "Inbox", once it says it is online. */
async function startAgent(cleanup: Cleanup, server: string, token: string, config: string, folder: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/pixshare.js'), '--json', 'agent', '--folder', `Inbox=${folder}`], {
    cwd: ROOT,
    env: { ...process.env, PIXSHARE_SERVER: server, PIXSHARE_TOKEN: token, PIXSHARE_CONFIG_DIR: config },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  cleanup.children.add(child);
  cleanup.add('agent', async () => {
    child.kill('SIGKILL');
    cleanup.children.delete(child);
  });
  await new Promise<void>((resolve, reject) => {
    let text = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes('"type":"agent"')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`agent exited with ${code}`)));
  });
  return child;
}

/** The folder's sync as it changes: `bytes` resolves when the server first holds bytes of a new file. */
function watchFolder(live: ReturnType<typeof createClient>, folderId: string) {
  let baseline: number | null = null;
  let ready!: () => void;
  let arrived!: (at: number) => void;
  const result = { ready: new Promise<void>((r) => (ready = r)), bytes: new Promise<number>((r) => (arrived = r)), stop: () => {} };
  result.stop = live.subscribe<{ folderSyncStatus: { counts: { bytesDone: number; filesDone: number; filesInProgress: number } } }>(
    { query: 'subscription($id: ID!) { folderSyncStatus(folderId: $id) { counts { bytesDone filesDone filesInProgress } } }', variables: { id: folderId } },
    {
      next: (message) => {
        const counts = message.data?.folderSyncStatus.counts;
        if (!counts) return;
        const mark = counts.filesDone * 1e12 + counts.bytesDone + counts.filesInProgress;
        if (baseline === null) {
          baseline = mark;
          ready();
        } else if (mark !== baseline && (counts.bytesDone > 0 || counts.filesDone > 0)) arrived(performance.now());
      },
      error: () => {},
      complete: () => {},
    },
  );
  return result;
}

/** A pixshare command to its end; its wall time in ms. */
async function cli(args: string[], env: Record<string, string>): Promise<number> {
  const started = performance.now();
  await execFileAsync(process.execPath, [path.join(ROOT, 'bin/pixshare.js'), '--quiet', ...args], { cwd: ROOT, env: { ...process.env, ...env }, maxBuffer: 64 * 2 ** 20 });
  return performance.now() - started;
}
