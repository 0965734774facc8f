import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, PASSWORD } from './support/app.js';
import { startServerProcess, type ServerProcess } from './support/server-process.js';

/**
 * The service as a user runs it: `src/main.ts` in its own process with embedded
 * PostgreSQL and filesystem storage under a data directory, stopped by signals.
 */
let dataDir: string;
let port: number;
const children = new Set<ChildProcess>();

beforeAll(async () => {
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'pixshare-process-'));
  await fs.chmod(dataDir, 0o755);
  port = await freePort();
});
afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  // A killed server leaves its PostgreSQL running; the next start would clean it up, here we do.
  const pid = Number((await fs.readFile(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8').catch(() => '')).split('\n')[0]);
  if (pid > 0) process.kill(pid, 'SIGINT');
  await fs.rm(dataDir, { recursive: true, force: true });
});

async function start(extraEnv: Record<string, string> = {}): Promise<ServerProcess> {
  const server = await startServerProcess({ dataDir, port, env: extraEnv });
  children.add(server.child);
  void server.exited.then(() => children.delete(server.child));
  return server;
}

async function gql(query: string, variables: Record<string, unknown> = {}) {
  const res = await fetch(`http://127.0.0.1:${port}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
  return (await res.json()) as { data?: Record<string, { token?: string; user?: { email: string } }>; errors?: { extensions: { code: string } }[] };
}

const SIGN_UP = 'mutation($e: String!, $p: String!) { signUp(email: $e, password: $p, device: { name: "ci", platform: "linux" }) { token user { email } } }';
const LOG_IN = 'mutation($e: String!, $p: String!) { logIn(email: $e, password: $p, device: { name: "ci", platform: "linux" }) { token user { email } } }';

describe('the server process', () => {
  it('prints where its data lives and its URLs, keeps accounts across a restart, and drains requests on SIGTERM', async () => {
    const first = await start();
    expect(first.output()).toContain(`data directory: ${dataDir}`);
    expect(first.output()).toContain(`embedded PostgreSQL under ${path.join(dataDir, 'pg')}`);
    expect(first.output()).toContain(`http://localhost:${port}/graphql`);
    const signUp = await gql(SIGN_UP, { e: 'keep@example.com', p: PASSWORD });
    expect(signUp.data?.signUp?.token).toMatch(/^pxd_/);

    // A request whose body is still arriving when SIGTERM comes must still be answered.
    const body = JSON.stringify({ query: '{ __typename }' });
    const inFlight = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path: '/graphql', method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, body: text }));
      });
      req.on('error', reject);
      req.write(body.slice(0, 5));
      setTimeout(() => {
        first.child.kill('SIGTERM');
        setTimeout(() => req.end(body.slice(5)), 300);
      }, 200);
    });
    expect(await inFlight).toEqual({ status: 200, body: '{"data":{"__typename":"Query"}}' });
    expect(await first.exited).toBe(0);
    expect(first.output()).toContain('stopped');
    expect(existsSync(path.join(dataDir, 'pg', 'postmaster.pid'))).toBe(false);

    const second = await start();
    const logIn = await gql(LOG_IN, { e: 'keep@example.com', p: PASSWORD });
    expect(logIn.data?.logIn?.user?.email).toBe('keep@example.com');
    second.child.kill('SIGINT');
    expect(await second.exited).toBe(0);
  });

  it('starts again after being killed (orphaned database and stale locks are handled)', async () => {
    const victim = await start();
    victim.child.kill('SIGKILL');
    await victim.exited;
    expect(existsSync(path.join(dataDir, 'pg', 'postmaster.pid'))).toBe(true);

    const next = await start();
    expect(next.output()).toContain('orphaned server');
    expect((await gql(LOG_IN, { e: 'keep@example.com', p: PASSWORD })).data?.logIn?.user?.email).toBe('keep@example.com');
    next.child.kill('SIGKILL');
    await next.exited;

    // Now a stale lock: the PostgreSQL is gone too, but its pid file remains.
    const pid = Number((await fs.readFile(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8')).split('\n')[0]);
    process.kill(pid, 'SIGKILL');
    while (existsSync(`/proc/${pid}`)) await new Promise((r) => setTimeout(r, 20));
    expect(existsSync(path.join(dataDir, 'pg', 'postmaster.pid'))).toBe(true);
    const last = await start();
    expect((await gql(LOG_IN, { e: 'keep@example.com', p: PASSWORD })).data?.logIn?.user?.email).toBe('keep@example.com');
    last.child.kill('SIGTERM');
    expect(await last.exited).toBe(0);
  }, 120_000);

  it('refuses a wrong setting at start-up, naming it', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { env: { ...process.env, PIXSHARE_DATA_DIR: dataDir, PORT: 'eighty' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const code = await new Promise((resolve) => child.on('exit', resolve));
    expect(code).toBe(78);
    expect(output).toMatch(/Invalid setting PORT: must be a number/);
  });
});
