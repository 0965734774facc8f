/**
 * The command-line client against rsync: pushing a folder of 300 photos (2–8 MB) to our server
 * versus copying it to an rsync daemon on loopback, what a technical user would use instead.
 *
 * Set-up, not timed: 20 photo-like JPEGs of 4.5 to 18 megapixels (2–8 MB) are drawn once; each
 * round writes the folder afresh — file i is base i mod 20 with a JPEG comment segment naming the
 * round and the file, so every file of every round is a distinct JPEG (no deduplication helps
 * either side) — then `sync`. Our server is `src/main.ts` in its own process (`npm start`'s set-up:
 * embedded PostgreSQL, fs storage); rsync is Debian's, `rsync --daemon` on 127.0.0.1 with a module
 * on the same disk. Both clients run in processes of their own: `node bin/pixshare.js push DIR
 * --json` (defaults, a fresh config directory per round, so a fresh sync list) and `rsync -a DIR/
 * rsync://…/bench/roundN/`.
 *
 * Per round (3, the side that goes first alternating; medians):
 * - `push_ms`: the CLI from spawn to exit (every file confirmed stored: verified by SHA-256,
 *   fsynced, committed) — `push_vs_rsync` = rsync_ms / push_ms;
 * - `rsync_ms`, `rsync_fsync_ms` (`--fsync`: the receiver fsyncs every file, the like-for-like
 *   durability figure; `push_vs_rsync_fsync`);
 * - `thumbnails_ready_ms`: from the push's spawn until the server reports no thumbnail pending;
 * - `repush_ms` (the same command again on the unchanged folder: the sync list answers) against
 *   `rsync_noop_ms` (rsync again onto its copy): `repush_vs_rsync_noop` = rsync_noop / repush;
 * - `client_peak_rss_mib`: the CLI process's VmHWM (sampled from /proc every 20 ms; it only rises).
 * `hash_vs_sha256sum`: the client's hashing (`hashFile`, the SDK's streaming SHA-256, in a process
 * of its own, one file after another) against `sha256sum` over the same files (page cache warm for
 * both): sha256sum time / ours.
 */
import { spawn } from 'node:child_process';
import { readdir, rm } from 'node:fs/promises';
import { cpus } from 'node:os';
import path from 'node:path';
import { makeBases, startRsyncDaemon, timed, writeFolder } from './support/camera-folder.js';
import { folderId, thumbnailsPending } from './support/photos.js';
import { Cleanup, execFileAsync, fmtMs, median, r1, r2, readStatus, ROOT, runScript, signUp, sleep, startBench, startServerProcess, tempDir, type Client } from './support/kit.js';

const FILES = Number(process.env.BENCH_CLIENT_FILES ?? 300);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

export async function run(): Promise<void> {
  const cleanup = startBench();
  const dir = await tempDir(cleanup, 'client');
  try {
    const { stdout: rsyncVersion } = await execFileAsync('rsync', ['--version']);
    console.log(`client bench: ${FILES} photos, ${ROUNDS} rounds; ${cpus().length} CPUs; ${rsyncVersion.split('\n')[0]}`);
    const bases = await makeBases();
    console.log(`bases: ${bases.length} JPEGs of ${r1(Math.min(...bases.map((b) => b.length)) / 1e6)}–${r1(Math.max(...bases.map((b) => b.length)) / 1e6)} MB`);

    const server = await startServerProcess(cleanup, path.join(dir, 'data'), JSON.parse(process.env.BENCH_SERVER_ENV ?? '{}') as Record<string, string>);
    const owner = await signUp(server.url, 'client');
    const rsync = await startRsyncDaemon(cleanup, path.join(dir, 'rsync'));

    const rounds: Record<string, number>[] = [];
    let folderBytes = 0;
    for (let round = 1; round <= ROUNDS; round++) {
      cleanup.checkpoint();
      const folder = path.join(dir, `photos-${round}`);
      folderBytes = await writeFolder(folder, bases, round, FILES);
      await execFileAsync('sync');
      const figures: Record<string, number> = {};
      const ours = async () => Object.assign(figures, await pushRound(owner, server.url, folder, path.join(dir, `config-${round}`), `Round ${round}`));
      const theirs = async () => {
        figures.rsync_ms = await timed('rsync', ['-a', `${folder}/`, `${rsync.url}/round${round}/`]);
        await execFileAsync('sync');
        figures.rsync_noop_ms = await timed('rsync', ['-a', `${folder}/`, `${rsync.url}/round${round}/`]);
        figures.rsync_fsync_ms = await timed('rsync', ['-a', '--fsync', `${folder}/`, `${rsync.url}/round${round}-fsync/`]);
        await execFileAsync('sync');
      };
      if (round % 2) {
        await ours();
        await theirs();
      } else {
        await theirs();
        await ours();
      }
      rounds.push(figures);
      console.log(
        `round ${round}: push ${fmtMs(figures.push_ms!)} (thumbnails ready ${fmtMs(figures.thumbnails_ready_ms!)}), repush ${fmtMs(figures.repush_ms!)}, peak RSS ${r1(figures.client_peak_rss_mib!)} MiB; rsync ${fmtMs(figures.rsync_ms!)}, --fsync ${fmtMs(figures.rsync_fsync_ms!)}, no-op ${fmtMs(figures.rsync_noop_ms!)}`,
      );
      if (round < ROUNDS) await rm(folder, { recursive: true, force: true });
    }
    const last = path.join(dir, `photos-${ROUNDS}`);
    const hashing = await hashRounds(cleanup, last);
    const med = (key: string) => median(rounds.map((r) => r[key]!));
    const result = {
      bench: 'client',
      files: FILES,
      folder_mb: r1(folderBytes / 1e6),
      push_ms: r1(med('push_ms')),
      rsync_ms: r1(med('rsync_ms')),
      rsync_fsync_ms: r1(med('rsync_fsync_ms')),
      push_vs_rsync: r2(med('rsync_ms') / med('push_ms')),
      push_vs_rsync_fsync: r2(med('rsync_fsync_ms') / med('push_ms')),
      thumbnails_ready_ms: r1(med('thumbnails_ready_ms')),
      repush_ms: r1(med('repush_ms')),
      rsync_noop_ms: r1(med('rsync_noop_ms')),
      repush_vs_rsync_noop: r2(med('rsync_noop_ms') / med('repush_ms')),
      hash_ms: r1(hashing.ours),
      sha256sum_ms: r1(hashing.sha256sum),
      hash_vs_sha256sum: r2(hashing.sha256sum / hashing.ours),
      client_peak_rss_mib: r1(Math.max(...rounds.map((r) => r.client_peak_rss_mib!))),
    };
    console.log(`push ${fmtMs(result.push_ms)} vs rsync ${fmtMs(result.rsync_ms)} (--fsync ${fmtMs(result.rsync_fsync_ms)}): ${result.push_vs_rsync} (${result.push_vs_rsync_fsync} against --fsync)`);
    console.log(`repush ${fmtMs(result.repush_ms)} vs rsync no-op ${fmtMs(result.rsync_noop_ms)}: ${result.repush_vs_rsync_noop}`);
    console.log(`hashing ${fmtMs(result.hash_ms)} vs sha256sum ${fmtMs(result.sha256sum_ms)}: ${result.hash_vs_sha256sum}`);
    console.log(JSON.stringify(result));
  } finally {
    await cleanup.run();
  }
}

