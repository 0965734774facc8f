import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Services } from '../services/index.js';
import { AppError } from '../services/app-error.js';
import { blobKey, derivedKey } from '../services/blobs.js';
import type { BlobStore } from '../services/storage/blob-store.js';
import { sendStoredObject } from './blob-download.js';
import { requireViewer, type Authenticate } from './credentials.js';
import type { Route } from './server.js';

const PATH = /^\/assets\/([0-9a-fA-F-]{36})\/(original|thumbnail|preview)$/;

/**
 * An asset's original, thumbnail and preview (S4), for its owner only: the URL is
 * stable and every request is authorized (cookie or bearer token). Filesystem
 * storage streams the bytes (with ranges); S3 redirects to a short-lived presigned URL.
 */
export function createAssetFilesRoute(deps: { services: Services; storage: BlobStore; authenticate: Authenticate }): Route {
  return async (req: IncomingMessage, res: ServerResponse) => {
    const match = PATH.exec((req.url ?? '').split('?')[0]!);
    if (!match) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      throw new AppError('METHOD_NOT_ALLOWED', 'Only GET and HEAD are allowed here');
    }
    const viewer = await requireViewer(deps.authenticate, req);
    const kind = match[2] as 'original' | 'thumbnail' | 'preview';
    // Originals need the right to download; thumbnails and previews only to see the photo.
    const asset = await deps.services.access.asset(viewer, kind === 'original' ? 'download' : 'view', match[1]!.toLowerCase());
    if (kind !== 'original' && asset.thumbnailStatus === 'pending') throw new AppError('NOT_FOUND', 'The thumbnail is being made; ask again in a moment', { thumbnailStatus: 'pending' });
    if (kind !== 'original' && asset.thumbnailStatus !== 'ready') throw new AppError('NOT_FOUND', 'This asset has no thumbnail (not a readable image or video)');
    const object =
      kind === 'original'
        ? { key: blobKey(asset.sha256), contentType: asset.mimeType ?? 'application/octet-stream', downloadName: asset.name, maxAgeSeconds: 0 }
        : { key: derivedKey(asset.sha256, kind), contentType: 'image/webp', maxAgeSeconds: 86_400 };
    await sendStoredObject(req, res, deps.storage, object);
    return true;
  };
}
