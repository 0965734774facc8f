/**
 * Sharing end to end (S7–S10), with the server as its own process (src/main.ts, embedded
 * PostgreSQL, fs storage, as `npm start` runs it) and a real SMTP server in this process
 * (test/support/smtp.ts):
 *
 * 1. create: a folder of 1,000 photos (small photo-like JPEGs, uploaded with the SDK's
 *    `uploadFile`, thumbnails made on completion) shared with `createShare` to 50 recipients
 *    (half friends, half plain addresses): the mutation's time as the client sees it.
 * 2. mails: from the createShare answer (its transaction has committed) until the SMTP server has
 *    received the 50th share mail (rendered with MJML, six inline JPEG thumbnails each, through
 *    the durable mail jobs at the server's job concurrency): mails per second.
 * 3. share(token): the recipient's page, the share with its first 100 photos and their signed
 *    URLs, asked for 200 times in a row by one anonymous client (after 10 warm-up requests): p50, p99.
 * 4. zip: a second share, with originals, of 100 files of 2 MB of random bytes (200 MB): the
 *    recipient's "download all" ZIP streamed to a client in its own process (one GET over a socket
 *    read into a reused buffer, bytes counted), against a plain sequential read of the same stored
 *    blob files (8 MiB blocks) in a process of its own, in the same rounds: zip_vs_read. Both sides
 *    read from disk: before each side the blob files' pages are dropped from the page cache
 *    (POSIX_FADV_DONTNEED through `dd iflag=nocache`, only those files). Context in the same
 *    rounds: the same files read through fs.createReadStream (as the server's fs store reads them)
 *    and sent by a bare node:http server to the same client, and everything again with the files
 *    in the page cache (`*_warm`). Meanwhile the server's VmRSS is sampled from /proc every 20 ms:
 *    growth over its idle RSS just before each download; and its CPU time is read from /proc.
 *
 * MB = 10^6 bytes. Knobs: BENCH_SHARE_PHOTOS (1000), BENCH_SHARE_RECIPIENTS (50),
 * BENCH_SHARE_FRIENDS (25 of them friends), BENCH_SHARE_QUERIES (200), BENCH_ZIP_FILES (100),
 * BENCH_ZIP_FILE_MB (2), BENCH_ZIP_ROUNDS (3), BENCH_UPLOAD_PARALLEL (8 uploads in flight while
 * setting up), BENCH_JOB_CONCURRENCY (the server's PIXSHARE_JOB_CONCURRENCY; its default, 2, when unset).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ApiClient } from '../src/client/api-client.js';
import { befriend, createShare, tokenOf, type Client } from '../test/support/sharing.js';
import { startSmtp, type RunningSmtp } from '../test/support/smtp.js';
import { folderId, makePhotos, uploadAll } from './support/photos.js';
import { Cleanup, execFileAsync, partRunner, startBench, fmtMs, inParallel, mbps, median, percentile, r1, r2, r3, readCpuMs, readStatus, ROOT, runScript, signUp, sleep, startServerProcess } from './support/kit.js';


/** What a recipient's page asks for: the share and its first photos with their signed URLs. */
const SHARE_QUERY = 'query($t: String!) { share(token: $t) { title photoCount photos(first: 100) { nodes { id name thumbnailUrl previewUrl imageUrl originalUrl } } } }';

interface Settings {
  photos: number;
  recipients: number;
  friends: number;
  queries: number;
  zipFiles: number;
  zipFileBytes: number;
  zipRounds: number;
  uploadParallel: number;
  jobConcurrency?: number;
}

function settings(): Settings {
  const int = (name: string, fallback: number, min = 1) => {
    const raw = process.env[name];
    const value = raw === undefined || raw === '' ? fallback : Number(raw);
    if (!Number.isInteger(value) || value < min) throw new Error(`${name} must be a whole number ≥ ${min}`);
    return value;
  };
  const recipients = int('BENCH_SHARE_RECIPIENTS', 50);
  const s: Settings = {
    photos: int('BENCH_SHARE_PHOTOS', 1000),
    recipients,
    friends: int('BENCH_SHARE_FRIENDS', Math.floor(recipients / 2), 0),
    queries: int('BENCH_SHARE_QUERIES', 200),
    zipFiles: int('BENCH_ZIP_FILES', 100),
    zipFileBytes: int('BENCH_ZIP_FILE_MB', 2) * 1e6,
    zipRounds: int('BENCH_ZIP_ROUNDS', 3),
    uploadParallel: int('BENCH_UPLOAD_PARALLEL', 8),
    jobConcurrency: process.env.BENCH_JOB_CONCURRENCY ? int('BENCH_JOB_CONCURRENCY', 2) : undefined,
  };
  if (s.friends > s.recipients) throw new Error('BENCH_SHARE_FRIENDS must not exceed BENCH_SHARE_RECIPIENTS');
  return s;
}

