import sharp, { type Sharp } from 'sharp';

/**
 * sharp, configured once for a small server, plus the helpers every media function
 * shares. The rest of pixshare imports image code from `services/media/`, never sharp
 * itself, so these settings hold everywhere.
 */

// libvips' operation cache keeps recent results (and up to 20 open files) for re-use.
// We process each image once, so it would only pin memory and hold descriptors of
// originals that may since have been deleted.
sharp.cache(false);

// One libvips thread per image operation. Parallelism comes from running operations side
// by side instead (deriveImages encodes preview, thumbnail and hash at once; the job queue
// may run several images), which on 2 cores uses both without oversubscribing them. It is
// also sharp's own default on glibc Linux, where more threads per image fragment malloc's
// arenas and grow RSS; we set it explicitly so the behaviour does not depend on the libc.
sharp.concurrency(1);

export { sharp };
export type { Sharp };

/**
 * How many images this process decodes at once. sharp runs on libuv's thread pool (4
 * threads unless UV_THREADPOOL_SIZE says otherwise), which file-system calls share; a burst
 * of uploads completing together must not queue chunk writes behind a dozen decodes. One
 * derivation keeps one pool thread busy while decoding and up to three while encoding, so
 * half the pool leaves room for I/O — and on 2 cores, two images in flight is also where
 * throughput peaks (bench/thumbnails.ts, throughput mode).
 */
const MAX_PARALLEL_IMAGES = Math.max(1, Math.floor((Number(process.env.UV_THREADPOOL_SIZE) || 4) / 2));
let running = 0;
const waiting: (() => void)[] = [];

/** Runs `work` when fewer than MAX_PARALLEL_IMAGES others are running (FIFO). */
export async function withImageSlot<T>(work: () => Promise<T>): Promise<T> {
  if (running >= MAX_PARALLEL_IMAGES) await new Promise<void>((resolve) => waiting.push(resolve));
  else running++;
  try {
    return await work();
  } finally {
    // Hand the slot straight to the next waiter (running stays the same), or free it.
    const next = waiting.shift();
    if (next) next();
    else running--;
  }
}

/** Decoded 8-bit pixels, row-major, interleaved channels (1–4). */
export interface RawPixels {
  data: Buffer;
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
}

/**
 * A pipeline over pixels we decoded ourselves. The pixel limit is off: the buffer is
 * already bounded by our own resize, and a caller's low `limitInputPixels` is about
 * untrusted input, not about this.
 */
export function fromRawPixels(pixels: RawPixels): Sharp {
  return sharp(pixels.data, {
    raw: { width: pixels.width, height: pixels.height, channels: pixels.channels },
    limitInputPixels: false,
  });
}

export type MediaFailureReason =
  /** Not an image format we decode (a video, HEIC, a document, random bytes). */
  | 'unsupported'
  /** Looks like a supported format but its bytes do not decode (truncated, damaged). */
  | 'corrupt'
  /** More pixels (per its header) or more bytes than the configured limits allow. */
  | 'too_large'
  /** Decoding took longer than the configured timeout. */
  | 'timeout'
  /** The input could not be read (missing file, failed stream): not the image's fault, retry may help. */
  | 'read_error';

export interface MediaFailure {
  ok: false;
  reason: MediaFailureReason;
  /** For logs and operators; not meant for end users verbatim. */
  message: string;
  /** What the leading bytes said the file is, when we got that far. */
  mediaType: string | null;
}

/**
 * Maps a sharp/libvips error to a failure reason. libvips reports only messages, so this
 * matches their stable prefixes; anything unrecognised from the decoder counts as corrupt.
 */
export function classifySharpError(error: unknown, mediaType: string | null): MediaFailure {
  const message = error instanceof Error ? error.message : String(error);
  const fail = (reason: MediaFailureReason): MediaFailure => ({ ok: false, reason, message: uniqueLines(message), mediaType });
  if (/exceeds pixel limit|exceeds channel limit/i.test(message)) return fail('too_large');
  if (/unsupported image format/i.test(message)) return fail('unsupported');
  if (/^timeout\b/i.test(message)) return fail('timeout');
  if (/^Input file is missing|ENOENT|EACCES|EISDIR/i.test(message)) return fail('read_error');
  return fail('corrupt');
}

/** libvips repeats the same warning once per scanline, newline-separated; one copy is enough. */
function uniqueLines(message: string): string {
  return [...new Set(message.split('\n').filter((line) => line.trim() !== ''))].slice(0, 5).join('; ');
}
