/**
 * Background media processing: how close the whole pipeline (job queue → read the stored file →
 * facts → decode → preview + thumbnail + dHash → store → record and tell) comes to the physical
 * limit of the machine, and what moving it out of the request did to upload completion.
 *
 * 1. Pipeline. 50 real-size photos, mixed as a phone's and a laptop's camera roll: 30 JPEG
 *    (12 MP, a few MB), 10 HEIC (12 MP, HEVC), 10 PNG (12 MP), generated before timing. They
 *    are uploaded to a server that runs no jobs (PIXSHARE_RUN_JOBS=false, as an API-only
 *    instance), which is then stopped; a server that runs them (PIXSHARE_MEDIA_CONCURRENCY
 *    default) starts on the same data, and the clock runs from its "listening" line until every
 *    asset is ready. `media_per_s` = 50 / that time.
 *    Baseline, in this script on the same files, same two-at-a-time parallelism: the cheapest
 *    decode that gives the pixels the outputs need — sharp decoding JPEG and PNG to the preview
 *    size (JPEG shrink-on-load), and libheif decoding HEIC (sharp has no HEVC decoder), with no
 *    encoding, storing or bookkeeping. `media_vs_decode` = media_per_s / decode_per_s: the share
 *    of the physical limit reached (1.0 would mean encoding, hashing and bookkeeping are free).
 * 2. Completion latency of one 12 MP JPEG (median of 7 distinct photos, one at a time):
 *    `complete_ms` is the SDK's uploadFile from start to its answer, which now comes before the
 *    thumbnails; `complete_in_request_ms` is the time until the thumbnails are ready too (what
 *    completion cost when they were made inside the request). `complete_ratio` = in-request /
 *    background.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import path from 'node:path';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { ApiClient } from '../src/client/api-client.js';
import { uploadFile } from '../src/client/upload-file.js';
import { PREVIEW_WEBP, THUMBNAIL_SIDE, THUMBNAIL_WEBP } from '../src/services/media/derive-images.js';
import { decodeHeic } from '../src/services/media/heic.js';
import { computeDHash } from '../src/services/media/perceptual-hash.js';
import { fromRawPixels, sharp, type RawPixels } from '../src/services/media/sharp-runtime.js';
import { makeHeic } from '../test/media/make-heic.js';
import { photoLikeJpeg, photoLikePixels } from '../test/media/photo-like.js';
import { fmtMs, inParallel, median, r1, r2, r3, readCpuMs, signUp, startBench, startServerProcess, tempDir, type Client } from './support/kit.js';

const WIDTH = 4032;
const HEIGHT = 3024;
const MIX = { jpeg: 30, heic: 10, png: 10 };

interface Photo {
  file: string;
  name: string;
  kind: 'jpeg' | 'heic' | 'png';
  bytes: number;
}

export async function run(): Promise<void> {
  const cleanup = startBench();
  const dir = await tempDir(cleanup, 'media');
  try {
    console.log(`media bench: ${MIX.jpeg} JPEG + ${MIX.heic} HEIC + ${MIX.png} PNG at ${WIDTH}×${HEIGHT}; ${cpus().length} CPUs, libvips ${sharp.versions.vips}`);
    const photos = await makePhotos(dir);
    const total = photos.reduce((sum, p) => sum + p.bytes, 0);
    console.log(`made ${photos.length} photos, ${(total / 1e6).toFixed(0)} MB`);

    // -- baseline: the cheapest decode of the same files, two at a time ----------------------
    await decodeOnly(photos[0]!); // warm-up: libvips modules, the WebAssembly module
    await decodeOnly(photos.find((p) => p.kind === 'heic')!);
    const decodeRounds: number[] = [];
    for (let round = 0; round < 3; round++) {
      const started = performance.now();
      await inParallel(photos, 2, (photo) => decodeOnly(photo));
      decodeRounds.push(performance.now() - started);
      console.log(`decode only, round ${round + 1}: ${fmtMs(decodeRounds.at(-1)!)}`);
    }
    const decodeMs = median(decodeRounds);
    const perKind = await decodeCostPerKind(photos);
    const breakdown = await whereTheCpuGoes(photos);

    // -- the pipeline in a server ----------------------------------------------------------------
    const dataDir = path.join(dir, 'data');
    const apiOnly = await startServerProcess(cleanup, dataDir, { PIXSHARE_RUN_JOBS: 'false' });
    const owner = await signUp(apiOnly.url, 'media');
    await inParallel(photos, 4, async (photo) => {
      const result = await uploadFile(owner, photo.file, { name: photo.name, folder: 'Camera roll' });
      if (result.asset.thumbnailStatus !== 'pending') throw new Error(`${photo.name}: expected pending, got ${result.asset.thumbnailStatus}`);
    });
    await apiOnly.stop();
    const startedAt = performance.now();
    const worker = await startServerProcess(cleanup, dataDir, {});
    const listeningAt = performance.now();
    const cpuAtStart = await readCpuMs(worker.child.pid!);
    const client: Client = Object.assign(new ApiClient(worker.url, owner.token), { userId: owner.userId, email: owner.email, token: owner.token });
    const processed = await watchProcessed(client);
    const doneAt = await processed.waitFor(photos.length, 300_000);
    const pipelineMs = doneAt - listeningAt;
    // The server process's CPU time meanwhile (all its threads: libvips, the HEIC workers; not PostgreSQL's).
    const pipelineCpuMs = (await readCpuMs(worker.child.pid!)) - cpuAtStart;
    const utilisation = pipelineCpuMs / (pipelineMs * cpus().length);
    console.log(`server start ${fmtMs(listeningAt - startedAt)}; all ${photos.length} ready ${fmtMs(pipelineMs)} after it listened; server CPU ${fmtMs(pipelineCpuMs)} (${(utilisation * 100).toFixed(0)}% of ${cpus().length} cores)`);

    // -- completion latency, one 12 MP JPEG at a time --------------------------------------------
    const latency: { complete: number; ready: number }[] = [];
    for (let i = 0; i < 7; i++) {
      const file = path.join(dir, `single-${i}.jpg`);
      await writeFile(file, await photoLikeJpeg({ width: WIDTH, height: HEIGHT, seed: 900 + i }));
      const started = performance.now();
      const result = await uploadFile(client, file, { name: `single-${i}.jpg` });
      const complete = performance.now() - started;
      await processed.waitFor(photos.length + i + 1, 60_000);
      if (!processed.ready.has(result.asset.id)) throw new Error(`${result.asset.name} was not the one processed`);
      latency.push({ complete, ready: performance.now() - started });
    }
    await processed.close();
    await worker.stop();
    const completeMs = median(latency.map((l) => l.complete));
    const readyMs = median(latency.map((l) => l.ready));

    const mediaPerS = photos.length / (pipelineMs / 1000);
    const decodePerS = photos.length / (decodeMs / 1000);
    console.log(`pipeline: ${mediaPerS.toFixed(2)} photos/s; decode only: ${decodePerS.toFixed(2)} photos/s (${Object.entries(perKind).map(([k, ms]) => `${k} ${ms.toFixed(0)} ms`).join(', ')} per photo, one at a time)`);
    console.log(`media_vs_decode = ${(mediaPerS / decodePerS).toFixed(3)}`);
    console.log(`completion of one 12 MP JPEG: ${fmtMs(completeMs)} answered (thumbnails pending); ${fmtMs(readyMs)} until its thumbnails were ready (what an in-request completion took)`);
    console.log(
      JSON.stringify({
        bench: 'media',
        photos: photos.length,
        mix: MIX,
        media_per_s: r2(mediaPerS),
        decode_per_s: r2(decodePerS),
        media_vs_decode: r3(mediaPerS / decodePerS),
        pipeline_ms: Math.round(pipelineMs),
        pipeline_cpu_ms: Math.round(pipelineCpuMs),
        pipeline_cpu_share: r2(utilisation),
        decode_ms: Math.round(decodeMs),
        decode_ms_per_photo: Object.fromEntries(Object.entries(perKind).map(([k, v]) => [k, Math.round(v)])),
        complete_ms: Math.round(completeMs),
        complete_in_request_ms: Math.round(readyMs),
        complete_ratio: r2(readyMs / completeMs),
        cpu_ms: breakdown,
      }),
    );
  } finally {
    await cleanup.run();
  }
}

async function makePhotos(dir: string): Promise<Photo[]> {
  const kinds = [...Array(MIX.jpeg).fill('jpeg'), ...Array(MIX.heic).fill('heic'), ...Array(MIX.png).fill('png')] as Photo['kind'][];
  // Interleaved, as a camera roll mixes them.
  const order = kinds.map((kind, i) => ({ kind, key: (i * 7919) % kinds.length })).sort((a, b) => a.key - b.key);
  return inParallel(order, 2, async ({ kind }, i) => {
    const seed = 100 + i;
    let bytes: Buffer;
    if (kind === 'jpeg') bytes = await photoLikeJpeg({ width: WIDTH, height: HEIGHT, seed });
    else if (kind === 'heic') bytes = await makeHeic({ image: await photoLikeJpeg({ width: WIDTH, height: HEIGHT, seed }), quality: 18 });
    else {
      const pixels = await photoLikePixels({ width: WIDTH, height: HEIGHT, seed });
      bytes = await sharp(pixels.data, { raw: pixels }).png({ compressionLevel: 6 }).toBuffer();
    }
    const name = `IMG_${String(i + 1).padStart(4, '0')}.${kind === 'jpeg' ? 'jpg' : kind}`;
    const file = path.join(dir, name);
    await writeFile(file, bytes);
    return { file, name, kind, bytes: bytes.length };
  });
}

/** The pixels the outputs need and nothing else: decoded at the preview's size where the format allows. */
async function decodeOnly(photo: Photo): Promise<void> {
  if (photo.kind === 'heic') {
    const pixels = await decodeHeic(await readFile(photo.file), { maxPixels: 1e8, timeoutSeconds: 120 });
    if ('ok' in pixels) throw new Error(`${photo.name}: ${pixels.message}`);
    return;
  }
  await sharp(photo.file, { sequentialRead: true }).resize({ width: 1600 }).raw().toBuffer();
}