// -- child processes: the ZIP client and the read baseline ---------------------------

/**
 * The recipient's download, plain JavaScript in a fresh `node` (no tsx): one HTTP/1.1 GET over a
 * socket that reads into one reused 1 MiB buffer (`onread`), the body counted and dropped, the time
 * from connecting to the last byte. node:http hands each 64 KiB read over in a new buffer and on a
 * 2-core machine tops out below what the server sends (0.4–1 GB/s on loopback, against 1.5–2.7 GB/s
 * this way), so it would measure itself; a browser or curl reads like this. Checks the status, that
 * the body is the Content-Length, and that the ZIP ends with its end-of-central-directory record.
 */
const ZIP_CLIENT = `
import net from 'node:net';
const { url } = JSON.parse(process.argv[1]);
const target = new URL(url);
const fail = (message) => { console.error(message); process.exit(1); };
const start = performance.now();
let head = Buffer.alloc(0);
let status = 0;
let contentLength = -1;
let bytes = 0;
let tail = Buffer.alloc(0);
const body = (chunk) => {
  bytes += chunk.length;
  tail = chunk.length >= 64 ? Buffer.from(chunk.subarray(chunk.length - 64)) : Buffer.concat([tail, chunk]).subarray(-64);
};
const socket = net.connect({
  host: target.hostname,
  port: Number(target.port),
  onread: {
    buffer: Buffer.allocUnsafe(1024 * 1024),
    callback: (n, buffer) => {
      const chunk = buffer.subarray(0, n);
      if (status !== 0) return body(chunk);
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\\r\\n\\r\\n');
      if (end < 0) return;
      const lines = head.subarray(0, end).toString('latin1').split('\\r\\n');
      status = Number(lines[0].split(' ')[1]);
      for (const line of lines.slice(1)) if (/^content-length:/i.test(line)) contentLength = Number(line.slice(line.indexOf(':') + 1));
      body(head.subarray(end + 4));
    },
  },
});
socket.on('connect', () => socket.write('GET ' + target.pathname + target.search + ' HTTP/1.1\\r\\nHost: ' + target.host + '\\r\\nConnection: close\\r\\n\\r\\n'));
socket.on('error', (error) => fail(String(error)));
socket.on('end', () => {
  const ms = performance.now() - start;
  const eocd = tail.length >= 22 && tail.readUInt32LE(tail.length - 22) === 0x06054b50;
  process.stdout.write(JSON.stringify({ status, bytes, ms, contentLength, eocd, maxRssMib: process.resourceUsage().maxRSS / 1024 }) + '\\n');
});
`;

/** The baseline: the same files read one after the other, in 8 MiB blocks into one reused buffer. */
const READ_CLIENT = `
import { openSync, readSync, closeSync } from 'node:fs';
const { files } = JSON.parse(process.argv[1]);
const buffer = Buffer.allocUnsafe(8 * 1024 * 1024);
const start = performance.now();
let bytes = 0;
for (const file of files) {
  const fd = openSync(file, 'r');
  for (let n; (n = readSync(fd, buffer, 0, buffer.length, null)) > 0; ) bytes += n;
  closeSync(fd);
}
const ms = performance.now() - start;
process.stdout.write(JSON.stringify({ bytes, ms }) + '\\n');
`;

/**
 * Context: the same files read as the server's fs store reads them, through fs.createReadStream
 * with 256 KiB pieces (each read a fresh buffer, on libuv's thread pool).
 */
const READ_STREAM_CLIENT = `
import fs from 'node:fs';
const { files } = JSON.parse(process.argv[1]);
const start = performance.now();
let bytes = 0;
for (const file of files) for await (const chunk of fs.createReadStream(file, { highWaterMark: 256 * 1024 })) bytes += chunk.length;
const ms = performance.now() - start;
process.stdout.write(JSON.stringify({ bytes, ms }) + '\\n');
`;