/** One push of the folder by the CLI, the time until its thumbnails are ready, and the repush. */
async function pushRound(owner: Client, server: string, folder: string, config: string, name: string): Promise<Record<string, number>> {
  const env = { ...process.env, PIXSHARE_SERVER: server, PIXSHARE_TOKEN: owner.token, PIXSHARE_CONFIG_DIR: config };
  const started = performance.now();
  const first = await runCli(['push', folder, '--folder', name, '--json'], env);
  const pushMs = performance.now() - started;
  const summary = first.summary;
  if (summary.uploaded !== FILES || summary.failed !== 0) throw new Error(`push: expected ${FILES} uploads, got ${JSON.stringify(summary)}`);
  const id = await folderId(owner, name);
  for (const deadline = Date.now() + 900_000; await thumbnailsPending(owner, id); await sleep(250)) {
    if (Date.now() > deadline) throw new Error('thumbnails still pending after 15 minutes');
  }
  const thumbnailsMs = performance.now() - started;
  const repushStarted = performance.now();
  const again = await runCli(['push', folder, '--folder', name, '--json'], env);
  const repushMs = performance.now() - repushStarted;
  if (again.summary.unchanged !== FILES) throw new Error(`repush: expected ${FILES} unchanged, got ${JSON.stringify(again.summary)}`);
  return { push_ms: pushMs, thumbnails_ready_ms: thumbnailsMs, repush_ms: repushMs, client_peak_rss_mib: Math.max(first.peakRssMib, again.peakRssMib) };
}

async function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<{ summary: Record<string, number>; peakRssMib: number }> {
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/pixshare.js'), ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  let peakRssMib = 0;
  const sampler = setInterval(() => {
    void readStatus(child.pid!).then((status) => {
      if (status && Number.isFinite(status.hwmMib)) peakRssMib = Math.max(peakRssMib, status.hwmMib);
    });
  }, 20);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearInterval(sampler);
  if (code !== 0) throw new Error(`pixshare ${args.join(' ')} exited with ${code}: ${stderr.slice(-2000)}`);
  const summary = stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .find((line) => line.type === 'summary');
  if (!summary) throw new Error(`no summary line: ${stdout.slice(-1000)}`);
  return { summary: summary as Record<string, number>, peakRssMib };
}

/** Our client's hashing (hashFile, one file after another, in its own process) against sha256sum; 3 rounds each, medians. */
async function hashRounds(cleanup: Cleanup, folder: string): Promise<{ ours: number; sha256sum: number }> {
  const files = (await readdir(folder)).sort().map((name) => path.join(folder, name));
  const script = `
    const { register } = await import('tsx/esm/api');
    register();
    const { hashFile } = await import(${JSON.stringify(path.join(ROOT, 'src/client/file-hashing.ts'))});
    const files = JSON.parse(process.argv.at(-1));
    const started = performance.now();
    for (const file of files) await hashFile(file);
    console.log(JSON.stringify({ ms: performance.now() - started }));
  `;
  const ours: number[] = [];
  const theirs: number[] = [];
  for (let round = 0; round < 3; round++) {
    ours.push((await runScript<{ ms: number }>(cleanup, 'hashing', script, files)).ms);
    theirs.push(await timed('sha256sum', files));
  }
  return { ours: median(ours), sha256sum: median(theirs) };
}
