/**
 * Live sync status at scale (S3): 1 and then 1,000 graphql-ws subscribers on one folder while 100
 * files upload into it. The server runs as its own process (src/main.ts, embedded PostgreSQL, fs
 * storage, as `npm start` runs it); the subscribers run in processes of their own
 * (bench/support/live-clients.ts, split over BENCH_SUBSCRIBER_PROCESSES), each subscriber on its own
 * WebSocket connection, as dashboards are; the uploads come from one more process (one check of
 * the 100 files, the plan, then the SDK's uploadFile, BENCH_UPLOAD_PARALLEL at a time).
 *
 * Per phase (1 subscriber, then BENCH_SUBSCRIBERS, each on a fresh folder and fresh files):
 * - delivered_all: every subscriber received the folder's final state (all files done);
 * - latency: for every file change a subscriber receives (a file whose updatedAt is new to it),
 *   arrival time minus the time the server recorded the change (updatedAt; one machine, one
 *   clock); p50 and p99 over all subscribers. The server's message rate per subscription is its
 *   default (PIXSHARE_LIVE_MESSAGES_PER_SECOND, 10): a change in a burst waits up to 100 ms for
 *   its message, by design;
 * - queries_per_event: index and sequential scans of every table (pg_stat_user_tables, read from
 *   the server's PostgreSQL before and after, once its statistics are flushed) per change of a
 *   planned file (rows inserted or updated in sync_files). Every statement that reads or changes
 *   rows by a condition scans at least once; the uploads' own statements are the same in both
 *   phases, so what subscribers cost shows as the difference;
 * - kib_per_subscriber: the server's VmRSS with the subscribers connected (each has its first
 *   message) minus before they connected, per subscriber (median of 5 samples each).
 *
 * p99_ratio_vs_1 = p99 with BENCH_SUBSCRIBERS / p99 with 1 (goal ≤ 10); queries_per_event should
 * not grow with the number of subscribers (queries_ratio_vs_1 ≈ 1).
 *
 * Knobs: BENCH_SUBSCRIBERS (1000), BENCH_SUBSCRIBER_PROCESSES (4), BENCH_SYNC_FILES (100),
 * BENCH_SYNC_FILE_KIB (256), BENCH_UPLOAD_PARALLEL (4).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import postgres from 'postgres';
import type { SubscribeJob, SubscribeResult, UploadJob } from './support/live-clients.js';
import { Cleanup, r1, startBench, r2, r3, readCpuMs, readStatus, ROOT, signUp, sleep, startServerProcess, median, type Client } from './support/kit.js';

interface Settings {
  subscribers: number;
  processes: number;
  files: number;
  fileBytes: number;
  uploadParallel: number;
}

function settings(): Settings {
  const int = (name: string, fallback: number) => {
    const raw = process.env[name];
    const value = raw === undefined || raw === '' ? fallback : Number(raw);
    if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a whole number ≥ 1`);
    return value;
  };
  return {
    subscribers: int('BENCH_SUBSCRIBERS', 1000),
    processes: int('BENCH_SUBSCRIBER_PROCESSES', 4),
    files: int('BENCH_SYNC_FILES', 100),
    fileBytes: int('BENCH_SYNC_FILE_KIB', 256) * 1024,
    uploadParallel: int('BENCH_UPLOAD_PARALLEL', 4),
  };
}

interface PhaseFigures {
  subscribers: number;
  deliveredAll: boolean;
  finished: number;
  samples: number;
  p50: number;
  p99: number;
  max: number;
  messagesPerSubscriber: number;
  uploadMs: number;
  events: number;
  scans: number;
  queriesPerEvent: number;
  syncReads: number;
  kibPerSubscriber: number | null;
  serverCpuMs: number;
  clientMaxRssMib: number;
  errors: string[];
}

/** A client process of bench/support/live-clients.ts; `ready` resolves on its `ready` line. */
function startClient<T>(cleanup: Cleanup, job: SubscribeJob | UploadJob): { ready: Promise<void>; result: Promise<T> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/support/live-clients.ts', JSON.stringify(job)], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  cleanup.children.add(child);
  let stderr = '';
  let last = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  let onReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (line === 'ready') onReady();
    else if (line.startsWith('{')) last = line;
  });
  const result = new Promise<T>((resolve, reject) => {
    child.once('exit', (code, signal) => {
      cleanup.children.delete(child);
      // (Parsed inside a try: an exception thrown in this callback would end the benchmark without its clean-up.)
      try {
        if (code === 0 && last) resolve(JSON.parse(last) as T);
        else reject(new Error(`${job.mode} client exited with ${code ?? signal}: ${stderr.trim().slice(-1500)}`));
      } catch (error) {
        reject(new Error(`${job.mode} client's result is not JSON (${String(error)}): ${last.slice(0, 200)}`));
      }
    });
  });
  result.catch(() => onReady());
  return { ready, result };
}

