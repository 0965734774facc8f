import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/**
 * Where the command-line client keeps what it must remember: the device token of `pixshare
 * login` (G5) and the sync list. PIXSHARE_CONFIG_DIR, else the platform's user config folder.
 * The password is never stored; the token file is readable by its owner only (0600).
 */
export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.PIXSHARE_CONFIG_DIR) return path.resolve(env.PIXSHARE_CONFIG_DIR);
  if (process.platform === 'win32') return path.join(env.APPDATA ?? path.join(os.homedir(), 'AppData', 'Roaming'), 'pixshare');
  if (process.platform === 'darwin') return path.join(os.homedir(), 'Library', 'Application Support', 'pixshare');
  return path.join(env.XDG_CONFIG_HOME ?? path.join(os.homedir(), '.config'), 'pixshare');
}

export interface Credentials {
  server: string;
  token: string;
  deviceId?: string;
  email?: string;
}

const CREDENTIALS_FILE = 'credentials.json';

/** The server and token to use: PIXSHARE_SERVER and PIXSHARE_TOKEN (automation) over the stored login. */
export async function loadCredentials(env: NodeJS.ProcessEnv = process.env): Promise<Credentials | null> {
  const stored = await readFile(path.join(configDir(env), CREDENTIALS_FILE), 'utf8')
    .then((text) => JSON.parse(text) as Credentials)
    .catch(() => null);
  const server = env.PIXSHARE_SERVER ?? stored?.server;
  const token = env.PIXSHARE_TOKEN ?? stored?.token;
  if (!server || !token) return null;
  return { ...stored, server: normaliseServer(server), token };
}

export async function saveCredentials(credentials: Credentials, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const dir = configDir(env);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, CREDENTIALS_FILE);
  await writeFile(file, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600 });
  await chmod(file, 0o600); // also when the file was there before with other permissions
  return file;
}

export async function forgetCredentials(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  await rm(path.join(configDir(env), CREDENTIALS_FILE), { force: true });
}

/** 'photos.example.org' → 'https://photos.example.org'; no trailing slash. */
export function normaliseServer(url: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? url : `https://${url}`;
  const parsed = new URL(withScheme);
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error(`not an http(s) address: ${url}`);
  return parsed.toString().replace(/\/+$/, '');
}
