import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Route } from './server.js';

const page = new URL('../../web/index.html', import.meta.url);

/** The web app's entry page (a placeholder until the Svelte app lands). */
export function createWebRoute(): Route {
  let html: Buffer | undefined;
  return async (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/' || (req.method !== 'GET' && req.method !== 'HEAD')) return false;
    html ??= await readFile(page);
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': html.length, 'cache-control': 'no-cache' });
    res.end(req.method === 'HEAD' ? undefined : html);
    return true;
  };
}