/** The server's PostgreSQL (embedded, under its data directory): address and password from its files. */
async function connectServerDatabase(dataDir: string): Promise<postgres.Sql> {
  const password = (await readFile(path.join(dataDir, 'pg.password'), 'utf8')).trim();
  const port = Number((await readFile(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8')).split('\n')[3]);
  return postgres({ host: '127.0.0.1', port, user: 'postgres', password, database: 'pixshare', max: 1, onnotice: () => {} });
}

interface TableStats {
  scans: number;
  syncChanges: number;
  syncReads: number;
}

async function tableStats(sql: postgres.Sql): Promise<TableStats> {
  const [row] = await sql<{ scans: string; sync_changes: string; sync_reads: string }[]>`
    select sum(seq_scan + coalesce(idx_scan, 0)) as scans,
      sum(case when relname = 'sync_files' then n_tup_ins + n_tup_upd else 0 end) as sync_changes,
      sum(case when relname in ('sync_files', 'folder_syncs') then seq_scan + coalesce(idx_scan, 0) else 0 end) as sync_reads
    from pg_stat_user_tables`;
  return { scans: Number(row!.scans), syncChanges: Number(row!.sync_changes), syncReads: Number(row!.sync_reads) };
}

/** Server statistics reach pg_stat_* when a backend flushes them: at most once a second, and within 10 s of going idle. */
const STATS_FLUSH_MS = 11_000;

async function rssMib(pid: number): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    samples.push((await readStatus(pid))?.rssMib ?? NaN);
    await sleep(100);
  }
  return median(samples);
}

async function makeFiles(dir: string, count: number, bytes: number): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  return Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const file = path.join(dir, `IMG_${String(i + 1).padStart(4, '0')}.bin`);
      await writeFile(file, randomBytes(bytes));
      return file;
    }),
  );
}

