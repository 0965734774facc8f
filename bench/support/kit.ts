/**
 * What the benchmarks share: clean-up of everything they start, statistics and formatting, reading
 * a process's memory and CPU from /proc, signing up over the API, and running src/main.ts as its
 * own process (as `npm start` does).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ApiClient } from '../../src/client/api-client.js';
import { freePort } from '../../src/db/embedded-postgres.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const PASSWORD = 'bench passphrase, long enough';
export const execFileAsync = promisify(execFile);
export type Client = ApiClient & { userId: string; email: string; token: string };

// -- clean-up ------------------------------------------------------------------------

/** Everything started is registered here and undone in reverse order, on success, failure or a signal. */
export class Cleanup {
  private readonly steps: { label: string; undo: () => Promise<unknown> }[] = [];
  readonly children = new Set<ChildProcess>();
  aborted = false;

  /** Set by a signal: the run stops at its next checkpoint instead of starting more work. */
  checkpoint(): void {
    if (this.aborted) throw new Error('interrupted');
  }

  add(label: string, undo: () => Promise<unknown>): () => Promise<void> {
    const step = { label, undo };
    this.steps.push(step);
    return async () => {
      const index = this.steps.indexOf(step);
      if (index < 0) return;
      this.steps.splice(index, 1);
      await undo();
    };
  }

  async run(): Promise<void> {
    for (const child of this.children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    while (this.steps.length > 0) {
      const step = this.steps.pop()!;
      await step.undo().catch((error: unknown) => console.error(`clean-up (${step.label}) failed:`, error));
    }
  }
}

/**
 * A benchmark's start: the servers it measures run as deployed (NODE_ENV=production unless set;
 * graphql-js reads it once, when first loaded, and runs slower development-mode checks without it),
 * and Ctrl-C or SIGTERM undoes everything registered with the returned Cleanup.
 */
export function startBench(): Cleanup {
  process.env.NODE_ENV ??= 'production';
  const cleanup = new Cleanup();
  const onSignal = (signal: NodeJS.Signals) => {
    console.error(`${signal}: cleaning up`);
    cleanup.aborted = true;
    void cleanup.run().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return cleanup;
}

/**
 * Runs the parts of a benchmark: a part that fails is reported, recorded in `errors` (for the JSON
 * line), and the run goes on with the next; an interrupted run stops.
 */
export function partRunner(cleanup: Cleanup, errors: string[]) {
  return async <T>(part: string, work: () => Promise<T>): Promise<T | undefined> => {
    cleanup.checkpoint();
    try {
      return await work();
    } catch (error) {
      cleanup.checkpoint();
      console.error(`${part} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      errors.push(`${part}: ${error instanceof Error ? error.message : String(error)}`.slice(0, 500));
      return undefined;
    }
  };
}

/**
 * A temporary directory removed by the clean-up; readable by others (an embedded PostgreSQL in it
 * runs as its own user when the bench runs as root).
 */
export async function tempDir(cleanup: Cleanup, label: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), `pixshare-bench-${label}-`));
  await chmod(dir, 0o755);
  cleanup.add('temp dir', () => rm(dir, { recursive: true, force: true }));
  return dir;
}

// -- small helpers -------------------------------------------------------------

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Nearest-rank percentile. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export const mbps = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000);
export const r1 = (n: number) => Math.round(n * 10) / 10;
export const r2 = (n: number) => Math.round(n * 100) / 100;
export const r3 = (n: number) => Math.round(n * 1000) / 1000;
export const fmtMs = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`);
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function readStatus(pid: number): Promise<{ rssMib: number; hwmMib: number } | null> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => null);
  if (!text) return null;
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { rssMib: kib('VmRSS') / 1024, hwmMib: kib('VmHWM') / 1024 };
}

let clockTicks: Promise<number> | undefined;
/** CPU time (user + system) the process has used so far, from /proc/<pid>/stat. */
export async function readCpuMs(pid: number): Promise<number> {
  clockTicks ??= execFileAsync('getconf', ['CLK_TCK']).then((r) => Number(r.stdout.trim()) || 100, () => 100);
  const ticks = await clockTicks;
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  if (!text) return NaN;
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of stat(5), counted from the pid: utime and stime, in clock ticks.
  return ((Number(fields[11]) + Number(fields[12])) / ticks) * 1000;
}

export async function signUp(baseUrl: string, label: string): Promise<Client> {
  const email = `${label}-${Date.now()}-${randomBytes(3).toString('hex')}@bench.example.com`;
  const { signUp: result } = await new ApiClient(baseUrl).graphql<{ signUp: { token: string; user: { id: string } } }>(
    'mutation($e: String!, $p: String!) { signUp(email: $e, password: $p, device: { name: "bench", platform: "linux" }) { token user { id } } }',
    { e: email, p: PASSWORD },
  );
  return Object.assign(new ApiClient(baseUrl, result.token), { userId: result.user.id, email, token: result.token });
}

/** Runs `work` over `items` with at most `parallel` at once; results in item order. */
export async function inParallel<T, R>(items: T[], parallel: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(parallel, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await work(items[i]!, i);
      }
    }),
  );
  return results;
}

