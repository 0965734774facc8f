/**
 * The client processes of `bench/subscriptions.ts` (`node --import tsx bench/support/live-clients.ts '<job JSON>'`):
 *
 * - `subscribe`: opens `count` graphql-ws connections (the real client), each subscribing to one
 *   folder's sync status as a dashboard would; prints `ready` once every one has its first message,
 *   then records, for every file change a message brings (a file whose `updatedAt` is new to that
 *   subscriber), the delivery latency: the time it arrived minus the time the server recorded the
 *   change (`updatedAt`, same machine clock). A subscriber is finished when it sees the folder's
 *   final state (`filesDone` = `expectDone`, nothing in flight). One JSON line at the end.
 * - `upload`: one check of all the files in the folder (the plan), then the SDK's `uploadFile` for
 *   each, `parallel` at a time. One JSON line at the end.
 */
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { ApiClient } from '../../src/client/api-client.js';
import { hashFile } from '../../src/client/file-hashing.js';
import { uploadFile } from '../../src/client/upload-file.js';

export interface SubscribeJob {
  mode: 'subscribe';
  url: string;
  token: string;
  folderId: string;
  count: number;
  expectDone: number;
  timeoutMs: number;
}

export interface UploadJob {
  mode: 'upload';
  url: string;
  token: string;
  folder: string;
  files: string[];
  parallel: number;
}

export interface SubscribeResult {
  subscribers: number;
  finished: number;
  messages: number;
  /** Delivery latencies of every change seen by every subscriber: how many took each whole number of ms. */
  latencies: Record<number, number>;
  errors: string[];
  maxRssMib: number;
}

const QUERY = `subscription($id: ID!) { folderSyncStatus(folderId: $id) {
  run counts { filesPlanned filesDone filesFailed filesInProgress filesPending bytesPlanned bytesDone active }
  changes { id state bytesDone updatedAt } } }`;

interface Message {
  data?: {
    folderSyncStatus: {
      counts: { filesDone: number; filesInProgress: number; filesPending: number; active: boolean };
      changes: { id: string; state: string; bytesDone: number; updatedAt: string }[];
    };
  };
  errors?: { message: string }[];
}

async function subscribe(job: SubscribeJob): Promise<SubscribeResult> {
  const latencies: Record<number, number> = {};
  const errors: string[] = [];
  let messages = 0;
  let finished = 0;
  let ready = 0;
  let allReady: () => void = () => {};
  const readyPromise = new Promise<void>((resolve) => (allReady = resolve));
  const clients: Client[] = [];
  const done = Array.from({ length: job.count }, async () => {
    const client = createClient({ url: `${job.url.replace('http', 'ws')}/graphql`, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${job.token}` }, retryAttempts: 0, lazy: true });
    clients.push(client);
    const seen = new Map<string, string>();
    let first = true;
    try {
      for await (const raw of client.iterate({ query: QUERY, variables: { id: job.folderId } })) {
        const arrived = Date.now();
        const message = raw as Message;
        messages++;
        if (message.errors) throw new Error(message.errors[0]!.message);
        const status = message.data!.folderSyncStatus;
        for (const change of status.changes) {
          if (seen.get(change.id) === change.updatedAt) continue;
          seen.set(change.id, change.updatedAt);
          if (!first) {
            const ms = Math.max(0, Math.round(arrived - Date.parse(change.updatedAt)));
            latencies[ms] = (latencies[ms] ?? 0) + 1;
          }
        }
        if (first) {
          first = false;
          if (++ready === job.count) allReady();
        }
        if (status.counts.filesDone >= job.expectDone && !status.counts.active) {
          finished++;
          return;
        }
      }
    } catch (error) {
      errors.push(String(error));
      if (first && ++ready === job.count) allReady();
    }
  });
  await readyPromise;
  console.log('ready');
  const timeout = new Promise<void>((resolve) => setTimeout(resolve, job.timeoutMs).unref());
  await Promise.race([Promise.all(done), timeout]);
  await Promise.all(clients.map((c) => c.dispose()));
  return { subscribers: job.count, finished, messages, latencies, errors: errors.slice(0, 5), maxRssMib: process.resourceUsage().maxRSS / 1024 };
}

async function upload(job: UploadJob): Promise<{ ms: number; uploaded: number }> {
  const api = new ApiClient(job.url, job.token);
  const hashes = await Promise.all(job.files.map((file) => hashFile(file)));
  const { statSync } = await import('node:fs');
  const path = await import('node:path');
  const started = performance.now();
  await api.graphql('mutation($files: [CheckFileInput!]!) { checkUploads(files: $files) { status } }', {
    files: job.files.map((file, i) => ({ sha256: hashes[i], size: statSync(file).size, name: path.basename(file), folder: job.folder })),
  });
  let next = 0;
  let uploaded = 0;
  await Promise.all(
    Array.from({ length: job.parallel }, async () => {
      while (next < job.files.length) {
        const i = next++;
        const result = await uploadFile(api, job.files[i]!, { folder: job.folder, sha256: hashes[i] });
        if (result.outcome === 'uploaded') uploaded++;
      }
    }),
  );
  return { ms: performance.now() - started, uploaded };
}

const job = JSON.parse(process.argv[2] ?? '{}') as SubscribeJob | UploadJob;
const result = job.mode === 'subscribe' ? await subscribe(job) : await upload(job);
// Exits once the line is out (a pipe is written asynchronously).
process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0));