async function decodeCostPerKind(photos: Photo[]): Promise<Record<string, number>> {
  const costs: Record<string, number> = {};
  for (const kind of ['jpeg', 'heic', 'png'] as const) {
    const samples = photos.filter((p) => p.kind === kind).slice(0, 3);
    const times: number[] = [];
    for (const photo of samples) {
      const started = performance.now();
      await decodeOnly(photo);
      times.push(performance.now() - started);
    }
    costs[kind] = median(times);
  }
  return costs;
}

/**
 * Where the CPU goes for one photo of each kind, one step at a time on one thread (median of 5):
 * the decode to the size the preview needs, the two encodes (and the preview's alternatives), the
 * shrink and hash for the thumbnail.
 */
async function whereTheCpuGoes(photos: Photo[]): Promise<Record<string, Record<string, number>>> {
  const timed = async (work: () => Promise<unknown>) => {
    await work();
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const started = performance.now();
      await work();
      times.push(performance.now() - started);
    }
    return r1(median(times));
  };
  const result: Record<string, Record<string, number>> = {};
  for (const kind of ['jpeg', 'heic', 'png'] as const) {
    const photo = photos.find((p) => p.kind === kind)!;
    let decoded: RawPixels;
    let decode: number;
    if (kind === 'heic') {
      const bytes = await readFile(photo.file);
      decode = await timed(() => decodeHeic(bytes, { maxPixels: 1e8, timeoutSeconds: 120 }));
      const full = (await decodeHeic(bytes, { maxPixels: 1e8, timeoutSeconds: 120 })) as RawPixels;
      const resize = await timed(() => fromRawPixels(full).resize({ width: 1600 }).raw().toBuffer());
      result.heic_resize_12mp = { ms: resize };
      const { data, info } = await fromRawPixels(full).resize({ width: 1600 }).raw().toBuffer({ resolveWithObject: true });
      decoded = { data, width: info.width, height: info.height, channels: info.channels };
    } else {
      decode = await timed(() => sharp(photo.file).resize({ width: 1600 }).raw().toBuffer());
      const { data, info } = await sharp(photo.file).resize({ width: 1600 }).raw().toBuffer({ resolveWithObject: true });
      decoded = { data, width: info.width, height: info.height, channels: info.channels };
    }
    const small = await fromRawPixels(decoded).resize(THUMBNAIL_SIDE, THUMBNAIL_SIDE, { fit: 'outside' }).raw().toBuffer({ resolveWithObject: true });
    const smallPixels: RawPixels = { data: small.data, width: small.info.width, height: small.info.height, channels: small.info.channels };
    result[kind] = {
      decode,
      preview_webp_e0: await timed(() => fromRawPixels(decoded).webp(PREVIEW_WEBP).toBuffer()),
      preview_webp_e2: await timed(() => fromRawPixels(decoded).webp({ ...PREVIEW_WEBP, effort: 2 }).toBuffer()),
      preview_webp_e4: await timed(() => fromRawPixels(decoded).webp({ ...PREVIEW_WEBP, effort: 4 }).toBuffer()),
      preview_jpeg_q75: await timed(() => fromRawPixels(decoded).jpeg({ quality: 75 }).toBuffer()),
      shrink: await timed(() => fromRawPixels(decoded).resize(THUMBNAIL_SIDE, THUMBNAIL_SIDE, { fit: 'outside' }).raw().toBuffer()),
      thumbnail: await timed(() => fromRawPixels(smallPixels).resize(THUMBNAIL_SIDE, THUMBNAIL_SIDE, { fit: 'cover' }).webp(THUMBNAIL_WEBP).toBuffer()),
      dhash: await timed(() => computeDHash(smallPixels)),
    };
    console.log(`CPU, one ${kind}: ${Object.entries(result[kind]!).map(([step, ms]) => `${step} ${ms} ms`).join(', ')}`);
  }
  console.log(`CPU, HEIC pixels (12 MP RGBA) shrunk to the preview's size: ${result.heic_resize_12mp!.ms} ms`);
  return result;
}

