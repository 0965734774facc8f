import type { SyncCounts } from '../protocol/sync-counts.js';
import type { FileEvent, Reporter } from './reporter.js';

const DONE = new Set(['uploaded', 'instant', 'exists', 'unchanged']);

/**
 * A push's counters as a folder sync counts them ("5 of 10 uploaded": SyncCounts), kept from the
 * reporter calls a push makes, for a run that reports its progress to others (the agent running a
 * command). Everything is passed on to `inner` as well; `changed` hears each new count.
 */
export class CountingReporter implements Reporter {
  private planned = 0;
  private bytesPlanned = 0;
  private done = 0;
  private uploaded = 0;
  private instant = 0;
  private failed = 0;
  private doneBytes = 0;
  private started = false;
  /** Bytes sent so far of the files in flight. */
  private readonly inFlight = new Map<string, number>();

  constructor(
    private readonly inner: Reporter,
    private readonly changed: (counts: SyncCounts) => void,
  ) {}

  counts(): SyncCounts {
    const inProgress = this.inFlight.size;
    let flying = 0;
    for (const sent of this.inFlight.values()) flying += sent;
    return {
      filesPlanned: this.planned,
      filesDone: this.done,
      filesUploaded: this.uploaded,
      filesInstant: this.instant,
      filesInProgress: inProgress,
      filesPending: Math.max(0, this.planned - this.done - this.failed - inProgress),
      filesFailed: this.failed,
      bytesPlanned: this.bytesPlanned,
      bytesDone: this.doneBytes + flying,
    };
  }

  start(plan: { files: number; bytes: number; unchanged: number }): void {
    this.started = true;
    this.planned += plan.files;
    this.bytesPlanned += plan.bytes;
    this.inner.start(plan);
    this.changed(this.counts());
  }

  begin(path: string, size: number): void {
    this.inFlight.set(path, 0);
    this.inner.begin(path, size);
    this.changed(this.counts());
  }

  progress(path: string, sentBytes: number): void {
    if (this.inFlight.has(path)) this.inFlight.set(path, sentBytes);
    this.inner.progress(path, sentBytes);
    this.changed(this.counts());
  }

  file(event: FileEvent): void {
    this.inFlight.delete(event.path);
    // Reported before the plan: files the sync list answered for, and files that could not be read.
    if (event.outcome === 'unchanged' || (event.outcome === 'failed' && !this.started)) {
      this.planned++;
      this.bytesPlanned += event.size ?? 0;
    }
    if (DONE.has(event.outcome)) {
      this.done++;
      this.doneBytes += event.size ?? 0;
      if (event.outcome === 'uploaded') this.uploaded++;
      else this.instant++;
    } else if (event.outcome === 'failed') this.failed++;
    this.inner.file(event);
    this.changed(this.counts());
  }

  finish(): void {
    this.inner.finish();
    this.changed(this.counts());
  }

  result(kind: string, fields: Record<string, unknown>, sentence: string): void {
    this.inner.result(kind, fields, sentence);
  }

  fail(code: string, message: string): void {
    this.inner.fail(code, message);
  }
}
