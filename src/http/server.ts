import { once } from 'node:events';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable, Transform } from 'node:stream';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import type { Config } from '../config.js';
import type { Services } from '../services/index.js';
import { AppError, isAppError } from '../services/app-error.js';
import type { Viewer } from '../services/devices.js';
import { requestOrigin, sessionCookie, type Authenticate } from './credentials.js';
import type { Logger } from '../logger.js';
import type { GraphQLServer, ServerContext } from './graphql.js';

/** A non-GraphQL route: answers true when it handled the request. */
export type Route = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;

/**
 * The largest chunk the GraphQL multipart transport takes (commitChunk): the multipart parser
 * holds a file part whole in memory, so big chunks go through the streaming PUT route instead.
 */
export const MULTIPART_CHUNK_BYTES = 8 * 1024 * 1024;

export interface HttpServer {
  /** The base URL it listens on, e.g. http://127.0.0.1:4000 */
  url: string;
  port: number;
  /** Stops accepting, lets in-flight requests finish (up to the grace period), closes subscriptions. */
  close(graceMs?: number): Promise<void>;
}

export function sendError(res: ServerResponse, error: AppError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ error: { code: error.code, message: error.message, ...error.details } });
  res.writeHead(error.httpStatus, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/**
 * Reads and discards what is left of a refused request's body, so the client that is
 * still sending gets our answer instead of a connection reset. Bodies larger than
 * the cap are not worth the bandwidth: the connection is closed after the answer.
 */
async function drainRequest(req: IncomingMessage, res: ServerResponse, capBytes = 80 * 1024 * 1024): Promise<void> {
  if (req.complete || req.readableEnded || req.destroyed) return;
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > capBytes) {
    res.shouldKeepAlive = false;
    return;
  }
  let seen = 0;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, 10_000);
    function done() {
      clearTimeout(timer);
      req.off('data', count);
      resolve();
    }
    function count(part: Buffer) {
      seen += part.length;
      if (seen > capBytes) {
        res.shouldKeepAlive = false;
        done();
      }
    }
    req.on('data', count);
    req.once('end', done);
    req.once('close', done);
    req.resume();
  });
}

/** GraphQL clients expect a GraphQL-shaped body even when the request fails before execution. */
function sendGraphQLError(res: ServerResponse, error: AppError): void {
  const body = JSON.stringify({ errors: [{ message: error.message, extensions: { code: error.code, ...error.details } }] });
  res.writeHead(error.httpStatus, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** Passes the body through, failing once it grows past the limit (for bodies without Content-Length). */
function limitBody(limit: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.length;
      if (seen > limit) callback(new AppError('PAYLOAD_TOO_LARGE', `Request body is larger than ${limit} bytes`, { limitBytes: limit }));
      else callback(null, chunk);
    },
  });
}

/**
 * The whole body of a small request, refused once it grows past the limit (bodies without
 * Content-Length too). A refused body is left unread, not destroyed: the caller drains it so the
 * client gets the answer rather than a reset.
 */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let seen = 0;
    const finish = (outcome: () => void) => {
      req.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
      outcome();
    };
    const onData = (part: Buffer) => {
      seen += part.length;
      if (seen <= limit) parts.push(part);
      else finish(() => reject(new AppError('PAYLOAD_TOO_LARGE', `Request body is larger than ${limit} bytes`, { limitBytes: limit })));
    };
    const onEnd = () => finish(() => resolve(parts.length === 1 ? parts[0]! : Buffer.concat(parts)));
    const onError = (error: Error) => finish(() => reject(new AppError('BAD_USER_INPUT', `The request body could not be read: ${error.message}`)));
    const onClose = () => finish(() => reject(new AppError('BAD_USER_INPUT', 'The request body ended early')));
    req.on('data', onData).on('end', onEnd).on('error', onError).on('close', onClose);
  });
}

/** The error is the abort of a request whose client has gone. */
function clientLeft(res: ServerResponse, error: unknown): boolean {
  return res.destroyed && !res.writableFinished && error instanceof Error && error.name === 'AbortError';
}

