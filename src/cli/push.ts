import { ApiError, type ApiClient } from '../client/api-client.js';
import type { ByteBudget } from '../client/byte-budget.js';
import { hashFile } from '../client/file-hashing.js';
import { uploadFile, type UploadFileResult } from '../client/upload-file.js';
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
  /** The bytes all chunks in flight may hold in memory together. */
  memory?: ByteBudget;
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

/** Files from this size on have their hash kept while they are sent (smaller ones hash again in a moment). */
const IN_FLIGHT_MIN_BYTES = 16 * 1024 * 1024;

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EAI_AGAIN', 'EPIPE']);

/** Exit code 3: the server cannot be reached, or does not take our token. */
export function stopFor(error: unknown): StopRun | null {
  if (error instanceof ApiError && (error.code === 'UNAUTHENTICATED' || error.code === 'FORBIDDEN')) {
    return new StopRun(error.code, `${error.message} — log in again: pixshare login <server>`, 3);
  }
  const code = (error as { code?: string; cause?: { code?: string } } | null)?.code ?? (error as { cause?: { code?: string } } | null)?.cause?.code;
  if (code && NETWORK_CODES.has(code)) return new StopRun('UNREACHABLE', `cannot reach the server (${code})`, 3);
  return null;
}

/**
 * `pixshare push`: every photo and video of the given files and trees that the server does not
 * have yet. The sync list answers for files this device sent before and that have not changed
 * (not hashed, not asked about); the others are hashed, checked and sent — only what the server
 * lacks — several at once. A file that fails is reported and the rest go on.
 */
export async function push(api: ApiClient, syncList: SyncList, paths: string[], options: PushOptions, report: Reporter): Promise<PushSummary> {
  const found = await findFiles(paths, options);
  const summary: PushSummary = { files: found.files.length, uploaded: 0, instant: 0, exists: 0, unchanged: 0, failed: 0, skipped: found.skipped, unreadable: found.unreadable.length, older: 0, sentBytes: 0 };
  for (const unreadable of found.unreadable) report.file({ path: unreadable.path, outcome: 'failed', error: { code: 'UNREADABLE', message: unreadable.message } });
  const pending: FoundFile[] = [];
  for (const file of found.files) {
    const known = options.recheck ? null : syncList.lookup(file);
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
  let stop: StopRun | null = null;
  let next = 0;
  const worker = async () => {
    while (!stop && next < pending.length) {
      const file = pending[next++]!;
      report.begin(file.path, file.size);
      try {
        // A large file's hash is kept while it is on its way: a client killed in the middle resumes without hashing it again.
        let sha256 = file.size >= IN_FLIGHT_MIN_BYTES ? syncList.inFlightHash(file) : null;
        if (file.size >= IN_FLIGHT_MIN_BYTES && !sha256) {
          sha256 = await hashFile(file.path);
          syncList.rememberInFlight(file, sha256);
        }
        const result = await uploadFile(api, file.path, {
          ...(sha256 ? { sha256, hashedFile: { size: file.size, mtimeMs: file.mtimeMs } } : {}),
          folder: file.folder || undefined,
          memory: options.memory,
          onProgress: ({ sentBytes }) => report.progress(file.path, sentBytes),
        });
        syncList.record(file, { sha256: result.asset.sha256, assetId: result.asset.id });
        summary[result.outcome]++;
        summary.sentBytes += result.sentBytes;
        report.file({ path: file.path, outcome: result.outcome, sha256: result.asset.sha256, assetId: result.asset.id, size: file.size, sentBytes: result.sentBytes });
        await options.onConfirmed?.(file, result.asset, result.outcome);
      } catch (error) {
        stop ??= stopFor(error);
        if (stop) break;
        summary.failed++;
        const code = error instanceof ApiError ? error.code : ((error as { code?: string }).code ?? 'FAILED');
        const message = error instanceof Error ? error.message : String(error);
        report.file({ path: file.path, outcome: 'failed', size: file.size, error: { code, message, ...(error instanceof ApiError ? error.details : {}) } });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency) }, worker));
  report.finish();
  if (stop) throw stop;
  return summary;
}
