/**
 * The client side of `bench/upload.ts`, run in its own process (`node --import tsx`), so
 * that the client's CPU work (reading and hashing the file, HTTP framing) is not billed to
 * the server's event loop and vice versa — as with a real phone or laptop.
 *
 * Usage: node --import tsx bench/support/upload-client.ts '<job JSON>'
 *
 * The client is warmed up first, untimed: by one small request on loopback (a GraphQL
 * `{ __typename }` through our ApiClient, or the tus OPTIONS request through node:http), or, with
 * `warmUpClaim`, by an instant upload of a small stored file on the connection the timed call then
 * uses — a sync client that has been running for a while. With `waitForGo` the process then prints
 * `ready` and waits for a line on stdin, so several clients can start at the same moment. The timed
 * span runs from opening the file (hashing included, for our SDK) to the server's success answer;
 * the result is one JSON line.
 */
import { createReadStream } from 'node:fs';
import http from 'node:http';
import { createInterface } from 'node:readline';
import { Upload } from 'tus-js-client';
import { ApiClient } from '../../src/client/api-client.js';
import { hashFile } from '../../src/client/file-hashing.js';
import { uploadFile } from '../../src/client/upload-file.js';

export interface ClientJob {
  side: 'ours' | 'tus';
  /** Our server's base URL, or the tus endpoint (…/files). */
  url: string;
  token?: string;
  file: string;
  name?: string;
  /** Ours: a hash already known (the sync list); the SDK then does not hash. */
  sha256?: string;
  /** Ours: chunks in flight (SDK default when unset). */
  parallel?: number;
  /** Ours: first chunk size (SDK default when unset). */
  initialChunkBytes?: number;
  /** tus: fixed chunk size. */
  chunkBytes?: number;
  /** Print `ready`, then wait for a line on stdin before starting the clock. */
  waitForGo?: boolean;
  /** Ours: after the timed upload, time hashing the file alone (for the analysis). */
  measureHash?: boolean;
  /** Ours: warm up by claiming this small stored file (its hash known) instead of one small request (a sync client at work). */
  warmUpClaim?: { file: string; sha256: string };
}

export interface ClientResult {
  side: 'ours' | 'tus';
  ms: number;
  outcome: string;
  sentBytes: number;
  chunkSizes?: number[];
  /** Time to hash the whole file with the SDK's hashFile, measured after the timed span. */
  hashMs?: number;
  /** Peak RSS of this client process (KiB → MiB). */
  clientMaxRssMib: number;
}

async function warmUp(job: ClientJob, api: ApiClient | undefined): Promise<void> {
  if (api && job.warmUpClaim) {
    const claimed = await uploadFile(api, job.warmUpClaim.file, { name: 'warm-up.bin', sha256: job.warmUpClaim.sha256 });
    if (claimed.outcome !== 'instant') throw new Error(`warm-up: expected an instant upload, got ${claimed.outcome}`);
    return;
  }
  if (api) {
    // One small GraphQL request through the SDK's own client.
    await api.graphql('{ __typename }');
    return;
  }
  // tus-js-client speaks node:http; an OPTIONS request is the protocol's own discovery call.
  await new Promise<void>((resolve, reject) => {
    const req = http.request(job.url, { method: 'OPTIONS' }, (res) => {
      res.resume();
      res.on('end', () => resolve());
    });
    req.on('error', reject);
    req.end();
  });
}

async function waitForGo(): Promise<void> {
  process.stdout.write('ready\n');
  const lines = createInterface({ input: process.stdin });
  await new Promise<void>((resolve) => lines.once('line', () => resolve()));
  lines.close();
}

async function runOurs(job: ClientJob, api: ApiClient): Promise<Omit<ClientResult, 'clientMaxRssMib' | 'ms'>> {
  const result = await uploadFile(api, job.file, {
    name: job.name,
    sha256: job.sha256,
    ...(job.parallel === undefined ? {} : { parallel: job.parallel }),
    ...(job.initialChunkBytes === undefined ? {} : { initialChunkBytes: job.initialChunkBytes }),
  });
  return { side: 'ours', outcome: result.outcome, sentBytes: result.sentBytes, chunkSizes: result.chunkSizes };
}

async function runTus(job: ClientJob): Promise<Omit<ClientResult, 'clientMaxRssMib' | 'ms'>> {
  // An fs.ReadStream with a path: tus-js-client reads each chunk as its own file range.
  const stream = createReadStream(job.file);
  let sentBytes = 0;
  await new Promise<void>((resolve, reject) => {
    const upload = new Upload(stream, {
      endpoint: job.url,
      chunkSize: job.chunkBytes ?? 8 * 2 ** 20,
      retryDelays: [],
      metadata: { filename: job.name ?? 'file' },
      onChunkComplete: (chunkSize) => {
        sentBytes += chunkSize;
      },
      onSuccess: () => resolve(),
      onError: (error) => reject(error),
    });
    upload.start();
  });
  stream.destroy();
  return { side: 'tus', outcome: 'uploaded', sentBytes };
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? '') as ClientJob;
  // One client for the warm-up and the timed call: a sync client keeps its connection.
  const api = job.side === 'ours' ? new ApiClient(job.url, job.token) : undefined;
  await warmUp(job, api);
  if (job.waitForGo) await waitForGo();
  const start = performance.now();
  const result = api ? await runOurs(job, api) : await runTus(job);
  const ms = performance.now() - start;
  let hashMs: number | undefined;
  if (job.measureHash) {
    const hashStart = performance.now();
    await hashFile(job.file);
    hashMs = performance.now() - hashStart;
  }
  const out: ClientResult = { ...result, ms, hashMs, clientMaxRssMib: process.resourceUsage().maxRSS / 1024 };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
    process.exit(1);
  },
);
