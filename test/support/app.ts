import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startApp, type App, type AppOptions } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { freePort } from '../../src/db/embedded-postgres.js';

export { freePort };
import type { Logger } from '../../src/logger.js';
import { createTestDatabase } from './database.js';

export interface TestApp extends App {
  /** Posts a GraphQL operation as JSON; returns status, body and response headers. */
  gql<T = Record<string, unknown>>(query: string, variables?: Record<string, unknown>, options?: { token?: string; headers?: Record<string, string> }): Promise<GraphQLResponse<T>>;
  /** Sign up a fresh user as a program; returns its device token. */
  signUp(email?: string, device?: { name: string; platform: string }): Promise<{ token: string; userId: string; deviceId: string; email: string }>;
  /** Unexpected errors the server logged (tests assert there are none). */
  loggedErrors: unknown[];
  /** Waits until the background processing queued so far is done (no media job waiting or running). */
  mediaSettled(timeoutMs?: number): Promise<void>;
}

export interface GraphQLResponse<T> {
  status: number;
  headers: Headers;
  data?: T | null;
  errors?: { message: string; extensions?: { code?: string; [key: string]: unknown }; path?: (string | number)[] }[];
}

export const PASSWORD = 'correct horse battery staple';
let counter = 0;

/** A real server on a free port, with its own database and data directory. */
export async function startTestApp(env: Record<string, string> = {}, options: AppOptions = {}): Promise<TestApp> {
  const database = await createTestDatabase();
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'pixshare-test-'));
  const loggedErrors: unknown[] = [];
  const log: Logger = { info: () => {}, error: (message, error) => void loggedErrors.push({ message, error }) };
  const port = await freePort();
  const config = loadConfig({
    NODE_ENV: 'test',
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    PIXSHARE_DATA_DIR: dataDir,
    DATABASE_URL: database.url,
    PORT: String(port),
    HOST: '127.0.0.1',
    PIXSHARE_SECRET: 'test-secret-test-secret-test-secret-0123',
    PIXSHARE_ARGON2_MEMORY_KIB: '1024',
    ...env,
  });
  const app = await startApp(config, log, options);
  // Signed URLs must point at the port we actually got.
  const url = app.url;

  const gql: TestApp['gql'] = async (query, variables, options = {}) => {
    const response = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/graphql-response+json',
        ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
        ...options.headers,
      },
      body: JSON.stringify({ query, variables }),
    });
    const text = await response.text();
    let body: { data?: never; errors?: never };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw new Error(`non-JSON response ${response.status}: ${text.slice(0, 300)}`);
    }
    return { status: response.status, headers: response.headers, data: body.data, errors: body.errors };
  };

  const signUp: TestApp['signUp'] = async (email = `user${++counter}-${Date.now()}@example.com`, device = { name: 'test runner', platform: 'cli' }) => {
    const result = await gql<{ signUp: { token: string; user: { id: string }; device: { id: string } } }>(
      'mutation($email: String!, $password: String!, $device: DeviceInput) { signUp(email: $email, password: $password, device: $device) { token user { id } device { id } } }',
      { email, password: PASSWORD, device },
    );
    if (!result.data?.signUp) throw new Error(`sign-up failed: ${JSON.stringify(result.errors)}`);
    return { token: result.data.signUp.token, userId: result.data.signUp.user.id, deviceId: result.data.signUp.device.id, email };
  };

  // Jobs waiting or running (one on its last attempt too); not those that gave up for good.
  const mediaSettled: TestApp['mediaSettled'] = async (timeoutMs = 30_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const [row] = await app.database.sql<{ n: number }[]>`select count(*)::int as n from graphile_worker.jobs where task_identifier = 'process-media' and (attempts < max_attempts or locked_at is not null)`;
      if (row!.n === 0) return;
      if (Date.now() > deadline) throw new Error(`${row!.n} media jobs still queued after ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  };

  const stop = app.close;
  return Object.assign(app, {
    url,
    gql,
    signUp,
    loggedErrors,
    mediaSettled,
    async close() {
      await stop();
      await database.drop();
      await fs.rm(dataDir, { recursive: true, force: true });
    },
  });
}

