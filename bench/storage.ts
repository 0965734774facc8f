/**
 * Storage throughput and memory: streams one large object (512 MiB by default,
 * BENCH_STORAGE_MIB to change) through each BlobStore driver — put, then get with a hash
 * check — and through the chunked upload path (staged chunks, then assembly). A plain
 * fs.createWriteStream / createReadStream copy of the same bytes is the baseline.
 * The object is generated on the fly and never held in memory, so peak RSS shows what
 * the drivers themselves buffer. s3rver runs in a child process so that its CPU and
 * memory are not counted as ours.
 *
 * MB/s here is 10^6 bytes per second of object size. `<driver>_MBps` is the round trip:
 * object size / (put seconds + get seconds).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createCipheriv, createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BlobStore } from '../src/services/storage/blob-store.js';
import { FsBlobStore } from '../src/services/storage/fs-blob-store.js';
import { S3BlobStore } from '../src/services/storage/s3-blob-store.js';
import type { RunningS3rver } from '../test/support/s3rver.js';

const MiB = 1024 * 1024;
/** Chunk size and parallelism of the staged upload, like a client on a fast link. */
const CHUNK_SIZE = 8 * MiB;
const PARALLEL_CHUNKS = 4;
const SEED = createHash('sha256').update('pixshare storage bench').digest();

export async function run(): Promise<void> {
  const mib = Number(process.env.BENCH_STORAGE_MIB ?? 512);
  if (!Number.isInteger(mib) || mib <= 0) throw new Error('BENCH_STORAGE_MIB must be a positive integer');
  const size = mib * MiB;
  const rss = sampleRss(50);
  const work = await mkdtemp(path.join(tmpdir(), 'pixshare-bench-storage-'));
  const s3rver = await startS3rverProcess();
  const results: Record<string, number> = {};

  try {
    console.log(`storage bench: ${mib} MiB object, generated on the fly; MB/s = 10^6 bytes/s`);
    const expected = await fingerprint(pattern(0, size));

    rss.phasePeakMib();
    const baseline = await measureBaseline(path.join(work, 'baseline'), size, expected);
    baseline.peakRssMib = rss.phasePeakMib();
    report('baseline (fs.createWriteStream + fsync / createReadStream)', baseline);
    results.baseline_peak_rss_mib = baseline.peakRssMib;
    results.baseline_write_MBps = baseline.put;
    results.baseline_read_MBps = baseline.get;
    await rm(path.join(work, 'baseline'), { force: true });

    const drivers: [string, BlobStore][] = [
      ['fs', new FsBlobStore({ root: path.join(work, 'blobs'), publicBaseUrl: 'http://localhost', signingSecret: 'bench' })],
      ['s3', new S3BlobStore({ ...s3rver.info, forcePathStyle: true })],
    ];
    for (const [name, store] of drivers) {
      await store.checkReady();
      const figures = await measureDriver(store, size, expected);
      figures.peakRssMib = rss.phasePeakMib();
      report(`${name} driver`, figures);
      results[`${name}_peak_rss_mib`] = figures.peakRssMib;
      results[`${name}_MBps`] = figures.roundTrip;
      results[`${name}_put_MBps`] = figures.put;
      results[`${name}_get_MBps`] = figures.get;
      if (figures.staged !== undefined) results[`${name}_staged_upload_MBps`] = figures.staged;
      await store.close();
    }
  } finally {
    rss.stop();
    await s3rver.stop();
    await rm(work, { recursive: true, force: true });
  }

  const maxRssMib = process.resourceUsage().maxRSS / 1024; // KiB on Linux
  console.log(
    `peak RSS ${rss.peakMib.toFixed(1)} MiB sampled every 50 ms (started at ${rss.startMib.toFixed(1)} MiB); ` +
      `kernel max RSS ${maxRssMib.toFixed(1)} MiB; object ${mib} MiB`,
  );
  console.log(
    JSON.stringify({
      bench: 'storage',
      fs_MBps: round(results.fs_MBps),
      s3_MBps: round(results.s3_MBps),
      peak_rss_mib: round(rss.peakMib),
      max_rss_mib: round(maxRssMib),
      start_rss_mib: round(rss.startMib),
      size_mib: mib,
      ...Object.fromEntries(
        Object.entries(results)
          .filter(([key]) => key !== 'fs_MBps' && key !== 's3_MBps')
          .map(([key, value]) => [key, round(value)]),
      ),
    }),
  );
}

interface Figures {
  put: number;
  get: number;
  roundTrip: number;
  staged?: number;
  peakRssMib?: number;
}

async function measureBaseline(file: string, size: number, expected: Fingerprint): Promise<Figures> {
  const putSeconds = await timed(async () => {
    await pipeline(pattern(0, size), createWriteStream(file));
    const handle = await open(file, 'r+'); // the drivers fsync, so the baseline does too
    await handle.sync();
    await handle.close();
  });
  const getSeconds = await timed(async () => check(await fingerprint(createReadStream(file)), expected, 'baseline'));
  return { put: mbps(size, putSeconds), get: mbps(size, getSeconds), roundTrip: mbps(size, putSeconds + getSeconds) };
}