// -- the server process (as bench/upload.ts's rss part runs it) ------------------------

export async function startServerProcess(cleanup: Cleanup, dataDir: string, extraEnv: Record<string, string>): Promise<{ child: ChildProcess; url: string; stop(): Promise<void> }> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env: NodeJS.ProcessEnv = { ...process.env };
  // The documented local set-up: embedded PostgreSQL and files under the data directory.
  for (const name of Object.keys(env)) if (name === 'DATABASE_URL' || name === 'SMTP_URL' || name === 'MAIL_FROM' || name.startsWith('S3_') || name.startsWith('PIXSHARE_')) delete env[name];
  Object.assign(env, {
    NODE_ENV: process.env.NODE_ENV ?? 'production',
    PIXSHARE_DATA_DIR: dataDir,
    PORT: String(port),
    HOST: '127.0.0.1',
    PUBLIC_URL: url, // share links and signed URLs must reach this server
    PIXSHARE_ARGON2_MEMORY_KIB: '1024',
    ...extraEnv,
  });
  // As `npm start` runs it (package.json).
  // BENCH_SERVER_NODE_ARGS: extra node options for the server, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` (NODE_OPTIONS refuses those).
  const nodeArgs = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, ['--initial-heap-size=128', ...nodeArgs, '--import', 'tsx', 'src/main.ts'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  cleanup.children.add(child);
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = cleanup.add('server process', async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 30_000).unref());
      if ((await Promise.race([exited, timeout])) === 'timeout') {
        child.kill('SIGKILL');
        await exited;
      }
    }
    cleanup.children.delete(child);
    // A server that died without stopping its PostgreSQL leaves it running: stop it here.
    const pid = Number((await readFile(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8').catch(() => '')).split('\n')[0]);
    if (pid > 0) {
      try {
        process.kill(pid, 'SIGINT');
        for (let i = 0; i < 200 && (await readStatus(pid)); i++) await sleep(50);
      } catch {
        // already gone
      }
    }
  });
  const deadline = Date.now() + 90_000;
  while (!output.includes('listening on')) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`server process did not start:\n${output}`);
    await sleep(50);
  }
  // Unexpected server errors are shown (the server logs them on stderr with a [pixshare] prefix).
  child.stderr!.on('data', (c: Buffer) => process.stderr.write(`[server] ${c.toString()}`));
  return { child, url, stop };
}

/** Runs a plain JavaScript module in a fresh `node` with `job` as its argument; resolves with the last line of its output, parsed as JSON. */
export async function runScript<T>(cleanup: Cleanup, label: string, script: string, job: object): Promise<T> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(job)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  cleanup.children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise<T>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      cleanup.children.delete(child);
      const last = stdout.trim().split('\n').at(-1) ?? '';
      if (code === 0 && last.startsWith('{')) resolve(JSON.parse(last) as T);
      else reject(new Error(`${label} exited with ${code ?? signal}: ${stderr.trim().slice(-2000) || stdout.slice(-500)}`));
    });
  });
}