/**
 * Context for the ZIP: the same blob files, one after the other, as one plain HTTP response from a
 * bare node:http server in its own process, read as the server's fs store reads them (256 KiB
 * read streams); no ZIP, no database, no signed URL. What the loopback transfer alone allows.
 */
const BARE_SERVER = `
import http from 'node:http';
import fs from 'node:fs';
import { once } from 'node:events';
const { files } = JSON.parse(process.argv[1]);
const size = files.reduce((n, f) => n + fs.statSync(f).size, 0);
const server = http.createServer(async (req, res) => {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
  for (const file of files) {
    for await (const chunk of fs.createReadStream(file, { highWaterMark: 256 * 1024 })) if (!res.write(chunk)) await once(res, 'drain');
  }
  res.end();
});
server.listen(0, '127.0.0.1', () => process.stdout.write(JSON.stringify({ port: server.address().port }) + '\\n'));
`;

interface ClientAnswer {
  status: number;
  bytes: number;
  ms: number;
  contentLength: number;
  eocd: boolean;
  maxRssMib: number;
}

async function startBareServer(cleanup: Cleanup, files: string[]): Promise<{ url: string; stop(): Promise<void> }> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', BARE_SERVER, JSON.stringify({ files })], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  cleanup.children.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = cleanup.add('bare server', async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    cleanup.children.delete(child);
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (data: Buffer) => {
      out += data.toString();
      if (out.includes('\n')) resolve((JSON.parse(out.slice(0, out.indexOf('\n'))) as { port: number }).port);
    });
    child.once('exit', (code) => reject(new Error(`bare server exited with ${code}`)));
  });
  return { url: `http://127.0.0.1:${port}/`, stop };
}

/** Drops the files' pages from the page cache (POSIX_FADV_DONTNEED, these files only; their bytes are on disk). */
async function evictFromCache(files: string[]): Promise<void> {
  await execFileAsync('sh', ['-c', 'for f; do dd if="$f" iflag=nocache count=0 status=none; done', 'sh', ...files]);
}

// -- set-up --------------------------------------------------------------------------

/** Resolves once no mail has arrived for `quietMs` (jobs of the set-up, e.g. friend requests, have run). */
async function mailsSettled(smtp: RunningSmtp, quietMs: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let seen = smtp.received.length;
  let since = Date.now();
  while (Date.now() - since < quietMs) {
    if (Date.now() > deadline) throw new Error('mails kept arriving');
    await sleep(50);
    if (smtp.received.length !== seen) {
      seen = smtp.received.length;
      since = Date.now();
    }
  }
}

// -- the measurements ----------------------------------------------------------------

interface ShareFigures {
  /** The server process's CPU time from createShare to the last mail (createShare included; PostgreSQL not). */
  mailsCpuMs: number;
  /** The server process's CPU time for all the timed share(token) requests. */
  queryCpuMs: number;
  createMs: number;
  mailsMs: number;
  mails: number;
  inlineImages: number[];
  firstMailMs: number;
  queryMs: number[];
  photoCount: number;
  nodes: number;
}