async function measureDriver(store: BlobStore, size: number, expected: Fingerprint): Promise<Figures> {
  const key = `blobs/${expected.sha256}`;
  const putSeconds = await timed(async () => {
    const { size: stored } = await store.put(key, pattern(0, size));
    if (stored !== size) throw new Error(`${store.driver}: put stored ${stored} bytes, expected ${size}`);
  });
  const getSeconds = await timed(async () => check(await fingerprint(await store.get(key)), expected, `${store.driver} get`));
  await store.delete(key);

  // The upload path: chunks written in parallel (each with its digest), then assembled.
  const uploadId = randomUUID();
  const chunks = Array.from({ length: Math.ceil(size / CHUNK_SIZE) }, (_, i) => ({
    offset: i * CHUNK_SIZE,
    length: Math.min(CHUNK_SIZE, size - i * CHUNK_SIZE),
  }));
  const stagedSeconds = await timed(async () => {
    let next = 0;
    const worker = async () => {
      for (let chunk = chunks[next++]; chunk; chunk = chunks[next++]) {
        await store.writeStagedChunk(uploadId, chunk.offset, chunk.length, pattern(chunk.offset, chunk.length));
      }
    };
    await Promise.all(Array.from({ length: PARALLEL_CHUNKS }, worker));
    await store.assembleStaged(uploadId, { size, chunks, expectedSha256: expected.sha256, key });
  });
  check(await fingerprint(await store.get(key)), expected, `${store.driver} assembled`);
  await store.delete(key);

  return {
    put: mbps(size, putSeconds),
    get: mbps(size, getSeconds),
    roundTrip: mbps(size, putSeconds + getSeconds),
    staged: mbps(size, stagedSeconds),
  };
}

function report(label: string, figures: Figures): void {
  const staged = figures.staged === undefined ? '' : `, staged upload (${PARALLEL_CHUNKS}×${CHUNK_SIZE / MiB} MiB chunks + assembly) ${figures.staged.toFixed(0)} MB/s`;
  const memory = figures.peakRssMib === undefined ? '' : `; peak RSS ${figures.peakRssMib.toFixed(0)} MiB`;
  console.log(
    `${label}: put ${figures.put.toFixed(0)} MB/s, get+hash ${figures.get.toFixed(0)} MB/s, round trip ${figures.roundTrip.toFixed(0)} MB/s${staged}${memory}`,
  );
}

/**
 * Bytes `[offset, offset + length)` of one endless reproducible stream: the AES-256-CTR
 * keystream, which can start at any 16-byte block, so chunks are generated independently.
 */
function pattern(offset: number, length: number): Readable {
  if (offset % 16 !== 0) throw new Error('pattern offsets must be multiples of 16');
  const iv = Buffer.alloc(16);
  iv.writeBigUInt64BE(BigInt(offset / 16), 8);
  const cipher = createCipheriv('aes-256-ctr', SEED, iv);
  const zeros = Buffer.alloc(MiB);
  let left = length;
  return new Readable({
    highWaterMark: MiB,
    read() {
      if (left === 0) return void this.push(null);
      const n = Math.min(left, zeros.length);
      left -= n;
      this.push(cipher.update(zeros.subarray(0, n)));
    },
  });
}

interface Fingerprint {
  sha256: string;
  length: number;
}

async function fingerprint(stream: Readable): Promise<Fingerprint> {
  const hash = createHash('sha256');
  let length = 0;
  for await (const piece of stream as AsyncIterable<Buffer>) {
    hash.update(piece);
    length += piece.length;
  }
  return { sha256: hash.digest('hex'), length };
}

function check(actual: Fingerprint, expected: Fingerprint, what: string): void {
  if (actual.sha256 !== expected.sha256 || actual.length !== expected.length) {
    throw new Error(`${what}: read back ${actual.length} bytes ${actual.sha256}, expected ${expected.length} bytes ${expected.sha256}`);
  }
}

async function timed(work: () => Promise<void>): Promise<number> {
  const start = process.hrtime.bigint();
  await work();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

const mbps = (bytes: number, seconds: number) => bytes / 1e6 / seconds;
const round = (value: number | undefined) => (value === undefined ? null : Math.round(value * 10) / 10);

interface RssSampler {
  readonly peakMib: number;
  readonly startMib: number;
  /** Peak since the previous call (or the start): attributes memory to one phase. */
  phasePeakMib(): number;
  stop(): void;
}

function sampleRss(everyMs: number): RssSampler {
  const startMib = process.memoryUsage().rss / MiB;
  let peakMib = startMib;
  let phaseMib = startMib;
  const sample = () => {
    const now = process.memoryUsage().rss / MiB;
    peakMib = Math.max(peakMib, now);
    phaseMib = Math.max(phaseMib, now);
  };
  const timer = setInterval(sample, everyMs);
  return {
    get peakMib() {
      return peakMib;
    },
    startMib,
    phasePeakMib() {
      sample();
      const phase = phaseMib;
      phaseMib = process.memoryUsage().rss / MiB;
      return phase;
    },
    stop: () => clearInterval(timer),
  };
}

/** s3rver (test/support/s3rver.ts) in its own process, so its work is not billed to the drivers. */
async function startS3rverProcess(): Promise<{ info: Omit<RunningS3rver, 'close'>; stop(): Promise<void> }> {
  const script = `
    const { startS3rver } = await import(${JSON.stringify(new URL('../test/support/s3rver.ts', import.meta.url).href)});
    const s3 = await startS3rver('bench');
    process.stdout.write(JSON.stringify(s3) + '\\n');
    process.on('SIGTERM', () => s3.close().then(() => process.exit(0)));
  `;
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const info = await new Promise<Omit<RunningS3rver, 'close'>>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (data: Buffer) => {
      out += data.toString();
      if (out.includes('\n')) resolve(JSON.parse(out.slice(0, out.indexOf('\n'))) as Omit<RunningS3rver, 'close'>);
    });
    child.once('exit', (code) => reject(new Error(`s3rver process exited with ${code}`)));
  });
  return {
    info,
    async stop() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
