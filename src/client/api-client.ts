import http from 'node:http';
import https from 'node:https';
import { contentDigestHeader } from '../protocol/content-digest.js';

// Keep-alive connections, shared by the GraphQL requests and the chunk PUTs.
const httpAgent = new http.Agent({ keepAlive: true });
const httpsAgent = new https.Agent({ keepAlive: true });
/** Longer than any completion the server works through before it answers the last chunk. */
const IDLE_TIMEOUT_MS = 10 * 60_000;

/**
 * A small client for the pixshare API: GraphQL with a device token, plus the
 * streaming chunk PUT. The command-line tool and the benchmarks use it, exactly
 * as any other client would.
 */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export class ApiClient {
  constructor(
    readonly baseUrl: string,
    readonly token?: string,
  ) {}

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...(this.token ? { authorization: `Bearer ${this.token}` } : {}), ...extra };
  }

  /**
   * Through node:http rather than fetch: in a process that has just started (a phone
   * or laptop client waking up for one file), fetch's first requests each cost several
   * milliseconds more than node:http's, as much as the server spends answering them.
   */
  async graphql<T>(query: string, variables: Record<string, unknown> = {}, signal?: AbortSignal): Promise<T> {
    const body = Buffer.from(JSON.stringify({ query, variables }));
    const { status, text } = await this.send('POST', '/graphql', body, { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' }, signal);
    let json: { data?: T | null; errors?: { message: string; extensions?: { code?: string } & Record<string, unknown> }[] };
    try {
      json = JSON.parse(text) as typeof json;
    } catch {
      throw new ApiError('BAD_RESPONSE', `HTTP ${status}: ${text.slice(0, 200)}`);
    }
    const error = json?.errors?.[0];
    if (error) throw new ApiError(error.extensions?.code ?? 'UNKNOWN', error.message, error.extensions ?? {});
    // A proxy's error page, or a server that answered without data: not a result.
    if (status >= 400 || !json || json.data === undefined || json.data === null) throw new ApiError('HTTP_ERROR', `HTTP ${status}: ${text.slice(0, 200)}`);
    return json.data as T;
  }

  /**
   * Opens a download of stored bytes (an asset's downloadUrl), from `offset` on when resuming:
   * answered 200 with the whole file or 206 with the rest, as a stream. Redirects (S3's signed URLs)
   * are followed; the token goes only to this server. Errors are ApiErrors with the server's code.
   * Through node:http (a keep-alive agent) rather than fetch, whose web stream costs more CPU per
   * byte than hashing it.
   */
  async download(url: string, offset = 0, signal?: AbortSignal): Promise<{ status: number; body: http.IncomingMessage }> {
    let target = new URL(url, this.baseUrl);
    for (let redirects = 0; ; redirects++) {
      const sameOrigin = target.origin === new URL(this.baseUrl).origin;
      const headers = { ...(sameOrigin ? this.headers() : {}), ...(offset > 0 ? { range: `bytes=${offset}-` } : {}) };
      const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
        const request = (target.protocol === 'https:' ? https : http).get(target, { agent: target.protocol === 'https:' ? httpsAgent : httpAgent, headers, signal }, resolve);
        request.setTimeout(IDLE_TIMEOUT_MS, () => request.destroy(Object.assign(new Error(`no traffic for ${IDLE_TIMEOUT_MS / 1000} s`), { code: 'ETIMEDOUT' })));
        request.on('error', reject);
      });
      const status = response.statusCode ?? 0;
      if (status === 200 || status === 206) return { status, body: response };
      const location = response.headers.location;
      if (status >= 300 && status < 400 && location && redirects < 3) {
        response.resume();
        target = new URL(location, target);
        continue;
      }
      const parts: Buffer[] = [];
      for await (const part of response) parts.push(part as Buffer);
      let error: { code?: string; message?: string } | undefined;
      try {
        error = (JSON.parse(Buffer.concat(parts).toString()) as { error?: { code?: string; message?: string } }).error;
      } catch {
        error = undefined;
      }
      throw new ApiError(error?.code ?? `HTTP_${status}`, error?.message ?? `HTTP ${status} for ${target.pathname}`);
    }
  }

  /**
   * Sends one chunk with PUT; `body` is the exact bytes. Through node:http rather than
   * fetch: fetch copies a byte body twice before sending it, which for 64 MiB chunks
   * costs as much CPU as hashing them.
   */
  async putChunk<T>(uploadId: string, offset: number, body: Uint8Array, sha256: Uint8Array, signal?: AbortSignal, onWritten?: (bytes: number) => void): Promise<T> {
    const { status, text } = await this.send('PUT', `/uploads/${uploadId}/chunks/${offset}`, body, {
      'content-type': 'application/octet-stream',
      'content-digest': contentDigestHeader(sha256),
    }, signal, false, onWritten);
    let json: T & { error?: { code: string; message: string } & Record<string, unknown> };
    try {
      json = JSON.parse(text) as typeof json;
    } catch {
      throw new ApiError('HTTP_ERROR', `HTTP ${status}: ${text.slice(0, 200)}`);
    }
    if (status >= 300 || !json || json.error) {
      const { code = 'HTTP_ERROR', message = `HTTP ${status}`, ...details } = json.error ?? {};
      throw new ApiError(code, message, details);
    }
    return json;
  }

  /**
   * One request on a keep-alive connection; a network failure is a TypeError (as with fetch),
   * which callers may retry. A kept-alive connection the server closed while it sat idle is
   * reset when reused: the server never saw that request, so it is sent once more on a new one
   * (the pattern Node's documentation gives for `request.reusedSocket`).
   */
  private send(method: string, path: string, body: Uint8Array, headers: Record<string, string>, signal?: AbortSignal, retried = false, onWritten?: (bytes: number) => void): Promise<{ status: number; text: string }> {
    const url = new URL(`${this.baseUrl}${path}`);
    return new Promise((resolve, reject) => {
      const request = (url.protocol === 'https:' ? https : http).request(
        url,
        {
          method,
          agent: url.protocol === 'https:' ? httpsAgent : httpAgent,
          signal,
          headers: this.headers({ ...headers, 'content-length': String(body.byteLength) }),
        },
        (response) => {
          const parts: Buffer[] = [];
          response.on('data', (part: Buffer) => parts.push(part));
          response.on('end', () => resolve({ status: response.statusCode ?? 0, text: Buffer.concat(parts).toString() }));
          // A connection lost in the middle of the answer is a network failure like any other.
          const lost = (error?: Error) => {
            if (error?.name === 'AbortError') reject(error);
            else reject(new TypeError(`${method} ${path} failed: the connection closed during the answer`, { cause: error }));
          };
          response.on('error', lost);
          response.on('close', () => {
            if (!response.complete) lost();
          });
        },
      );
      // A connection on which nothing moves for this long is dead (a stalled network, a server gone
      // without a reset): it fails like a dropped one, so the caller's retries apply.
      request.setTimeout(IDLE_TIMEOUT_MS, () => request.destroy(Object.assign(new Error(`no traffic for ${IDLE_TIMEOUT_MS / 1000} s`), { code: 'ETIMEDOUT' })));
      request.on('error', (error: NodeJS.ErrnoException) => {
        if (error.name === 'AbortError') reject(error);
        else if (request.reusedSocket && error.code === 'ECONNRESET' && !retried) resolve(this.send(method, path, body, headers, signal, true, onWritten));
        else reject(new TypeError(`${method} ${path} failed: ${error.message}`, { cause: error }));
      });
      if (onWritten && body.byteLength > WRITE_PIECE) writeInPieces(request, body, onWritten);
      else request.end(body);
    });
  }
}

/** A large body is written a piece at a time, as the connection takes it, so that progress can follow it. */
const WRITE_PIECE = 1024 * 1024;

function writeInPieces(request: http.ClientRequest, body: Uint8Array, onWritten: (bytes: number) => void): void {
  let offset = 0;
  const next = () => {
    while (offset < body.byteLength && !request.destroyed) {
      const end = Math.min(offset + WRITE_PIECE, body.byteLength);
      const piece = body.subarray(offset, end);
      offset = end;
      if (offset === body.byteLength) {
        request.end(piece, () => onWritten(offset));
        return;
      }
      const written = offset;
      if (!request.write(piece, () => onWritten(written))) {
        request.once('drain', next);
        return;
      }
    }
  };
  next();
}