async function measureShare(s: Settings, smtp: RunningSmtp, serverPid: number, owner: Client, friends: Client[], folder: string): Promise<ShareFigures> {
  const emails = Array.from({ length: s.recipients - friends.length }, (_, i) => `guest${i + 1}-${randomBytes(3).toString('hex')}@bench.example.org`);
  const recipients = [...friends.map((f) => f.email), ...emails];
  // Only this share's mails from here on (set-up mails have all arrived: see mailsSettled).
  smtp.received.length = 0;
  const arrived: number[] = [];
  const mails = Promise.all(
    recipients.map((to) =>
      smtp.next(to, 300_000).then((mail) => {
        arrived.push(performance.now());
        return mail;
      }),
    ),
  );
  mails.catch(() => {}); // awaited below; a failure before then must not be unhandled

  const folderIds = [await folderId(owner, folder)];
  const cpuStart = await readCpuMs(serverPid);
  const start = performance.now();
  const created = await createShare(owner, {
    folderIds,
    friendIds: friends.map((f) => f.userId),
    emails,
    message: 'The whole trip, all of it',
  });
  const committed = performance.now();
  if (created.share.recipients.length !== s.recipients) throw new Error(`createShare: ${created.share.recipients.length} recipients, expected ${s.recipients}`);
  const received = await mails;
  const mailsMs = Math.max(...arrived) - committed;
  const mailsCpuMs = (await readCpuMs(serverPid)) - cpuStart;
  const wrong = received.filter((m) => !m.subject?.includes(`"${folder}"`));
  if (wrong.length > 0) throw new Error(`mails: ${wrong.length} are not this share's (e.g. "${wrong[0]!.subject}")`);
  const inlineImages = received.map((m) => m.attachments.filter((a) => a.contentDisposition === 'inline').length);

  // share(token) as the holder of one address's link: the first 100 photos with their URLs.
  const link = created.links.find((l) => l.recipient.email === (emails[0] ?? recipients[0]))!;
  const token = tokenOf(link.url);
  const anonymous = new ApiClient(owner.baseUrl);
  type View = { share: { title: string; photoCount: number; photos: { nodes: { id: string; originalUrl: string | null; thumbnailUrl: string | null }[] } } };
  let view: View | undefined;
  for (let i = 0; i < 10; i++) view = await anonymous.graphql<View>(SHARE_QUERY, { t: token });
  if (view!.share.photos.nodes.length !== Math.min(100, s.photos) || view!.share.photoCount !== s.photos || view!.share.photos.nodes.some((n) => !n.thumbnailUrl)) {
    throw new Error(`share(token): ${view!.share.photos.nodes.length} photos of ${view!.share.photoCount}, not all with thumbnails`);
  }
  const queryMs: number[] = [];
  const queryCpuStart = await readCpuMs(serverPid);
  for (let i = 0; i < s.queries; i++) {
    const t = performance.now();
    await anonymous.graphql<View>(SHARE_QUERY, { t: token });
    queryMs.push(performance.now() - t);
  }
  const queryCpuMs = (await readCpuMs(serverPid)) - queryCpuStart;
  return {
    mailsCpuMs,
    queryCpuMs,
    createMs: committed - start,
    mailsMs,
    mails: received.length,
    inlineImages,
    firstMailMs: Math.min(...arrived) - committed,
    queryMs,
    photoCount: view!.share.photoCount,
    nodes: view!.share.photos.nodes.length,
  };
}

interface ZipRound {
  cache: 'cold' | 'warm';
  zipMs: number;
  zipBytes: number;
  readMs: number;
  readBytes: number;
  /** The same files over HTTP from a bare node:http server: the transfer alone. */
  sendMs: number;
  sendBytes: number;
  /** The same files through fs.createReadStream (256 KiB), as the server's store reads them. */
  streamMs: number;
  streamBytes: number;
  idleMib: number;
  peakMib: number;
  samples: number;
  clientRssMib: number;
  serverCpuMs: number;
}

interface ZipFigures {
  rounds: ZipRound[];
  members: number;
  originalBytes: number;
}

