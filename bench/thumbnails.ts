/**
 * Thumbnail pipeline speed: our one-decode `deriveImages` (preview + thumbnail + header facts +
 * dHash) against plain sharp making the same two WebP images the usual way — two pipelines,
 * each decoding the original, plus `metadata()` — over the same files.
 *
 * The files are photo-like 12 MP JPEGs (4000×3000, quality 90, a few MB each), generated
 * into a temp dir before timing (BENCH_THUMBS_COUNT, default 50). Both sides use the same
 * WebP settings and the same (process-wide) sharp settings of our media module.
 *
 * Two modes, each timed as the median of 5 rounds (≥ 3). Within a round the two sides take
 * turns every few files, alternating which goes first, so that load from other processes on
 * a shared machine falls on both alike:
 * - latency: one file after another, each side using both cores within a file the natural
 *   way (Promise.all over its operations). This is `thumbs_vs_sharp`, the headline figure.
 * - throughput: two files in flight, as a job queue on a 2-core server would run them;
 *   here the saved second decode shows, because no core is idle to hide it.
 * CPU time (user + system, all threads) per file is reported for the latency mode.
 *
 * `thumbs_vs_sharp` = sharp_ms / ours_ms: ≥ 1 means we are faster, the target is ≥ 0.9
 * (we also compute the perceptual hash, which the baseline does not; EXIF facts are read separately, see bench/media.ts).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { deriveImages, PREVIEW_MAX_SIDE, PREVIEW_WEBP, THUMBNAIL_SIDE, THUMBNAIL_WEBP } from '../src/services/media/derive-images.js';
import { sharp } from '../src/services/media/sharp-runtime.js';
import { photoLikeJpeg } from '../test/media/photo-like.js';

export interface MeasureThumbnailsOptions {
  /** Number of 12 MP JPEGs (default: BENCH_THUMBS_COUNT or 50). */
  count?: number;
  /** Timed rounds per side, at least 3 (default 5: the machine may be shared, medians need samples). */
  rounds?: number;
  /** Files in flight at once (default 1, the latency mode). */
  parallel?: number;
  /** Progress lines; silent by default so other benchmarks can call this quietly. */
  log?: (line: string) => void;
}

export interface ThumbnailFigures {
  ours_ms: number;
  sharp_ms: number;
  /** sharp_ms / ours_ms */
  ratio: number;
}

interface DetailedFigures extends ThumbnailFigures {
  ours_cpu_ms: number;
  sharp_cpu_ms: number;
}

const WIDTH = 4000;
const HEIGHT = 3000;

export async function measureThumbnails(opts: MeasureThumbnailsOptions = {}): Promise<ThumbnailFigures> {
  const { ours_ms, sharp_ms, ratio } = await withFiles(opts, (files, log) => measure(files, opts, log));
  return { ours_ms, sharp_ms, ratio };
}

export async function run(): Promise<void> {
  const count = Number(process.env.BENCH_THUMBS_COUNT ?? 50);
  console.log(
    `thumbnails bench: ${count} photo-like ${WIDTH}×${HEIGHT} JPEGs; preview ≤${PREVIEW_MAX_SIDE} px WebP + ` +
      `${THUMBNAIL_SIDE}² WebP thumbnail; ${cpus().length} CPUs, sharp concurrency ${sharp.concurrency()}, libvips ${sharp.versions.vips}`,
  );
  const log = (line: string) => console.log(line);
  const [latency, throughput] = await withFiles({ count, log }, async (files) => {
    log('latency mode (one file at a time):');
    const first = await measure(files, { parallel: 1 }, log);
    log('throughput mode (two files in flight):');
    return [first, await measure(files, { parallel: 2 }, log)] as const;
  });
  const perFile = (ms: number) => (ms / count).toFixed(1);
  console.log(`ours (one decode, + dHash): ${perFile(latency.ours_ms)} ms/file, CPU ${perFile(latency.ours_cpu_ms)} ms/file`);
  console.log(`plain sharp (two decodes + metadata): ${perFile(latency.sharp_ms)} ms/file, CPU ${perFile(latency.sharp_cpu_ms)} ms/file`);
  console.log(`thumbs_vs_sharp = sharp / ours = ${latency.ratio} (target ≥ 0.9; ≥ 1 means ours is faster)`);
  console.log(`two in flight: ours ${perFile(throughput.ours_ms)} ms/file, sharp ${perFile(throughput.sharp_ms)} ms/file, sharp / ours = ${throughput.ratio}`);
  console.log(
    JSON.stringify({
      bench: 'thumbnails',
      files: count,
      ours_ms: latency.ours_ms,
      sharp_ms: latency.sharp_ms,
      thumbs_vs_sharp: latency.ratio,
      ours_cpu_ms: latency.ours_cpu_ms,
      sharp_cpu_ms: latency.sharp_cpu_ms,
      parallel2_ours_ms: throughput.ours_ms,
      parallel2_sharp_ms: throughput.sharp_ms,
      parallel2_thumbs_vs_sharp: throughput.ratio,
    }),
  );
}