async function runPhase(cleanup: Cleanup, s: Settings, server: { url: string; pid: number }, db: postgres.Sql, owner: Client, work: string, subscribers: number, label: string): Promise<PhaseFigures> {
  const files = await makeFiles(path.join(work, label), s.files, s.fileBytes);
  const folder = `Bench ${label}`;
  const { createFolder } = await owner.graphql<{ createFolder: { id: string } }>('mutation($n: String) { createFolder(name: $n) { id } }', { n: folder });
  const rssBefore = await rssMib(server.pid);
  const processes = Math.min(s.processes, subscribers);
  const clients = Array.from({ length: processes }, (_, i) => {
    const count = Math.floor(subscribers / processes) + (i < subscribers % processes ? 1 : 0);
    return startClient<SubscribeResult>(cleanup, { mode: 'subscribe', url: server.url, token: owner.token, folderId: createFolder.id, count, expectDone: s.files, timeoutMs: 180_000 });
  });
  await Promise.all(clients.map((c) => c.ready));
  const rssConnected = await rssMib(server.pid);
  // Connecting (authentication, the first read) is done: from here on, only the uploads' events.
  await sleep(STATS_FLUSH_MS);
  const before = await tableStats(db);
  const cpuBefore = await readCpuMs(server.pid);
  const uploader = startClient<{ ms: number; uploaded: number }>(cleanup, { mode: 'upload', url: server.url, token: owner.token, folder, files, parallel: s.uploadParallel });
  const uploaded = await uploader.result;
  if (uploaded.uploaded !== s.files) throw new Error(`${label}: ${uploaded.uploaded} of ${s.files} files uploaded`);
  const results = await Promise.all(clients.map((c) => c.result));
  const cpuAfter = await readCpuMs(server.pid);
  await sleep(STATS_FLUSH_MS);
  const after = await tableStats(db);

  const latencies = mergeHistograms(results.map((r) => r.latencies));
  const finished = results.reduce((n, r) => n + r.finished, 0);
  const events = after.syncChanges - before.syncChanges;
  const scans = after.scans - before.scans;
  return {
    subscribers,
    deliveredAll: finished === subscribers,
    finished,
    samples: latencies.count,
    p50: latencies.percentile(50),
    p99: latencies.percentile(99),
    max: latencies.percentile(100),
    messagesPerSubscriber: results.reduce((n, r) => n + r.messages, 0) / subscribers,
    uploadMs: uploaded.ms,
    events,
    scans,
    queriesPerEvent: events > 0 ? scans / events : NaN,
    syncReads: after.syncReads - before.syncReads,
    kibPerSubscriber: subscribers > 1 ? ((rssConnected - rssBefore) * 1024) / subscribers : null,
    serverCpuMs: cpuAfter - cpuBefore,
    clientMaxRssMib: Math.max(...results.map((r) => r.maxRssMib)),
    errors: results.flatMap((r) => r.errors),
  };
}

/** Latency histograms (ms → count) of all client processes, with nearest-rank percentiles. */
function mergeHistograms(histograms: Record<number, number>[]): { count: number; percentile(p: number): number } {
  const counts = new Map<number, number>();
  for (const histogram of histograms) for (const [ms, n] of Object.entries(histogram)) counts.set(Number(ms), (counts.get(Number(ms)) ?? 0) + n);
  const sorted = [...counts].sort((a, b) => a[0] - b[0]);
  const count = sorted.reduce((n, [, c]) => n + c, 0);
  return {
    count,
    percentile(p: number) {
      if (count === 0) return NaN;
      const rank = Math.max(1, Math.ceil((p / 100) * count));
      let seen = 0;
      for (const [ms, n] of sorted) if ((seen += n) >= rank) return ms;
      return sorted[sorted.length - 1]![0];
    },
  };
}

function describe(p: PhaseFigures): string {
  return [
    `  ${p.subscribers} subscriber(s): ${p.finished} of ${p.subscribers} got the final state; upload of the files ${(p.uploadMs / 1000).toFixed(2)} s`,
    `    delivery latency over ${p.samples} changes: p50 ${r1(p.p50)} ms, p99 ${r1(p.p99)} ms, max ${r1(p.max)} ms; ${r1(p.messagesPerSubscriber)} messages per subscriber`,
    `    ${p.events} file changes; ${p.scans} table scans = ${r2(p.queriesPerEvent)} per change (of them on folder_syncs/sync_files: ${p.syncReads}); server CPU ${r1(p.serverCpuMs)} ms`,
    p.kibPerSubscriber !== null ? `    server memory ${r1(p.kibPerSubscriber)} KiB per subscriber (VmRSS with them connected, minus before)` : '',
    p.errors.length ? `    errors: ${p.errors.join('; ')}` : '',
  ]
    .filter(Boolean)
    .join('\n');
}