async function measureZip(cleanup: Cleanup, s: Settings, server: { child: ChildProcess }, zipUrl: string, blobFiles: string[], originalBytes: number): Promise<ZipFigures> {
  const pid = server.child.pid!;
  const rounds: ZipRound[] = [];
  const download = async () => {
    await sleep(300);
    const idleSamples: number[] = [];
    for (let i = 0; i < 10; i++) {
      const status = await readStatus(pid);
      if (status) idleSamples.push(status.rssMib);
      await sleep(20);
    }
    const idleMib = median(idleSamples);
    const hwmBefore = (await readStatus(pid))?.hwmMib ?? NaN;
    let peakMib = idleMib;
    let samples = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const status = await readStatus(pid);
        if (status) {
          peakMib = Math.max(peakMib, status.rssMib);
          samples++;
        }
        await sleep(20);
      }
    })();
    let result: ClientAnswer;
    const cpuStart = await readCpuMs(pid);
    let serverCpuMs: number;
    try {
      result = await runScript(cleanup, 'zip client', ZIP_CLIENT, { url: zipUrl });
      serverCpuMs = (await readCpuMs(pid)) - cpuStart;
      await sleep(100);
    } finally {
      sampling = false;
      await sampler;
    }
    const hwmAfter = (await readStatus(pid))?.hwmMib ?? NaN;
    // VmHWM catches a spike between two samples, but only if it rose above the earlier peak.
    if (hwmAfter > hwmBefore) peakMib = Math.max(peakMib, hwmAfter);
    if (result.status !== 200 || result.bytes !== result.contentLength || !result.eocd || result.bytes < originalBytes) {
      throw new Error(`zip: status ${result.status}, ${result.bytes} bytes of ${result.contentLength} announced, end record ${result.eocd ? 'found' : 'missing'}`);
    }
    return { ...result, idleMib, peakMib, samples, serverCpuMs };
  };
  const read = () => runScript<{ bytes: number; ms: number }>(cleanup, 'read baseline', READ_CLIENT, { files: blobFiles });
  // Context: the same files over HTTP from a bare node:http server (no ZIP, no database), to the same client.
  const bare = await startBareServer(cleanup, blobFiles);
  const send = async () => {
    const result = await runScript<ClientAnswer>(cleanup, 'bare client', ZIP_CLIENT, { url: bare.url });
    if (result.status !== 200 || result.bytes !== originalBytes) throw new Error(`bare send: status ${result.status}, ${result.bytes} bytes`);
    return result;
  };

  const readStream = () => runScript<{ bytes: number; ms: number }>(cleanup, 'read-stream baseline', READ_STREAM_CLIENT, { files: blobFiles });
  const sides = ['zip', 'read', 'send', 'stream'] as const;
  for (let round = 0; round < s.zipRounds; round++) {
    for (const cache of ['cold', 'warm'] as const) {
      cleanup.checkpoint();
      await execFileAsync('sync');
      // Each side goes first in turn.
      const order = sides.map((_, i) => sides[(i + round) % sides.length]!);
      let zip: Awaited<ReturnType<typeof download>> | undefined;
      let baseline: { bytes: number; ms: number } | undefined;
      let sent: ClientAnswer | undefined;
      let streamed: { bytes: number; ms: number } | undefined;
      for (const side of order) {
        if (cache === 'cold') await evictFromCache(blobFiles);
        else await read(); // the pages in memory, whichever side ran last
        if (side === 'zip') zip = await download();
        else if (side === 'read') baseline = await read();
        else if (side === 'send') sent = await send();
        else streamed = await readStream();
      }
      const r: ZipRound = {
        cache,
        zipMs: zip!.ms,
        zipBytes: zip!.bytes,
        readMs: baseline!.ms,
        readBytes: baseline!.bytes,
        sendMs: sent!.ms,
        sendBytes: sent!.bytes,
        streamMs: streamed!.ms,
        streamBytes: streamed!.bytes,
        idleMib: zip!.idleMib,
        peakMib: zip!.peakMib,
        samples: zip!.samples,
        clientRssMib: zip!.maxRssMib,
        serverCpuMs: zip!.serverCpuMs,
      };
      rounds.push(r);
      console.log(
        `  round ${round + 1} ${cache.padEnd(4)} (${order.join(', ')}): zip ${fmtMs(r.zipMs)} = ${mbps(r.zipBytes, r.zipMs).toFixed(0)} MB/s, ` +
          `read ${fmtMs(r.readMs)} = ${mbps(r.readBytes, r.readMs).toFixed(0)} MB/s → ${(mbps(r.zipBytes, r.zipMs) / mbps(r.readBytes, r.readMs)).toFixed(2)}; ` +
          `read stream ${mbps(r.streamBytes, r.streamMs).toFixed(0)} MB/s, bare send ${mbps(r.sendBytes, r.sendMs).toFixed(0)} MB/s; ` +
          `server CPU ${fmtMs(r.serverCpuMs)}, RSS idle ${r.idleMib.toFixed(1)} MiB, peak ${r.peakMib.toFixed(1)} MiB (+${(r.peakMib - r.idleMib).toFixed(1)}, ${r.samples} samples)`,
      );
    }
  }
  await bare.stop();
  return { rounds, members: blobFiles.length, originalBytes };
}

// -- the run ---------------------------------------------------------------------

