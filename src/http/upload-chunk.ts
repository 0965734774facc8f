import type { IncomingMessage, ServerResponse } from 'node:http';
import { finished, PassThrough } from 'node:stream';
import type { Services } from '../services/index.js';
import { parseContentDigest } from '../protocol/content-digest.js';
import { AppError } from '../services/app-error.js';
import type { ChunkResult } from '../services/uploads/commit-chunk.js';
import { requireViewer, type Authenticate } from './credentials.js';
import type { Route } from './server.js';

const PATH = /^\/uploads\/([0-9a-fA-F-]{36})\/chunks\/(\d{1,16})$/;

/**
 * The streaming chunk transport: `PUT /uploads/{id}/chunks/{offset}` with the bytes
 * as the body, `Content-Length`, and `Content-Digest: sha-256=:<base64>:` (RFC 9530).
 * The same service method as the GraphQL `commitChunk`; the body streams straight
 * to storage, never held whole in memory. Answers with what is still missing.
 */
export function createUploadChunkRoute(deps: { services: Services; authenticate: Authenticate }): Route {
  return async (req: IncomingMessage, res: ServerResponse) => {
    const match = PATH.exec((req.url ?? '').split('?')[0]!);
    if (!match) return false;
    if (req.method !== 'PUT') {
      res.setHeader('allow', 'PUT');
      throw new AppError('METHOD_NOT_ALLOWED', 'Chunks are sent with PUT');
    }
    const viewer = await requireViewer(deps.authenticate, req);
    const lengthHeader = req.headers['content-length'];
    if (lengthHeader === undefined || !/^\d+$/.test(lengthHeader)) throw new AppError('LENGTH_REQUIRED', 'Content-Length is required');
    const sha256 = chunkDigest(req.headers['content-digest']);
    // The store destroys a body it refuses; destroying req itself would reset the socket before we can answer.
    const body = new PassThrough();
    // Whoever reads the body (the store) sees its error; until then nobody listens, and an error
    // nobody listens to would end the process.
    body.on('error', () => {});
    req.pipe(body);
    // pipe() does not pass on a client that goes away mid-body: the write would wait for the rest
    // forever, its reservation renewed all the while. finished() also reports a client that left
    // before we got here (while we authenticated it).
    finished(req, (error) => {
      if (error && !req.complete) body.destroy(new AppError('CHUNK_LENGTH_MISMATCH', 'The connection closed before the whole chunk arrived'));
    });
    let result;
    try {
      result = await deps.services.uploads.commitChunk(viewer, { uploadId: match[1]!.toLowerCase(), offset: Number(match[2]), length: Number(lengthHeader), sha256, body });
    } catch (error) {
      // Detach, so the server can drain what the client is still sending and answer.
      req.unpipe(body);
      body.destroy();
      throw error;
    }
    const json = JSON.stringify(chunkResultJson(result));
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(json) });
    res.end(json);
    return true;
  };
}

export function chunkResultJson({ upload, asset }: ChunkResult) {
  return {
    upload: {
      id: upload.id,
      state: upload.state.toUpperCase(),
      size: upload.size,
      receivedBytes: upload.receivedBytes,
      missing: upload.missing,
      failure: upload.failure,
    },
    asset: asset ? { id: asset.id, sha256: asset.sha256, name: asset.name, size: asset.size, thumbnailStatus: asset.thumbnailStatus } : null,
  };
}

/** The chunk's hex SHA-256 from its Content-Digest header, or a clear BAD_USER_INPUT. */
function chunkDigest(header: string | string[] | undefined): string {
  if (!header || header.length === 0) throw new AppError('BAD_USER_INPUT', 'Content-Digest with sha-256 is required (RFC 9530)', { field: 'content-digest' });
  const sha256 = parseContentDigest(header);
  if (sha256 === null) throw new AppError('BAD_USER_INPUT', 'Content-Digest must contain sha-256=:<base64 of 32 bytes>:', { field: 'content-digest' });
  return sha256;
}
