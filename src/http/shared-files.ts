import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { Services } from '../services/index.js';
import { AppError } from '../services/app-error.js';
import { blobKey, derivedKey } from '../services/blobs.js';
import { PREVIEW_MAX_SIDE } from '../services/media/derive-images.js';
import type { ReceivedShare } from '../services/sharing/share-service.js';
import { SHARED_FILES_PREFIX, type SharedFileClaims } from '../services/sharing/share-urls.js';
import type { BlobStore } from '../services/storage/blob-store.js';
import { attachmentDisposition } from '../services/storage/content-disposition.js';
import { sendStoredObject } from './blob-download.js';
import { requestOrigin } from './credentials.js';
import type { Route } from './server.js';

/** `/s/<token>/download.zip`: the ZIP straight from a link (for curl and download managers). */
const LINK_ZIP = /^\/s\/([^/]{1,200})\/download\.zip$/;

/**
 * What a share recipient fetches (S10): thumbnails, previews, edited images and originals of the
 * photos their share shows, and the whole share as a ZIP — through the signed URLs that share(token)
 * hands out, or a ZIP straight from the link. Every request reads the recipient's grant again and
 * asks Access, so a revoked recipient or share, an expired one, or a photo no longer in it is
 * refused at once, whatever URL was handed out before.
 */
export function createSharedFilesRoute(deps: { services: Services; storage: BlobStore }): Route {
  const { services } = deps;
  return async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://share.invalid');
    const linkZip = LINK_ZIP.exec(url.pathname);
    if (!linkZip && !url.pathname.startsWith(SHARED_FILES_PREFIX)) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      throw new AppError('METHOD_NOT_ALLOWED', 'Only GET and HEAD are allowed here');
    }
    if (linkZip) {
      // The same call as the share(token) query: the same states and the same guess limit.
      const grant = await services.shares.openLink(decodeURIComponent(linkZip[1]!), requestOrigin(req));
      await sendZip(req, res, services, grant);
      return true;
    }
    const claims = services.shareUrls.verify(url);
    if (!claims) throw new AppError('NOT_FOUND', `Nothing at ${url.pathname}`);
    const grant = await services.shares.grantFor(claims.recipientId);
    if (claims.kind === 'zip') await sendZip(req, res, services, grant);
    else await sendPhoto(req, res, deps, grant, claims);
    return true;
  };
}

async function sendPhoto(req: IncomingMessage, res: ServerResponse, deps: { services: Services; storage: BlobStore }, grant: ReceivedShare, claims: SharedFileClaims): Promise<void> {
  const { services } = deps;
  const maxAgeSeconds = Math.max(0, claims.expiresAt - Math.floor(Date.now() / 1000));
  if (claims.kind === 'original') {
    const asset = await services.access.asset(grant, 'download', claims.target);
    await countFullDownload(req, services, grant);
    await sendStoredObject(req, res, deps.storage, { key: blobKey(asset.sha256), contentType: asset.mimeType ?? 'application/octet-stream', downloadName: asset.name, maxAgeSeconds });
    return;
  }
  const asset = await services.access.asset(grant, 'view', claims.target);
  if (asset.thumbnailStatus !== 'ready') throw new AppError('NOT_FOUND', 'This photo has no images (not a readable image)');
  const rule = services.shares.editRuleOf(grant.share);
  // A preview never shows more than the edit rule allows: with a smaller maximum, the edited image stands in.
  const previewTooLarge = claims.kind === 'preview' && rule.maxDimension !== null && rule.maxDimension < PREVIEW_MAX_SIDE;
  if (claims.kind === 'image' || previewTooLarge) {
    const image = await services.blobs.editedImage(asset.sha256, rule);
    if (claims.kind === 'image') await countFullDownload(req, services, grant);
    const extension = image.key.slice(image.key.lastIndexOf('.') + 1);
    const downloadName = `${asset.name.replace(/\.[^.]{1,8}$/, '')}.${extension}`;
    await sendStoredObject(req, res, deps.storage, { key: image.key, contentType: image.mediaType, downloadName, maxAgeSeconds });
    return;
  }
  await sendStoredObject(req, res, deps.storage, { key: derivedKey(asset.sha256, claims.kind === 'thumbnail' ? 'thumbnail' : 'preview'), contentType: 'image/webp', maxAgeSeconds });
}

/** A full photo counts as downloaded once per request for its start (a resumed range does not count again). */
async function countFullDownload(req: IncomingMessage, services: Services, grant: ReceivedShare): Promise<void> {
  if (req.method === 'GET' && !/^bytes=0*[1-9]/.test(req.headers.range ?? '')) await services.shares.countDownloads(grant, 1);
}

async function sendZip(req: IncomingMessage, res: ServerResponse, services: Services, grant: ReceivedShare): Promise<void> {
  const archive = await services.shareArchives.build(grant);
  const headers: Record<string, string | number> = {
    'content-type': 'application/zip',
    'content-disposition': attachmentDisposition(archive.fileName),
    'cache-control': 'private, no-store',
    'x-content-type-options': 'nosniff',
  };
  if (archive.size !== null) headers['content-length'] = archive.size;
  res.writeHead(200, headers);
  if (req.method === 'HEAD') {
    archive.stream.destroy();
    res.end();
    return;
  }
  // A member that fails half-way cuts the response short (the client sees an incomplete download, never a ZIP that looks whole).
  await pipeline(archive.stream, res).catch(() => res.destroy());
}
