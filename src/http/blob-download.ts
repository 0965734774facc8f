import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { AppError, isAppError } from '../services/app-error.js';
import type { BlobStore, InclusiveRange } from '../services/storage/blob-store.js';
import { attachmentDisposition } from '../services/storage/content-disposition.js';
import { BLOB_ROUTE_PREFIX, verifySignedBlobUrl } from '../services/storage/signed-url.js';
import { sendError, type Route } from './server.js';

/**
 * Serves the filesystem driver's signed blob URLs (`/blobs/<key>?exp=…&sig=…`), the way
 * S3 serves its presigned ones: no session, the signature is the authorization. Supports
 * GET and HEAD with single byte ranges so browsers and download managers can resume
 * and video can seek. Answers false for other paths so the server can try other routes.
 * AppErrors become JSON responses here; anything else is rethrown for the server to log
 * and mask.
 */
export function createBlobDownloadHandler(deps: { store: BlobStore; signingSecret: string }): Route {
  return async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    const url = new URL(req.url ?? '/', 'http://blob.invalid'); // only path and query matter
    if (!url.pathname.startsWith(BLOB_ROUTE_PREFIX)) return false;
    try {
      await serveBlob(req, res, url, deps);
    } catch (error) {
      if (!isAppError(error)) throw error;
      sendError(res, error);
    }
    return true;
  };
}

async function serveBlob(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  deps: { store: BlobStore; signingSecret: string },
): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD');
    throw new AppError('METHOD_NOT_ALLOWED', 'Only GET and HEAD are allowed here');
  }
  const claims = verifySignedBlobUrl(url, deps.signingSecret);
  await serveStoredObject(req, res, deps.store, {
    key: claims.key,
    contentType: claims.contentType ?? 'application/octet-stream',
    downloadName: claims.downloadName,
    // A browser may keep it as long as the link is valid, not longer.
    maxAgeSeconds: Math.max(0, claims.expiresAt - Math.floor(Date.now() / 1000)),
  });
}

/** Redirects to S3 are short-lived: the link in the page is the durable address, access is checked each time. */
const REDIRECT_SECONDS = 300;

/**
 * A stored object for a request already authorized: filesystem storage streams it (with ranges),
 * S3 redirects to a short-lived presigned URL.
 */
export async function sendStoredObject(req: IncomingMessage, res: ServerResponse, store: BlobStore, object: StoredObjectResponse): Promise<void> {
  if (store.driver === 's3') {
    const url = await store.signedUrl(object.key, { expiresInSeconds: REDIRECT_SECONDS, contentType: object.contentType, downloadName: object.downloadName });
    res.writeHead(302, { location: url, 'cache-control': 'private, no-store' }).end();
    return;
  }
  await serveStoredObject(req, res, store, object);
}

export interface StoredObjectResponse {
  key: string;
  contentType: string;
  /** Sent as Content-Disposition: attachment when given. */
  downloadName?: string;
  /** For `Cache-Control: private, max-age=…`. */
  maxAgeSeconds: number;
}

/**
 * Answers a GET or HEAD (the caller has checked the method and authorized the request)
 * with a stored object: length, single byte ranges, caching and disposition headers, body
 * streamed with back-pressure. NOT_FOUND and RANGE_NOT_SATISFIABLE are thrown as
 * AppErrors before anything is written, for the caller to send; once the head is out, a
 * failure can only cut the body short.
 */
export async function serveStoredObject(
  req: IncomingMessage,
  res: ServerResponse,
  store: BlobStore,
  object: StoredObjectResponse,
): Promise<void> {
  const blob = await store.stat(object.key);
  if (!blob) throw new AppError('NOT_FOUND', 'No such file');

  const range = parseRange(req.headers.range, blob.size);
  if (range === 'unsatisfiable') {
    res.setHeader('content-range', `bytes */${blob.size}`);
    throw new AppError('RANGE_NOT_SATISFIABLE', 'The requested range is outside the file', { size: blob.size });
  }

  const headers: Record<string, string | number> = {
    'content-type': object.contentType,
    'content-length': range ? range.end - range.start + 1 : blob.size,
    'accept-ranges': 'bytes',
    // Private: these URLs are capabilities or need a session; shared caches must not keep them.
    'cache-control': `private, max-age=${object.maxAgeSeconds}`,
    'x-content-type-options': 'nosniff',
    // Stored bytes are user content: never let them run as a page on our origin.
    'content-security-policy': "default-src 'none'; sandbox",
  };
  if (object.downloadName !== undefined) headers['content-disposition'] = attachmentDisposition(object.downloadName);
  if (range) headers['content-range'] = `bytes ${range.start}-${range.end}/${blob.size}`;

  if (req.method === 'HEAD' || blob.size === 0) {
    res.writeHead(range ? 206 : 200, headers).end();
    return;
  }
  // Opened before the head is written, so a blob deleted since `stat` is still a clean 404.
  const body = await store.get(object.key, range ?? undefined);
  res.writeHead(range ? 206 : 200, headers);
  try {
    await pipeline(body, res);
  } catch (error) {
    // A client that goes away mid-download is normal; pipeline has already destroyed the
    // file stream (closing its handle). Anything else ends the response abruptly, which
    // the client sees as a truncated body — the only honest signal once headers are out.
    if (!res.destroyed) res.destroy();
    if (req.destroyed || isPrematureClose(error)) return;
    throw error;
  }
}

/**
 * One `bytes=` range per RFC 9110 §14: `a-b`, `a-` or the suffix `-n`, clamped to the
 * file. Malformed or multi-range headers are ignored (the whole file is sent, which the
 * RFC allows); a well-formed range that misses the file entirely is unsatisfiable.
 */
export function parseRange(header: string | undefined, size: number): InclusiveRange | 'unsatisfiable' | null {
  if (!header) return null;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return null;
  const [, first = '', last = ''] = match;
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Number(last);
  if (end < start) return null;
  if (start >= size) return 'unsatisfiable';
  return { start, end: Math.min(end, size - 1) };
}

function isPrematureClose(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ECONNRESET' || code === 'EPIPE';
}
