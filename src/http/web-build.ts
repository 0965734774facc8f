import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../logger.js';
import { WEB_DIST } from './web.js';

const WEB = fileURLToPath(new URL('../../web', import.meta.url));
const STAMP = path.join(WEB_DIST, '.source-hash');

/** A hash of everything the build reads: the app's sources, its config, and the versions installed. */
async function sourceHash(): Promise<string> {
  const hash = createHash('sha256');
  const files = [path.join(WEB, 'index.html'), path.join(WEB, 'vite.config.ts'), fileURLToPath(new URL('../../package-lock.json', import.meta.url))];
  for (const entry of await readdir(path.join(WEB, 'src'), { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) files.push(path.join(entry.parentPath, entry.name));
  }
  for (const file of files.sort()) {
    hash.update(path.relative(WEB, file)).update('\0');
    hash.update(await readFile(file).catch(() => Buffer.alloc(0))).update('\0');
  }
  return hash.digest('hex');
}

/**
 * Builds the web app when its build is missing or older than its sources (so `npm start` is all a
 * newcomer runs). Returns false, after logging why, when the build fails: the API still starts,
 * and the pages say the app is not built.
 */
export async function ensureWebBuild(log: Logger): Promise<boolean> {
  const wanted = await sourceHash();
  const built = await readFile(STAMP, 'utf8').catch(() => null);
  if (built === wanted) return true;
  log.info(built === null ? 'web app: building (first start)…' : 'web app: sources changed, building…');
  const started = performance.now();
  try {
    const { build } = await import('vite');
    await build({ configFile: path.join(WEB, 'vite.config.ts'), logLevel: 'warn', mode: 'production' });
    await writeFile(STAMP, wanted);
    log.info(`web app: built in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    return true;
  } catch (error) {
    log.error('web app: the build failed; the API runs without it', error);
    return false;
  }
}
