import cliProgress from 'cli-progress';

/** One file's end: what happened to it. Keys are stable (they are the --json output). */
export interface FileEvent {
  path: string;
  outcome: string;
  size?: number;
  sha256?: string;
  assetId?: string;
  sentBytes?: number;
  /** With --perceptual-hash, for images: the 64-bit dHash, 16 hex digits. */
  perceptualHash?: string;
  folder?: string | null;
  error?: { code: string; message: string; [key: string]: unknown };
}

/** How a command tells what it does: JSON lines, plain lines, or a progress display on a terminal. */
export interface Reporter {
  start(plan: { files: number; bytes: number; unchanged: number }): void;
  begin(path: string, size: number): void;
  progress(path: string, sentBytes: number): void;
  file(event: FileEvent): void;
  finish(): void;
  /** The command's result: the last JSON line, or a sentence. */
  result(kind: string, fields: Record<string, unknown>, sentence: string): void;
  /** A problem that ends the command. */
  fail(code: string, message: string): void;
}

export type OutputMode = 'json' | 'progress' | 'plain' | 'quiet';

export function outputMode(options: { json?: boolean; quiet?: boolean; progress?: boolean }, stream: NodeJS.WriteStream = process.stderr): OutputMode {
  if (options.json) return 'json';
  if (options.quiet) return 'quiet';
  return options.progress !== false && stream.isTTY ? 'progress' : 'plain';
}

export function createReporter(mode: OutputMode): Reporter {
  if (mode === 'json') return new JsonReporter();
  if (mode === 'progress') return new ProgressReporter();
  return new PlainReporter(mode === 'quiet');
}

const line = (stream: NodeJS.WriteStream, text: string) => stream.write(`${text}\n`);

class JsonReporter implements Reporter {
  start(): void {}
  begin(): void {}
  progress(): void {}
  file(event: FileEvent): void {
    line(process.stdout, JSON.stringify({ type: 'file', ...event }));
  }
  finish(): void {}
  result(kind: string, fields: Record<string, unknown>): void {
    line(process.stdout, JSON.stringify({ type: kind, ...fields }));
  }
  fail(code: string, message: string): void {
    line(process.stdout, JSON.stringify({ type: 'error', code, message }));
  }
}

const WORDS: Record<string, string> = { uploaded: 'sent', instant: 'instant', exists: 'already there', failed: 'FAILED', 'would-send': 'would send', present: 'already here' };

/** A line per file that changed something (not the unchanged ones), then the result. */
class PlainReporter implements Reporter {
  constructor(private readonly quiet: boolean) {}
  start(): void {}
  begin(): void {}
  progress(): void {}
  file(event: FileEvent): void {
    if (event.outcome === 'failed') line(process.stderr, `failed: ${event.path}: ${event.error?.message ?? 'unknown error'}`);
    else if (!this.quiet && event.outcome !== 'unchanged') line(process.stdout, `${(WORDS[event.outcome] ?? event.outcome).padEnd(13)} ${event.path}`);
  }
  finish(): void {}
  result(_kind: string, _fields: Record<string, unknown>, sentence: string): void {
    if (!this.quiet) line(process.stdout, sentence);
  }
  fail(code: string, message: string): void {
    line(process.stderr, `pixshare: ${message} (${code})`);
  }
}

/**
 * On a terminal: the overall bar (files done of total, bytes, speed, time left) and a line with the
 * files in flight and how far each is. Two lines that stay (bars added and removed per file left
 * stale lines behind on some terminals).
 */
class ProgressReporter implements Reporter {
  private bars?: cliProgress.MultiBar;
  private overall?: cliProgress.SingleBar;
  private current?: cliProgress.SingleBar;
  private readonly inFlight = new Map<string, { size: number; sent: number }>();
  private doneBytes = 0;
  private totalBytes = 0;
  private files = 0;
  private filesDone = 0;
  private readonly started = Date.now();

  start(plan: { files: number; bytes: number; unchanged: number }): void {
    if (plan.files === 0) return;
    this.totalBytes = plan.bytes;
    this.files = plan.files;
    this.bars = new cliProgress.MultiBar(
      { clearOnComplete: true, hideCursor: true, format: '{bar} {percentage}% | {label}', barsize: 30, autopadding: true, stream: process.stderr, linewrap: false },
      cliProgress.Presets.shades_classic,
    );
    this.overall = this.bars.create(Math.max(1, plan.bytes), 0, { label: this.label() });
    this.current = this.bars.create(1, 0, { label: '' }, { format: '{label}' });
  }

  private sent(): number {
    return this.doneBytes + [...this.inFlight.values()].reduce((sum, f) => sum + f.sent, 0);
  }

  private label(): string {
    const seconds = (Date.now() - this.started) / 1000;
    const done = this.sent();
    const speed = seconds > 0 ? done / seconds : 0;
    const left = speed > 0 ? (this.totalBytes - done) / speed : 0;
    return `${this.filesDone} of ${this.files} files | ${mb(done)} of ${mb(this.totalBytes)} | ${mb(speed)}/s | ${left > 0 ? `${Math.ceil(left)} s left` : '…'}`;
  }

  private redraw(): void {
    this.overall?.update(this.sent(), { label: this.label() });
    const width = Math.max(40, (process.stderr.columns || 100) - 2);
    // Every byte sent, no answer yet: the server is checking and storing it.
    const names = [...this.inFlight].map(([path, f]) => `${basename(path)} ${f.size > 0 && f.sent >= f.size ? 'verifying' : `${f.size > 0 ? Math.floor((f.sent / f.size) * 100) : 0}%`}`).join(' · ');
    this.current?.update(0, { label: `  ${names}`.slice(0, width) });
  }

  begin(path: string, size: number): void {
    this.inFlight.set(path, { size, sent: 0 });
    this.redraw();
  }

  progress(path: string, sentBytes: number): void {
    const file = this.inFlight.get(path);
    if (!file) return;
    file.sent = Math.min(sentBytes, file.size);
    this.redraw();
  }

  file(event: FileEvent): void {
    const file = this.inFlight.get(event.path);
    if (file) {
      this.inFlight.delete(event.path);
      this.doneBytes += file.size;
      this.filesDone++;
    } else if (this.bars) {
      // Settled without being sent (already there, claimed instantly, or failed before sending).
      this.doneBytes += event.size ?? 0;
      this.filesDone++;
    }
    if (event.outcome === 'failed') {
      const text = `failed: ${event.path}: ${event.error?.message ?? 'unknown error'}`;
      if (this.bars) this.bars.log(`${text}\n`);
      else line(process.stderr, text);
    }
    this.redraw();
  }

  finish(): void {
    this.bars?.stop();
    this.bars = undefined;
  }

  result(_kind: string, _fields: Record<string, unknown>, sentence: string): void {
    line(process.stdout, sentence);
  }

  fail(code: string, message: string): void {
    this.finish();
    line(process.stderr, `pixshare: ${message} (${code})`);
  }
}

function mb(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(2)} GB` : `${(bytes / 1e6).toFixed(1)} MB`;
}

function basename(path: string): string {
  return path.slice(Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\')) + 1);
}