export async function run(): Promise<void> {
  const s = settings();
  const cleanup = startBench();
  const started = performance.now();
  const work = await mkdtemp(path.join(tmpdir(), 'pixshare-bench-subscriptions-'));
  await chmod(work, 0o755);
  cleanup.add('temp dir', () => rm(work, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 }));
  const errors: string[] = [];
  let one: PhaseFigures | undefined;
  let many: PhaseFigures | undefined;
  try {
    console.log(`subscriptions bench: Node ${process.version}, NODE_ENV=${process.env.NODE_ENV}; server = src/main.ts in its own process; ${s.files} files of ${s.fileBytes / 1024} KiB, ${s.uploadParallel} in flight`);
    const dataDir = path.join(work, 'server');
    await mkdir(dataDir, { recursive: true });
    await chmod(dataDir, 0o755);
    const server = await startServerProcess(cleanup, dataDir, { PIXSHARE_STANDARD_QUOTA: '1TB' });
    const db = await connectServerDatabase(dataDir);
    cleanup.add('database connection', () => db.end());
    const owner = await signUp(server.url, 'owner');
    const target = { url: server.url, pid: server.child.pid! };
    one = await runPhase(cleanup, s, target, db, owner, work, 1, 'one');
    console.log(describe(one));
    many = await runPhase(cleanup, s, target, db, owner, work, s.subscribers, 'many');
    console.log(describe(many));
  } catch (error) {
    console.error(error);
    errors.push(String(error).slice(0, 500));
  } finally {
    await cleanup.run();
  }
  const ratio = one && many ? many.p99 / one.p99 : NaN;
  const queriesRatio = one && many ? many.queriesPerEvent / one.queriesPerEvent : NaN;
  if (one && many) {
    console.log('summary:');
    console.log(`  1. every subscriber got the final state: ${many.deliveredAll && one.deliveredAll ? 'yes' : 'NO'}`);
    console.log(`  2. p99 delivery with ${many.subscribers} subscribers ${r1(many.p99)} ms vs ${r1(one.p99)} ms with 1 → p99_ratio_vs_1 ${r2(ratio)} (goal ≤ 10: ${ratio <= 10 ? 'MET' : 'MISSED'})`);
    console.log(`  3. table scans per file change: ${r2(many.queriesPerEvent)} with ${many.subscribers} vs ${r2(one.queriesPerEvent)} with 1 (ratio ${r2(queriesRatio)}; goal: independent of subscribers)`);
    console.log(`  4. server memory per subscriber: ${r1(many.kibPerSubscriber ?? NaN)} KiB`);
  }
  console.log(
    JSON.stringify({
      bench: 'subscriptions',
      subscribers: s.subscribers,
      delivered_all: Boolean(one?.deliveredAll && many?.deliveredAll),
      p50_ms: many ? r1(many.p50) : null,
      p99_ms: many ? r1(many.p99) : null,
      p99_ratio_vs_1: Number.isFinite(ratio) ? r2(ratio) : null,
      queries_per_event: many ? r3(many.queriesPerEvent) : null,
      kib_per_subscriber: many?.kibPerSubscriber != null ? r1(many.kibPerSubscriber) : null,
      one_p50_ms: one ? r1(one.p50) : null,
      one_p99_ms: one ? r1(one.p99) : null,
      one_queries_per_event: one ? r3(one.queriesPerEvent) : null,
      queries_ratio_vs_1: Number.isFinite(queriesRatio) ? r2(queriesRatio) : null,
      messages_per_subscriber: many ? r1(many.messagesPerSubscriber) : null,
      events: many?.events ?? null,
      latency_samples: many?.samples ?? null,
      server_cpu_ms: many ? r1(many.serverCpuMs) : null,
      one_server_cpu_ms: one ? r1(one.serverCpuMs) : null,
      files: s.files,
      targets_met: { delivered_all: Boolean(one?.deliveredAll && many?.deliveredAll), p99_ratio_vs_1: ratio <= 10 },
      errors,
      duration_s: r1((performance.now() - started) / 1000),
    }),
  );
}
