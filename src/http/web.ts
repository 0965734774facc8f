import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import type { Config } from '../config.js';
import type { Services } from '../services/index.js';
import { requestOrigin } from './credentials.js';
import type { Route } from './server.js';

/** Where `npm start` builds the web app (see web-build.ts). */
export const WEB_DIST = fileURLToPath(new URL('../../web/dist', import.meta.url));

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
};

const SHARE_PAGE = /^\/s\/([A-Za-z0-9_-]{1,100})\/?$/;

/**
 * The web app: its hashed files under /app/ (cached for a year), and its page for every other
 * path without a file extension (the app routes itself). A share link's page (`/s/<token>`) carries
 * Open Graph tags for chat apps' link previews — title, sender, photo count and one thumbnail,
 * nothing more — without counting as the recipient opening it. Every page is sent with a
 * Content-Security-Policy and no Referer (a share link's token must not leak to other sites).
 */
export function createWebRoute(deps: { config: Config; services: Services; dist?: string }): Route {
  const dist = deps.dist ?? WEB_DIST;
  const headers = pageHeaders(deps.config);
  let template: Promise<string> | undefined;
  const page = () => (template ??= readFile(path.join(dist, 'index.html'), 'utf8').catch(() => MISSING_BUILD));

  return async (req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const url = new URL(req.url ?? '/', 'http://x');
    let pathname: string;
    try {
      pathname = decodeURIComponent(url.pathname);
    } catch {
      return false; // a malformed %-escape: nothing here (404)
    }
    if (pathname.startsWith('/app/')) return sendAppFile(req, res, dist, pathname);
    // API paths and anything that looks like a file are not pages.
    if (/\.[a-z0-9]+$/i.test(pathname) || pathname.startsWith('/assets/') || pathname.startsWith('/shared/') || pathname.startsWith('/uploads/') || pathname.startsWith('/blobs/')) return false;
    let html = await page();
    const token = SHARE_PAGE.exec(pathname)?.[1];
    if (token) html = html.replace('<!--pixshare:head-->', await sharePreviewTags(deps, req, token));
    const body = Buffer.from(html);
    res.writeHead(200, { ...headers, 'content-type': 'text/html; charset=utf-8', 'content-length': body.length, 'cache-control': 'no-cache' });
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  };
}

async function sendAppFile(req: IncomingMessage, res: ServerResponse, dist: string, pathname: string): Promise<boolean> {
  const file = path.join(dist, pathname);
  if (!file.startsWith(path.join(dist, 'app') + path.sep)) return false;
  const info = await stat(file).catch(() => null);
  if (!info?.isFile()) return false;
  res.writeHead(200, {
    'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
    'content-length': info.size,
    // Named by their content hash: a new build has new names.
    'cache-control': 'public, max-age=31536000, immutable',
    'x-content-type-options': 'nosniff',
  });
  if (req.method === 'HEAD') res.end();
  // A read error (the build replaced under us) ends this response, never the server.
  else await pipeline(createReadStream(file), res).catch(() => res.destroy());
  return true;
}

/** Open Graph tags for a share link: only what the link's holder may see, and nothing for a link that does not open. */
async function sharePreviewTags(deps: { config: Config; services: Services }, req: IncomingMessage, token: string): Promise<string> {
  const { services, config } = deps;
  const grant = await services.shares.openLink(token, requestOrigin(req), { countOpen: false }).catch(() => null);
  const tags = ['<meta name="robots" content="noindex, nofollow" />'];
  if (!grant) return tags.join('\n    ');
  const page = await services.shares.sharedAssets(grant, { first: 1 });
  const cover = page.assets.find((asset) => asset.thumbnailStatus === 'ready');
  const count = page.totalCount;
  const description = `${grant.sender.nickname} shared ${count} ${count === 1 ? 'photo' : 'photos'} with you`;
  const meta = (property: string, content: string) => `<meta property="${property}" content="${escapeHtml(content)}" />`;
  tags.push(
    `<meta name="description" content="${escapeHtml(description)}" />`,
    meta('og:type', 'website'),
    meta('og:site_name', 'pixshare'),
    meta('og:title', grant.share.title),
    meta('og:description', description),
    meta('og:url', `${config.publicUrl}/s/${token}`),
  );
  if (cover) {
    const image = services.shareUrls.file(grant.recipient.id, cover.id, 'preview');
    tags.push(meta('og:image', image.startsWith('http') ? image : `${config.publicUrl}${image}`), '<meta name="twitter:card" content="summary_large_image" />');
  }
  return tags.join('\n    ');
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Security headers of every page: scripts and styles from this server only; images also from the S3 store, when there is one. */
function pageHeaders(config: Config): Record<string, string> {
  const images = ["'self'", 'data:', 'blob:'];
  if (config.storage.driver === 's3') {
    if (config.storage.endpoint) {
      const endpoint = new URL(config.storage.endpoint);
      images.push(endpoint.origin, `${endpoint.protocol}//*.${endpoint.host}`);
    } else images.push('https://*.amazonaws.com');
  }
  const policy = [
    "default-src 'self'",
    "script-src 'self'",
    // Svelte sets style attributes for transitions; no inline scripts are allowed.
    "style-src 'self' 'unsafe-inline'",
    `img-src ${images.join(' ')}`,
    // Videos play from their originals, which S3 storage serves from its own origin.
    `media-src ${images.filter((source) => source !== 'data:' && source !== 'blob:').join(' ')}`,
    "connect-src 'self'",
    "worker-src 'self' blob:",
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
    "form-action 'self'",
  ].join('; ');
  return {
    'content-security-policy': policy,
    'referrer-policy': 'no-referrer',
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
  };
}

const MISSING_BUILD = `<!doctype html>
<html lang="en"><head><meta charset="utf-8" /><title>pixshare</title><!--pixshare:head--></head>
<body><main><h1>pixshare</h1><p>The API is running at <a href="/graphql">/graphql</a>, but the web app is not built. <code>npm start</code> builds it; see the server's log for why it could not.</p></main></body></html>`;