export async function startHttpServer(deps: {
  config: Config;
  services: Services;
  graphql: GraphQLServer;
  routes: Route[];
  authenticate: Authenticate;
  log: Logger;
  /** Port to listen on; 0 picks a free one (tests). */
  port?: number;
  host?: string;
}): Promise<HttpServer> {
  const { config, services, graphql, log } = deps;
  const authenticate = deps.authenticate;
  const secureCookies = config.publicUrl.startsWith('https:');
  const inFlight = new Set<ServerResponse>();
  /** Open subscription streams: they never finish by themselves, so shutdown ends them first. */
  const streams = new Set<ServerResponse>();

  async function handleGraphQL(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Multipart requests carry a chunk (commitChunk); everything else is a small JSON or GET.
    const multipart = /^multipart\/form-data/i.test(req.headers['content-type'] ?? '');
    const limit = multipart ? Math.min(config.uploads.maxChunkBytes, MULTIPART_CHUNK_BYTES) + 1024 * 1024 : config.limits.maxRequestBytes;
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) throw new AppError('PAYLOAD_TOO_LARGE', `Request body is larger than ${limit} bytes`, { limitBytes: limit });
    const { viewer, clearCookie } = await authenticate(req);
    const context: ServerContext = { viewer, origin: requestOrigin(req), responseCookies: clearCookie ? [null] : [] };

    const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
    const abort = new AbortController();
    // Only a client that leaves early aborts (an abort makes a DOMException, whose stack trace is not free).
    res.on('close', () => {
      if (!res.writableFinished) abort.abort();
    });
    // A small JSON body (every query and mutation) is read whole and handed over as bytes: much
    // cheaper per request than a web stream over the socket. Multipart bodies (chunks) stream.
    const whole = hasBody && !multipart ? await readBody(req, limit) : undefined;
    const limited = hasBody && multipart ? req.pipe(limitBody(limit)) : undefined;
    let tooLarge: AppError | undefined;
    limited?.on('error', (error) => {
      tooLarge = error as AppError;
    });
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined) for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
    }
    const request = new graphql.yoga.fetchAPI.Request(new URL(req.url ?? '/', `http://${req.headers.host ?? 'localhost'}`), {
      method: req.method,
      headers,
      body: whole ?? (limited ? (Readable.toWeb(limited) as ReadableStream<Uint8Array>) : undefined),
      signal: abort.signal,
      // Node's fetch needs duplex for streamed request bodies (the DOM types lack it).
      duplex: 'half',
    } as RequestInit);
    const response = await graphql.yoga.fetch(request, context);
    if (tooLarge) throw tooLarge;

    const outHeaders: Record<string, string | string[]> = {};
    response.headers.forEach((value, name) => {
      if (name !== 'set-cookie') outHeaders[name] = value;
    });
    const cookies = context.responseCookies.map((token) => sessionCookie(token, { secure: secureCookies, maxAgeSeconds: config.auth.sessionDays * 86_400 }));
    if (cookies.length > 0) outHeaders['set-cookie'] = cookies;
    res.writeHead(response.status, outHeaders);
    if (!response.body) {
      res.end();
      return;
    }
    const streaming = /^text\/event-stream/.test(response.headers.get('content-type') ?? '');
    if (/^application\/(graphql-response\+)?json/.test(response.headers.get('content-type') ?? '')) {
      // A plain result: one write.
      res.end(Buffer.from(await response.arrayBuffer()));
      return;
    }
    // Streamed results (SSE subscriptions) go out as they come; a client that leaves cancels the stream.
    const reader = response.body.getReader();
    if (streaming) streams.add(res);
    res.on('close', () => {
      streams.delete(res);
      void reader.cancel().catch(() => {});
    });
    for (;;) {
      const { done, value } = await reader.read();
      if (done || res.destroyed) break;
      if (!res.write(value)) await Promise.race([once(res, 'drain'), once(res, 'close')]);
    }
    res.end();
  }

  const server = http.createServer(async (req, res) => {
    inFlight.add(res);
    res.on('close', () => inFlight.delete(res));
    const path = (req.url ?? '/').split('?')[0];
    try {
      if (path === '/graphql') {
        try {
          await handleGraphQL(req, res);
        } catch (error) {
          if (!isAppError(error)) throw error;
          if (res.headersSent) res.destroy();
          else {
            await drainRequest(req, res);
            sendGraphQLError(res, error);
          }
        }
        return;
      }
      if (path === '/healthz') {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
        return;
      }
      for (const route of deps.routes) if (await route(req, res)) return;
      sendError(res, new AppError('NOT_FOUND', `Nothing at ${path}`));
    } catch (error) {
      if (isAppError(error)) {
        await drainRequest(req, res);
        sendError(res, error);
        return;
      }
      // A client that left (a page reloaded or closed mid-request) aborts its request: no one to answer, no fault.
      if (clientLeft(res, error)) return;
      log.error(`unexpected error on ${req.method} ${path}`, error);
      if (res.headersSent) res.destroy();
      else sendError(res, new AppError('INTERNAL_SERVER_ERROR', 'Unexpected error'));
    }
  });
  server.requestTimeout = 0; // large uploads may take long; idle sockets are bounded by headersTimeout/keepAliveTimeout
  server.headersTimeout = 60_000;

  // graphql-ws on the same port and path, through yoga's envelop pipeline so auth, limits and masking apply.
  const wsServer = new WebSocketServer({ noServer: true, maxPayload: config.limits.maxRequestBytes });
  server.on('upgrade', (req, socket, head) => {
    if ((req.url ?? '').split('?')[0] !== '/graphql') {
      socket.destroy();
      return;
    }
    wsServer.handleUpgrade(req, socket, head, (ws) => wsServer.emit('connection', ws, req));
  });
  const heartbeats = new Map<object, NodeJS.Timeout>();
  useServer<Record<string, unknown> | undefined, { viewer: Viewer | null }>(
    {
      onConnect: async (ctx) => {
        const params = ctx.connectionParams ?? {};
        const given = typeof params.authorization === 'string' ? params.authorization : typeof params.token === 'string' ? `Bearer ${params.token}` : undefined;
        const req = ctx.extra.request;
        if (given) req.headers.authorization = given;
        try {
          const { viewer } = await authenticate(req, { upgrade: true });
          ctx.extra.viewer = viewer;
        } catch (error) {
          if (isAppError(error)) return false; // closes with 4403 Forbidden
          throw error;
        }
        const viewer = ctx.extra.viewer;
        if (viewer) {
          // An open socket keeps its device "online" on the control list.
          const timer = setInterval(() => void services.devices.touch(viewer.device.id).catch(() => {}), Math.max(5, config.devices.onlineWindowSeconds / 3) * 1000);
          timer.unref();
          heartbeats.set(ctx, timer);
        }
        return true;
      },
      onClose: (ctx) => {
        clearInterval(heartbeats.get(ctx));
        heartbeats.delete(ctx);
      },
      onSubscribe: async (ctx, _id, payload) => {
        const serverContext: ServerContext = { viewer: ctx.extra.viewer ?? null, origin: requestOrigin(ctx.extra.request), responseCookies: [] };
        const { schema, execute, subscribe, contextFactory, parse, validate } = graphql.yoga.getEnveloped({ ...serverContext, params: payload, request: undefined });
        let document;
        try {
          document = parse(payload.query);
        } catch (error) {
          return [error as never];
        }
        const errors = validate(schema, document);
        if (errors.length > 0) return errors;
        return {
          schema,
          document,
          operationName: payload.operationName,
          variableValues: payload.variables,
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe },
        };
      },
      execute: (args) => (args.rootValue as { execute: typeof import('graphql').execute }).execute(args),
      subscribe: (args) => (args.rootValue as { subscribe: typeof import('graphql').subscribe }).subscribe(args),
    },
    wsServer,
  );

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(deps.port ?? config.port, deps.host ?? config.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    async close(graceMs = 10_000) {
      server.close();
      for (const client of wsServer.clients) client.close(1001, 'Server shutting down');
      for (const res of streams) res.end();
      const deadline = Date.now() + graceMs;
      server.closeIdleConnections();
      while (inFlight.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      for (const res of inFlight) res.destroy();
      server.closeAllConnections();
      for (const timer of heartbeats.values()) clearInterval(timer);
      wsServer.close();
    },
  };
}
