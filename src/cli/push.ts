import path from 'node:path';
import { ApiError, type ApiClient } from '../client/api-client.js';
import { ByteBudget } from '../client/byte-budget.js';
import { prepareFile, readsWhole, type PreparedFile } from '../client/prepare-file.js';
import { checkFiles, sendChecked, withRetries, type CheckAnswer, type CheckFileInput, type UploadFileResult } from '../client/upload-file.js';
import type { Reporter } from './reporter.js';
import type { SyncList } from './sync-list.js';
import { captureTime } from './capture-time.js';
import { findFiles, type FoundFile, type WalkOptions } from './walk.js';

export interface PushOptions extends WalkOptions {
  dryRun?: boolean;
  /** Only what was taken at or after this time (EXIF capture time, else the file's time): `pixshare sync`. */
  since?: Date;
  /**
   * Ask the server about every file, even those the sync list knows: before a file is moved or
   * deleted, the server must confirm now that it holds the bytes (the photo may have been deleted
   * there since the sync list recorded it).
   */
  recheck?: boolean;
  /** Each file the server confirmed it stores, byte for byte (sent, instant, already there, or — without recheck — in the sync list). */
  onConfirmed?(file: FoundFile, asset: { id: string; sha256: string }, outcome: FileOutcome): void | Promise<void>;
  /** Files in flight at once. */
  concurrency: number;
  /** Work out each image's perceptual hash and send it with the check (U1). */
  perceptualHash?: boolean;
  /** File bytes held in memory at once, at most: small files read whole, and chunks on their way. */
  memoryBytes?: number;
}

export type FileOutcome = UploadFileResult['outcome'] | 'unchanged' | 'failed' | 'would-send';

export interface PushSummary {
  files: number;
  uploaded: number;
  instant: number;
  exists: number;
  unchanged: number;
  failed: number;
  skipped: number;
  unreadable: number;
  /** Not sent for being taken before --since. */
  older: number;
  sentBytes: number;
}

/** Errors that end the whole run (nothing else will get through either), not just one file. */
export class StopRun extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EAI_AGAIN', 'EPIPE']);

/** The server refused the token (a live connection closed with 4401/4403): exit code 3. */
export function loginRefused(): StopRun {
  return new StopRun('UNAUTHENTICATED', 'the server does not take this login — log in again: pixshare login <server>', 3);
}

/** Exit code 3: the server cannot be reached, or does not take our token. */
export function stopFor(error: unknown): StopRun | null {
  if (error instanceof ApiError && (error.code === 'UNAUTHENTICATED' || error.code === 'FORBIDDEN')) {
    return new StopRun(error.code, `${error.message} — log in again: pixshare login <server>`, 3);
  }
  const code = (error as { code?: string; cause?: { code?: string } } | null)?.code ?? (error as { cause?: { code?: string } } | null)?.cause?.code;
  if (code && NETWORK_CODES.has(code)) return new StopRun('UNREACHABLE', `cannot reach the server (${code})`, 3);
  return null;
}

/** --max-memory's default. */
export const DEFAULT_MEMORY = 256 * 2 ** 20;
/** Memory for small files read whole ahead of sending, at most. */
const WHOLE_FILES_MEMORY = 64 * 2 ** 20;
/** Files asked about in one check request, at most. */
const CHECK_BATCH = 200;
/** Files hashed (and, when small, held in memory) ahead of those being sent, at most. */
const AHEAD = 400;
/** Files hashed at once: the hashing itself runs on the thread pool; two keep the disk busy meanwhile. */
const HASHERS = 2;

/**
 * `pixshare push`: every photo and video of the given files and trees that the server does not
 * have yet. The sync list answers for files this device sent before and that have not changed
 * (not hashed, not asked about). The others go through three stages at once: they are hashed
 * (small files read whole, once), checked in batches of up to 200 per request — each batch leaves
 * as soon as the previous answer came back, with whatever was hashed meanwhile — and what the
 * server lacks is sent, `concurrency` files at a time, a small file not held back by a large one.
 * A file that fails is reported and the rest go on.
 */
