/**
 * The friends' share page in Chromium (Debian's, driven by playwright-core), against the server as
 * its own process (src/main.ts, embedded PostgreSQL, fs storage, as `npm start` runs it):
 *
 * - share_js_gzip_kib: the JavaScript and CSS the share page loads (the files index.html names),
 *   gzip-compressed (level 9), in KiB (goal < 100);
 * - first_50_thumbs_ms: a 1,000-photo share opened in a fresh browser context (no cache), from
 *   navigation start to the moment the first 50 thumbnails of the grid are decoded and shown
 *   (checked every animation frame), p50 of 5 (desktop window 1280×800);
 * - heap_mib: the page's JavaScript heap once those are shown (CDP Runtime.getHeapUsage, used), median.
 *
 * Knobs: BENCH_WEB_PHOTOS (1000), BENCH_WEB_ROUNDS (5).
 */
import { mkdir, mkdtemp, readFile, rm, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { ensureWebBuild } from '../src/http/web-build.js';
import { WEB_DIST } from '../src/http/web.js';
import { createShare, tokenOf } from '../test/support/sharing.js';
import { launchChromium } from '../test/support/browser.js';
import { median, r1, signUp, startBench, startServerProcess } from './support/kit.js';
import { folderId, makePhotos, uploadAll } from './support/photos.js';

function int(name: string, fallback: number): number {
  const raw = process.env[name];
  const value = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a whole number ≥ 1`);
  return value;
}

/** The page's scripts and styles, as index.html names them, gzip-compressed. */
async function shareBundleGzipKib(): Promise<{ kib: number; files: { file: string; raw: number; gzip: number }[] }> {
  const html = await readFile(path.join(WEB_DIST, 'index.html'), 'utf8');
  const names = [...html.matchAll(/(?:src|href)="(\/app\/[^"]+\.(?:js|css))"/g)].map((m) => m[1]!);
  const files = await Promise.all(
    names.map(async (name) => {
      const bytes = await readFile(path.join(WEB_DIST, name));
      return { file: name, raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
    }),
  );
  return { kib: files.reduce((n, f) => n + f.gzip, 0) / 1024, files };
}

export async function run(): Promise<void> {
  const photos = int('BENCH_WEB_PHOTOS', 1000);
  const rounds = int('BENCH_WEB_ROUNDS', 5);
  const cleanup = startBench();
  const started = performance.now();
  const errors: string[] = [];
  let bundle: Awaited<ReturnType<typeof shareBundleGzipKib>> | undefined;
  const times: number[] = [];
  const heaps: number[] = [];
  try {
    const log = { info: (line: string) => console.log(line), error: (line: string, error?: unknown) => console.error(line, error ?? '') };
    if (!(await ensureWebBuild(log))) throw new Error('the web app could not be built');
    bundle = await shareBundleGzipKib();
    console.log(`web bench: the share page's scripts and styles: ${bundle.files.map((f) => `${f.file} ${r1(f.raw / 1024)} KiB (${r1(f.gzip / 1024)} gzip)`).join(', ')}`);

    const work = await mkdtemp(path.join(tmpdir(), 'pixshare-bench-web-'));
    await chmod(work, 0o755);
    cleanup.add('temp dir', () => rm(work, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 }));
    const dataDir = path.join(work, 'server');
    await mkdir(dataDir, { recursive: true });
    await chmod(dataDir, 0o755);
    const server = await startServerProcess(cleanup, dataDir, { PIXSHARE_STANDARD_QUOTA: '1TB' });
    const owner = await signUp(server.url, 'owner');
    const setup = performance.now();
    const photoDir = path.join(work, 'photos');
    await mkdir(photoDir);
    await uploadAll(owner, await makePhotos(photoDir, photos), 'Summer', 8);
    console.log(`set-up: ${photos} photo-like JPEGs (320×240) uploaded in ${((performance.now() - setup) / 1000).toFixed(1)} s`);
    const created = await createShare(owner, { folderIds: [await folderId(owner, 'Summer')], emails: ['friend@bench.example.org'], allowOriginals: true });
    const link = `${server.url}/s/${tokenOf(created.links[0]!.url)}`;

    const browser = await launchChromium();
    cleanup.add('browser', () => browser.close());
    for (let round = 0; round < rounds + 1; round++) {
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      const page = await context.newPage();
      await page.goto(link, { waitUntil: 'commit' });
      // From navigation start (performance.timeOrigin) to the frame in which 50 thumbnails are shown.
      // A string, not a function: tsx would add its own helpers (__name) that the page does not have.
      const ms = (await page.evaluate(`new Promise((resolve, reject) => {
        const deadline = performance.now() + 60000;
        const tick = () => {
          const shown = [...document.querySelectorAll('.grid img')].slice(0, 50).filter((img) => img.complete && img.naturalWidth > 0).length;
          if (shown === 50) resolve(performance.now());
          else if (performance.now() > deadline) reject(new Error('only ' + shown + ' thumbnails shown after 60 s'));
          else requestAnimationFrame(tick);
        };
        tick();
      })`)) as number;
      // Where the time went: the app's script, the share query, the thumbnails.
      const phases = (await page.evaluate(`(() => {
        const entries = performance.getEntriesByType('resource');
        const script = entries.find((e) => e.name.includes('/app/') && e.name.endsWith('.js'));
        const query = entries.find((e) => e.name.endsWith('/graphql'));
        const thumbs = entries.filter((e) => e.name.includes('/thumbnail')).slice(0, 50);
        const nav = performance.getEntriesByType('navigation')[0];
        return { html: nav ? nav.responseEnd : 0, script: script ? script.responseEnd : 0, queryStart: query ? query.startTime : 0, queryEnd: query ? query.responseEnd : 0, thumbsStart: thumbs.length ? Math.min(...thumbs.map((t) => t.startTime)) : 0, thumbsEnd: thumbs.length ? Math.max(...thumbs.map((t) => t.responseEnd)) : 0, thumbMs: thumbs.length ? thumbs.map((t) => t.responseEnd - t.requestStart).sort((a, b) => a - b)[thumbs.length >> 1] : 0 };
      })()`)) as Record<string, number>;
      const cdp = await context.newCDPSession(page);
      const heap = (await cdp.send('Runtime.getHeapUsage')) as { usedSize: number };
      // The first round warms up the server (its caches, the JIT); it is not counted.
      if (round > 0) {
        times.push(ms);
        heaps.push(heap.usedSize / 2 ** 20);
        console.log(
          `  round ${round}: first 50 thumbnails shown after ${r1(ms)} ms (HTML ${r1(phases.html!)}, script ${r1(phases.script!)}, share query ${r1(phases.queryStart!)}–${r1(phases.queryEnd!)}, thumbnails ${r1(phases.thumbsStart!)}–${r1(phases.thumbsEnd!)}, one thumbnail p50 ${r1(phases.thumbMs!)} ms); JavaScript heap ${r1(heap.usedSize / 2 ** 20)} MiB`,
        );
      }
      await context.close();
    }
  } catch (error) {
    console.error(error);
    errors.push(String(error).slice(0, 500));
  } finally {
    await cleanup.run();
  }
  const first50 = times.length ? median(times) : null;
  const heap = heaps.length ? median(heaps) : null;
  if (bundle) console.log(`summary: share page scripts and styles ${r1(bundle.kib)} KiB gzip (goal < 100: ${bundle.kib < 100 ? 'MET' : 'MISSED'}); first 50 thumbnails p50 ${first50 === null ? '—' : `${r1(first50)} ms`}; heap ${heap === null ? '—' : `${r1(heap)} MiB`}`);
  console.log(
    JSON.stringify({
      bench: 'web',
      share_js_gzip_kib: bundle ? r1(bundle.kib) : null,
      first_50_thumbs_ms: first50 === null ? null : r1(first50),
      heap_mib: heap === null ? null : r1(heap),
      first_50_thumbs_rounds_ms: times.map(r1),
      photos: Number(process.env.BENCH_WEB_PHOTOS ?? 1000),
      targets_met: { share_js_gzip_kib: bundle ? bundle.kib < 100 : false },
      errors,
      duration_s: r1((performance.now() - started) / 1000),
    }),
  );
}