export async function run(): Promise<void> {
  const s = settings();
  const cleanup = startBench();
  const errors: string[] = [];
  const attempt = partRunner(cleanup, errors);

  const benchStart = performance.now();
  const work = await mkdtemp(path.join(tmpdir(), 'pixshare-bench-share-'));
  await chmod(work, 0o755); // as root, the embedded PostgreSQL runs as `postgres` and must reach its directory
  cleanup.add('temp dir', () => rm(work, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 }));

  const folder = 'Trip 2026';
  const zipFolder = 'Originals';
  let share: ShareFigures | undefined;
  let zip: ZipFigures | undefined;
  let jobConcurrency = s.jobConcurrency ?? 2;
  try {
    console.log(`share bench: MB = 10^6 bytes; Node ${process.version}, NODE_ENV=${process.env.NODE_ENV}; server = src/main.ts in its own process`);
    const smtp = await startSmtp();
    cleanup.add('smtp server', () => smtp.close());
    const dataDir = path.join(work, 'server');
    await mkdir(dataDir, { recursive: true });
    await chmod(dataDir, 0o755);
    const server = await startServerProcess(cleanup, dataDir, {
      SMTP_URL: smtp.url,
      MAIL_FROM: 'pixshare <photos@bench.example.org>',
      PIXSHARE_STANDARD_QUOTA: '1TB',
      ...(s.jobConcurrency ? { PIXSHARE_JOB_CONCURRENCY: String(s.jobConcurrency) } : {}),
    });
    jobConcurrency = s.jobConcurrency ?? 2;

    // Set-up: the owner, friends, 1,000 photos in a folder, 200 MB of originals in another.
    let setupStart = performance.now();
    const owner = await signUp(server.url, 'owner');
    const friends = await inParallel(Array.from({ length: s.friends }, (_, i) => i), 4, (i) => signUp(server.url, `friend${i + 1}`));
    for (const friend of friends) await befriend(owner, friend);
    console.log(`set-up: owner and ${friends.length} friends (befriended) in ${fmtMs(performance.now() - setupStart)}`);

    setupStart = performance.now();
    const photoDir = path.join(work, 'photos');
    await mkdir(photoDir);
    const photoFiles = await makePhotos(photoDir, s.photos);
    const madeMs = performance.now() - setupStart;
    setupStart = performance.now();
    await uploadAll(owner, photoFiles, folder, s.uploadParallel);
    console.log(`set-up: ${s.photos} photo-like JPEGs of 320×240 made in ${fmtMs(madeMs)}, uploaded into "${folder}" (${s.uploadParallel} in flight, thumbnails made on completion) in ${fmtMs(performance.now() - setupStart)}`);

    setupStart = performance.now();
    const originalsDir = path.join(work, 'originals');
    await mkdir(originalsDir);
    const originals: { file: string; name: string }[] = [];
    for (let i = 0; i < s.zipFiles; i++) {
      const name = `RAW_${String(i + 1).padStart(4, '0')}.bin`;
      await writeFile(path.join(originalsDir, name), randomBytes(s.zipFileBytes));
      originals.push({ file: path.join(originalsDir, name), name });
    }
    const stored = await uploadAll(owner, originals, zipFolder, Math.min(s.uploadParallel, 4));
    const originalBytes = stored.reduce((n, a) => n + a.size, 0);
    // The files the server streams: fs storage keeps blob <sha256> under <data>/blobs/objects/blobs/.
    const blobFiles = stored.map((a) => path.join(dataDir, 'blobs', 'objects', 'blobs', a.sha256));
    console.log(`set-up: ${s.zipFiles} files of ${s.zipFileBytes / 1e6} MB of random bytes (${(originalBytes / 1e6).toFixed(0)} MB) uploaded into "${zipFolder}" in ${fmtMs(performance.now() - setupStart)}`);
    await rm(photoDir, { recursive: true, force: true });
    await rm(originalsDir, { recursive: true, force: true });

    // The ZIP's share first: one address, originals offered (it also warms up createShare and the mail job).
    const zipShare = await createShare(owner, { folderIds: [await folderId(owner, zipFolder)], emails: [`zip-${randomBytes(3).toString('hex')}@bench.example.org`], allowOriginals: true });
    const anonymous = new ApiClient(server.url);
    const { share: zipView } = await anonymous.graphql<{ share: { downloadAllUrl: string; photoCount: number } }>('query($t: String!) { share(token: $t) { downloadAllUrl photoCount } }', {
      t: tokenOf(zipShare.links[0]!.url),
    });
    if (zipView.photoCount !== s.zipFiles) throw new Error(`zip share: ${zipView.photoCount} files, expected ${s.zipFiles}`);
    await mailsSettled(smtp, 1500);

    console.log(
      `create + mails + share(token): "${folder}" (${s.photos} photos) to ${s.recipients} recipients (${friends.length} friends, ${s.recipients - friends.length} addresses); ` +
        `server job concurrency ${jobConcurrency}${s.jobConcurrency ? ' (BENCH_JOB_CONCURRENCY)' : ' (default)'}; then ${s.queries} share(token) requests, first 100 photos with 4 URLs each`,
    );
    share = await attempt('share', () => measureShare(s, smtp, server.child.pid!, owner, friends, folder));
    if (share) {
      console.log(
        `  createShare ${fmtMs(share.createMs)}; ${share.mails} mails received ${fmtMs(share.mailsMs)} after its answer (first after ${fmtMs(share.firstMailMs)}) = ${(share.mails / (share.mailsMs / 1000)).toFixed(1)} mails/s ` +
          `(inline thumbnails per mail: ${Math.min(...share.inlineImages)}–${Math.max(...share.inlineImages)}); server CPU ${fmtMs(share.mailsCpuMs)} = ${(share.mailsCpuMs / share.mails).toFixed(0)} ms a mail`,
      );
      console.log(`  share(token) × ${share.queryMs.length}: p50 ${fmtMs(percentile(share.queryMs, 50))}, p99 ${fmtMs(percentile(share.queryMs, 99))}, max ${fmtMs(Math.max(...share.queryMs))}; server CPU ${(share.queryCpuMs / share.queryMs.length).toFixed(1)} ms a request`);
    }

    console.log(
      `zip: "download all" of ${s.zipFiles} originals (${(originalBytes / 1e6).toFixed(0)} MB) by a client in its own process (one GET, a reused read buffer, bytes counted) vs reading the same blob files ` +
        `(8 MiB blocks, its own process); context: the same files through fs.createReadStream, and from a bare node:http server to the same client; ${s.zipRounds} round(s), each side first in turn; cold = the files' pages dropped from the page cache before each side, warm = in it; server VmRSS every 20 ms`,
    );
    await mailsSettled(smtp, 500);
    zip = await attempt('zip', () => measureZip(cleanup, s, server, zipView.downloadAllUrl, blobFiles, originalBytes));
    await server.stop();
  } finally {
    await cleanup.run();
  }

  // -- figures ---------------------------------------------------------------
  const result: Record<string, unknown> = { bench: 'share' };
  const lines: string[] = [];
  const verdict = (met: boolean) => (met ? 'MET' : 'MISSED');
  if (share) {
    Object.assign(result, {
      create_share_ms: r1(share.createMs),
      mails_per_s: r2(share.mails / (share.mailsMs / 1000)),
      mails_ms: r1(share.mailsMs),
      share_token_p50_ms: r2(percentile(share.queryMs, 50)),
      share_token_p99_ms: r2(percentile(share.queryMs, 99)),
      share_token_requests: share.queryMs.length,
      photos: share.photoCount,
      recipients: share.mails,
      job_concurrency: jobConcurrency,
      mails_server_cpu_ms: r1(share.mailsCpuMs),
      share_token_server_cpu_ms: r2(share.queryCpuMs / share.queryMs.length),
    });
    lines.push(`1. createShare of a ${share.photoCount}-photo folder to ${share.mails} recipients: ${fmtMs(share.createMs)}`);
    lines.push(`2. mails: ${share.mails} in ${fmtMs(share.mailsMs)} after the answer = ${(share.mails / (share.mailsMs / 1000)).toFixed(1)} mails/s (job concurrency ${jobConcurrency})`);
    lines.push(`3. share(token), first ${share.nodes} photos: p50 ${fmtMs(percentile(share.queryMs, 50))}, p99 ${fmtMs(percentile(share.queryMs, 99))} (${share.queryMs.length} requests)`);
  }
  if (zip && zip.rounds.length > 0) {
    const side = (cache: 'cold' | 'warm') => {
      const rounds = zip!.rounds.filter((r) => r.cache === cache);
      const zipMBps = median(rounds.map((r) => mbps(r.zipBytes, r.zipMs)));
      const readMBps = median(rounds.map((r) => mbps(r.readBytes, r.readMs)));
      const sendMBps = median(rounds.map((r) => mbps(r.sendBytes, r.sendMs)));
      const streamMBps = median(rounds.map((r) => mbps(r.streamBytes, r.streamMs)));
      return { zipMBps, readMBps, sendMBps, streamMBps, vsStream: median(rounds.map((r) => mbps(r.zipBytes, r.zipMs) / mbps(r.streamBytes, r.streamMs))), ratio: median(rounds.map((r) => mbps(r.zipBytes, r.zipMs) / mbps(r.readBytes, r.readMs))), vsSend: median(rounds.map((r) => mbps(r.zipBytes, r.zipMs) / mbps(r.sendBytes, r.sendMs))) };
    };
    const cold = side('cold');
    const warm = side('warm');
    const growth = Math.max(...zip.rounds.map((r) => r.peakMib - r.idleMib));
    Object.assign(result, {
      zip_mb_s: r1(cold.zipMBps),
      read_mb_s: r1(cold.readMBps),
      zip_vs_read: r3(cold.ratio),
      rss_growth_mib: r1(growth),
      zip_mb_s_warm: r1(warm.zipMBps),
      read_mb_s_warm: r1(warm.readMBps),
      zip_vs_read_warm: r3(warm.ratio),
      read_stream_mb_s: r1(cold.streamMBps),
      read_stream_mb_s_warm: r1(warm.streamMBps),
      zip_vs_read_stream: r3(cold.vsStream),
      zip_vs_read_stream_warm: r3(warm.vsStream),
      send_mb_s: r1(cold.sendMBps),
      send_mb_s_warm: r1(warm.sendMBps),
      zip_vs_send: r3(cold.vsSend),
      zip_vs_send_warm: r3(warm.vsSend),
      zip_vs_read_rounds: zip.rounds.filter((r) => r.cache === 'cold').map((r) => r2(mbps(r.zipBytes, r.zipMs) / mbps(r.readBytes, r.readMs))),
      zip_server_cpu_ms: r1(median(zip.rounds.filter((r) => r.cache === 'cold').map((r) => r.serverCpuMs))),
      zip_server_cpu_ms_warm: r1(median(zip.rounds.filter((r) => r.cache === 'warm').map((r) => r.serverCpuMs))),
      rss_idle_mib: r1(median(zip.rounds.map((r) => r.idleMib))),
      rss_peak_mib: r1(Math.max(...zip.rounds.map((r) => r.peakMib))),
      zip_bytes: zip.rounds[0]!.zipBytes,
      zip_members: zip.members,
      zip_rounds: zip.rounds.length / 2,
    });
    lines.push(
      `4. ZIP of ${(zip.originalBytes / 1e6).toFixed(0)} MB of originals from disk: ${cold.zipMBps.toFixed(0)} MB/s vs reading the files ${cold.readMBps.toFixed(0)} MB/s ` +
        `→ zip_vs_read ${cold.ratio.toFixed(2)} (goal ≥ 0.8: ${verdict(cold.ratio >= 0.8)}); from the page cache (context): ${warm.zipMBps.toFixed(0)} vs ${warm.readMBps.toFixed(0)} MB/s → ${warm.ratio.toFixed(2)}; ` +
        `context from disk / from the cache: the files through fs.createReadStream ${cold.streamMBps.toFixed(0)} / ${warm.streamMBps.toFixed(0)} MB/s (zip_vs_read_stream ${cold.vsStream.toFixed(2)} / ${warm.vsStream.toFixed(2)}), ` +
        `sent by a bare node:http server ${cold.sendMBps.toFixed(0)} / ${warm.sendMBps.toFixed(0)} MB/s (zip_vs_send ${cold.vsSend.toFixed(2)} / ${warm.vsSend.toFixed(2)})`,
    );
    lines.push(`5. server RSS growth during the downloads: ${growth.toFixed(1)} MiB at most (goal < 64: ${verdict(growth < 64)})`);
  }
  for (const key of ['create_share_ms', 'mails_per_s', 'share_token_p50_ms', 'share_token_p99_ms', 'zip_mb_s', 'read_mb_s', 'zip_vs_read', 'rss_growth_mib']) result[key] ??= null;
  result.targets_met = {
    zip_vs_read: typeof result.zip_vs_read === 'number' ? result.zip_vs_read >= 0.8 : null,
    rss_growth_mib: typeof result.rss_growth_mib === 'number' ? result.rss_growth_mib < 64 : null,
  };
  result.duration_s = r1((performance.now() - benchStart) / 1000);
  if (errors.length > 0) result.errors = errors;

  console.log('summary:');
  for (const line of lines) console.log(`  ${line}`);
  if (errors.length > 0) console.log(`  ${errors.length} part(s) failed: ${errors.join(' | ')}`);
  console.log(JSON.stringify(result));
}