/**
 * The ids of the assets whose processing finished, as the server announces them (the
 * assetsProcessed subscription: no polling that would take the server's CPU from the work
 * measured), plus those that had finished before the subscription was in place.
 */
async function watchProcessed(client: Client): Promise<{ ready: Set<string>; waitFor(count: number, timeoutMs: number): Promise<number>; close(): Promise<void> }> {
  const ws = createClient({ url: `${client.baseUrl.replace('http', 'ws')}/graphql`, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${client.token}` }, retryAttempts: 0 });
  const ready = new Set<string>();
  const failed = new Set<string>();
  let notify = () => {};
  const record = (asset: { id: string; thumbnailStatus: string }) => {
    if (asset.thumbnailStatus === 'ready') ready.add(asset.id);
    else if (asset.thumbnailStatus === 'failed') failed.add(asset.id);
    notify();
  };
  const subscribed = new Promise<void>((resolve) => ws.on('connected', () => setTimeout(resolve, 100)));
  const stream = (async () => {
    for await (const message of ws.iterate<{ assetsProcessed: { id: string; thumbnailStatus: string }[] }>({ query: 'subscription { assetsProcessed { id thumbnailStatus } }' })) {
      for (const asset of message.data?.assetsProcessed ?? []) record(asset);
    }
  })();
  stream.catch(() => {});
  await subscribed;
  const { assets } = await client.graphql<{ assets: { nodes: { id: string; thumbnailStatus: string }[] } }>('query { assets(first: 200) { nodes { id thumbnailStatus } } }');
  for (const asset of assets.nodes) record(asset);
  return {
    ready,
    async waitFor(count, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (ready.size + failed.size < count) {
        if (Date.now() > deadline) throw new Error(`only ${ready.size} of ${count} processed after ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          notify = resolve;
          setTimeout(resolve, 1000);
        });
      }
      if (failed.size > 0) throw new Error(`${failed.size} photos failed to process`);
      return performance.now();
    },
    close: async () => void (await ws.dispose()),
  };
}