export async function push(api: ApiClient, syncList: SyncList, paths: string[], options: PushOptions, report: Reporter): Promise<PushSummary> {
  const found = await findFiles(paths, options);
  const summary: PushSummary = { files: found.files.length, uploaded: 0, instant: 0, exists: 0, unchanged: 0, failed: 0, skipped: found.skipped, unreadable: found.unreadable.length, older: 0, sentBytes: 0 };
  for (const unreadable of found.unreadable) report.file({ path: unreadable.path, outcome: 'failed', error: { code: 'UNREADABLE', message: unreadable.message } });
  const pending: FoundFile[] = [];
  const knownFiles = options.recheck ? [] : syncList.lookupMany(found.files);
  for (const [i, file] of found.files.entries()) {
    const known = knownFiles[i] ?? null;
    if (known) {
      summary.unchanged++;
      report.file({ path: file.path, outcome: 'unchanged', sha256: known.sha256, assetId: known.assetId, size: file.size });
      if (!options.dryRun) await options.onConfirmed?.(file, { id: known.assetId, sha256: known.sha256 }, 'unchanged');
    } else if (options.since && (await captureTime(file.path, file.mtimeMs)) < options.since) {
      summary.older++;
    } else pending.push(file);
  }
  report.start({ files: pending.length, bytes: pending.reduce((sum, f) => sum + f.size, 0), unchanged: summary.unchanged });
  if (options.dryRun) {
    for (const file of pending) report.file({ path: file.path, outcome: 'would-send', size: file.size, folder: file.folder || null });
    report.finish();
    return summary;
  }

  // Half the memory (64 MiB at most: enough to keep the senders fed) for small files read whole and
  // waiting to be sent, the rest for the chunks of large ones: a sender reading a chunk never waits
  // for memory held by files queued behind it.
  const total = options.memoryBytes ?? DEFAULT_MEMORY;
  const wholeFiles = new ByteBudget(Math.max(1, Math.min(WHOLE_FILES_MEMORY, Math.floor(total / 2))));
  const chunkMemory = new ByteBudget(Math.max(1, total - wholeFiles.total));
  let stop: StopRun | null = null;
  const hashed = new Queue<{ file: FoundFile; prepared: PreparedFile }>();
  const toSend = new Queue<{ file: FoundFile; prepared: PreparedFile; input: CheckFileInput; answer: CheckAnswer }>();
  const ahead = new Slots(AHEAD);
  /** The end of one file: counted, reported, its memory given back, its slot freed. */
  const settle = async (file: FoundFile, prepared: PreparedFile | null, outcome: FileOutcome | { error: unknown }, result?: { asset: { id: string; sha256: string }; sentBytes: number }) => {
    prepared?.release();
    ahead.free();
    if (typeof outcome === 'object') {
      stop ??= stopFor(outcome.error);
      if (stop) return;
      summary.failed++;
      const error = outcome.error;
      const code = error instanceof ApiError ? error.code : ((error as { code?: string }).code ?? 'FAILED');
      const message = error instanceof Error ? error.message : String(error);
      report.file({ path: file.path, outcome: 'failed', size: file.size, error: { code, message, ...(error instanceof ApiError ? error.details : {}) } });
      return;
    }
    const { asset, sentBytes } = result!;
    syncList.record(file, { sha256: asset.sha256, assetId: asset.id });
    summary[outcome as 'uploaded' | 'instant' | 'exists']++;
    summary.sentBytes += sentBytes;
    report.file({ path: file.path, outcome, sha256: asset.sha256, assetId: asset.id, size: file.size, sentBytes, ...(prepared?.perceptualHash ? { perceptualHash: prepared.perceptualHash } : {}) });
    try {
      await options.onConfirmed?.(file, asset, outcome);
    } catch (error) {
      stop ??= stopFor(error);
    }
  };

  // Stage 1: hash, a little ahead of the checks.
  let nextToHash = 0;
  const hasher = async () => {
    while (!stop && nextToHash < pending.length) {
      const file = pending[nextToHash++]!;
      await ahead.take();
      if (stop) return ahead.free();
      try {
        // A large file's hash is kept while it is on its way: a client killed in the middle resumes without hashing it again.
        const large = !readsWhole(file.size, wholeFiles);
        const known = large ? syncList.inFlightHash(file) : null;
        const prepared = await prepareFile(file, { memory: wholeFiles, knownSha256: known, perceptualHash: options.perceptualHash });
        if (large && !known) syncList.rememberInFlight(file, prepared.sha256);
        hashed.push({ file, prepared });
      } catch (error) {
        await settle(file, null, { error });
      }
    }
  };
  const hashing = Promise.all(Array.from({ length: HASHERS }, hasher)).finally(() => hashed.close());

  // Stage 2: check in batches, one request at a time, each with what was hashed meanwhile.
  const checking = (async () => {
    for (let first = await hashed.take(); first; first = await hashed.take()) {
      if (stop) {
        // The run stops: what is still queued is let go.
        first.prepared.release();
        ahead.free();
        continue;
      }
      const batch = [first, ...hashed.takeAll(CHECK_BATCH - 1)];
      const inputs = batch.map(({ file, prepared }): CheckFileInput => ({
        sha256: prepared.sha256,
        size: prepared.size,
        name: path.basename(file.path),
        folder: file.folder || null,
        takenAt: new Date(file.mtimeMs).toISOString(),
        ...(prepared.perceptualHash ? { perceptualHash: prepared.perceptualHash } : {}),
      }));
      let answers: CheckAnswer[];
      try {
        // A check is safe to ask again (a second one resumes the sessions the first opened).
        answers = await withRetries(2, undefined, () => checkFiles(api, inputs));
      } catch (error) {
        for (const { file, prepared } of batch) await settle(file, prepared, { error });
        continue;
      }
      for (const [i, { file, prepared }] of batch.entries()) {
        const answer = answers[i];
        if (!answer) await settle(file, prepared, { error: new ApiError('BAD_RESPONSE', 'the check left this file unanswered') });
        else if (answer.status === 'EXISTS') await settle(file, prepared, 'exists', { asset: { id: answer.assetId!, sha256: prepared.sha256 }, sentBytes: 0 });
        else if (answer.status === 'REFUSED') await settle(file, prepared, { error: new ApiError(answer.error!.code, answer.error!.message) });
        else toSend.push({ file, prepared, input: inputs[i]!, answer });
      }
    }
  })().finally(() => toSend.close());

  // Stage 3: send what the server lacks, several files at once.
  const sender = async () => {
    for (let job = await toSend.take(); job; job = await toSend.take()) {
      const { file, prepared, input, answer } = job;
      if (stop) {
        prepared.release();
        ahead.free();
        continue;
      }
      report.begin(file.path, file.size);
      try {
        const result = await sendChecked(api, prepared, input, answer, { memory: chunkMemory, onProgress: ({ sentBytes }) => report.progress(file.path, sentBytes) });
        await settle(file, prepared, result.outcome, result);
      } catch (error) {
        await settle(file, prepared, { error });
      }
    }
  };
  await Promise.all([hashing, checking, ...Array.from({ length: Math.max(1, options.concurrency) }, sender)]);
  report.finish();
  if (stop) throw stop;
  return summary;
}

/** A first-in, first-out queue whose reader waits for the next item (undefined once closed and empty). */
class Queue<T> {
  private readonly items: T[] = [];
  private readonly readers: ((item: T | undefined) => void)[] = [];
  private closed = false;

  push(item: T): void {
    const reader = this.readers.shift();
    if (reader) reader(item);
    else this.items.push(item);
  }

  take(): Promise<T | undefined> {
    if (this.items.length > 0) return Promise.resolve(this.items.shift());
    if (this.closed) return Promise.resolve(undefined);
    return new Promise((resolve) => this.readers.push(resolve));
  }

  /** Up to `max` items that are there now, without waiting. */
  takeAll(max: number): T[] {
    return this.items.splice(0, max);
  }

  close(): void {
    this.closed = true;
    for (const reader of this.readers.splice(0)) reader(undefined);
  }
}

/** At most `size` taken at once; `take` waits for a free one. */
class Slots {
  private readonly waiting: (() => void)[] = [];
  constructor(private free_: number) {}

  async take(): Promise<void> {
    if (this.free_ > 0) this.free_--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  free(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free_++;
  }
}