async function withFiles<T>(opts: MeasureThumbnailsOptions, body: (files: string[], log: (line: string) => void) => Promise<T>): Promise<T> {
  const count = opts.count ?? Number(process.env.BENCH_THUMBS_COUNT ?? 50);
  if (!Number.isInteger(count) || count <= 0) throw new Error('BENCH_THUMBS_COUNT must be a positive integer');
  const log = opts.log ?? (() => {});
  const dir = await mkdtemp(path.join(tmpdir(), 'pixshare-bench-thumbs-'));
  try {
    const files = await generateFiles(dir, count, log);
    // Warm-up: first use loads libvips modules and faults in code pages.
    await ours(files[0]!);
    await plainSharp(files[0]!);
    return await body(files, log);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function measure(files: string[], opts: MeasureThumbnailsOptions, log: (line: string) => void): Promise<DetailedFigures> {
  const rounds = Math.max(3, opts.rounds ?? 5);
  const parallel = Math.max(1, opts.parallel ?? 1);
  // Within a round the sides take turns every few files (which one goes first alternates too),
  // so a neighbour's burst of CPU use on a shared machine lands on both sides alike.
  const batch = 4 * parallel;
  const wall = { ours: [] as number[], sharp: [] as number[] };
  const cpu = { ours: [] as number[], sharp: [] as number[] };
  for (let round = 0; round < rounds; round++) {
    const total = { ours: { ms: 0, cpuMs: 0 }, sharp: { ms: 0, cpuMs: 0 } };
    for (let first = 0; first < files.length; first += batch) {
      const slice = files.slice(first, first + batch);
      const order = (round + first / batch) % 2 === 0 ? (['ours', 'sharp'] as const) : (['sharp', 'ours'] as const);
      for (const side of order) {
        const { ms, cpuMs } = await timeAll(slice, side === 'ours' ? ours : plainSharp, parallel);
        total[side].ms += ms;
        total[side].cpuMs += cpuMs;
      }
    }
    for (const side of ['ours', 'sharp'] as const) {
      const { ms, cpuMs } = total[side];
      wall[side].push(ms);
      cpu[side].push(cpuMs);
      log(`  round ${round + 1} ${side.padEnd(5)} ${ms.toFixed(0)} ms (${(ms / files.length).toFixed(1)} ms/file, CPU ${(cpuMs / files.length).toFixed(1)} ms/file)`);
    }
  }
  const ours_ms = round1(median(wall.ours));
  const sharp_ms = round1(median(wall.sharp));
  return {
    ours_ms,
    sharp_ms,
    ratio: Math.round((sharp_ms / ours_ms) * 1000) / 1000,
    ours_cpu_ms: round1(median(cpu.ours)),
    sharp_cpu_ms: round1(median(cpu.sharp)),
  };
}

async function ours(file: string): Promise<void> {
  const result = await deriveImages(file);
  if (!result.ok) throw new Error(`deriveImages failed on ${file}: ${result.reason} ${result.message}`);
}

/** What one would write with sharp directly: each output its own pipeline from the file. */
async function plainSharp(file: string): Promise<void> {
  await Promise.all([
    sharp(file).metadata(),
    sharp(file)
      .rotate()
      .resize(PREVIEW_MAX_SIDE, PREVIEW_MAX_SIDE, { fit: 'inside', withoutEnlargement: true })
      .webp(PREVIEW_WEBP)
      .toBuffer(),
    sharp(file).rotate().resize(THUMBNAIL_SIDE, THUMBNAIL_SIDE, { fit: 'cover' }).webp(THUMBNAIL_WEBP).toBuffer(),
  ]);
}

async function timeAll(files: string[], work: (file: string) => Promise<void>, parallel: number): Promise<{ ms: number; cpuMs: number }> {
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  let next = 0;
  const lane = async () => {
    while (next < files.length) await work(files[next++]!);
  };
  await Promise.all(Array.from({ length: parallel }, lane));
  const ms = performance.now() - start;
  const cpu = process.cpuUsage(cpuStart);
  return { ms, cpuMs: (cpu.user + cpu.system) / 1000 };
}

async function generateFiles(dir: string, count: number, log: (line: string) => void): Promise<string[]> {
  const start = performance.now();
  const files: string[] = [];
  let bytes = 0;
  // Two at a time: generation is JS-heavy (grain) and libvips-heavy (encode) in turns.
  for (let i = 0; i < count; i += 2) {
    const batch = [i, i + 1].filter((n) => n < count);
    await Promise.all(
      batch.map(async (n) => {
        const file = path.join(dir, `photo-${String(n).padStart(3, '0')}.jpg`);
        const jpeg = await photoLikeJpeg({ width: WIDTH, height: HEIGHT, seed: 1000 + n, quality: 90 });
        bytes += jpeg.length;
        await writeFile(file, jpeg);
        files[n] = file;
      }),
    );
  }
  log(`  generated ${count} files, ${(bytes / count / 1e6).toFixed(2)} MB each on average, in ${((performance.now() - start) / 1000).toFixed(1)} s (not timed)`);
  return files;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}
