import { ensureWebBuild } from '../../src/http/web-build.js';

/** The browser tests run against the built app: built here when missing or stale. */
export default async function setup() {
  const built = await ensureWebBuild({ info: (line) => console.log(line), error: (line, error) => console.error(line, error) });
  if (!built) throw new Error('the web app could not be built');
}
