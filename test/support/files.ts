import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ApiClient } from '../../src/client/api-client.js';
import { PASSWORD, startTestApp, type TestApp } from './app.js';
import { startS3rver, type RunningS3rver } from './s3rver.js';

export const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** A temporary directory with helpers to write test files into it. */
export async function scratchDir() {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pixshare-files-'));
  return {
    dir,
    async write(name: string, bytes: Uint8Array): Promise<string> {
      const file = path.join(dir, name);
      await fs.writeFile(file, bytes);
      return file;
    },
    async random(name: string, size: number): Promise<{ file: string; bytes: Buffer }> {
      const bytes = randomBytes(size);
      return { file: await this.write(name, bytes), bytes };
    },
    remove: () => fs.rm(dir, { recursive: true, force: true }),
  };
}

/** Settings that put a test app's storage on an in-process s3rver. */
export async function s3Env(): Promise<{ env: Record<string, string>; s3: RunningS3rver }> {
  const s3 = await startS3rver(`px-${randomBytes(4).toString('hex')}`);
  return {
    s3,
    env: { S3_ENDPOINT: s3.endpoint, S3_BUCKET: s3.bucket, S3_REGION: s3.region, S3_ACCESS_KEY_ID: s3.accessKeyId, S3_SECRET_ACCESS_KEY: s3.secretAccessKey, S3_FORCE_PATH_STYLE: 'true' },
  };
}

/** A test app on the given storage driver (s3: its own in-process s3rver, closed with the app). */
export async function startAppOn(driver: 'fs' | 's3', env: Record<string, string> = {}): Promise<TestApp> {
  if (driver === 'fs') return startTestApp(env);
  const storage = await s3Env();
  const app = await startTestApp({ ...env, ...storage.env });
  const close = app.close;
  app.close = async () => {
    await close();
    await storage.s3.close();
  };
  return app;
}

/** An API client signed in as a fresh user. */
export async function newClient(app: TestApp, name?: string): Promise<ApiClient & { userId: string; email: string }> {
  const user = await app.signUp(name);
  return Object.assign(new ApiClient(app.url, user.token), { userId: user.userId, email: user.email, token: user.token });
}

/** An account signed up elsewhere (in a browser), logged in as a program on another device: an API client for it. */
export async function logInAsProgram(app: TestApp, email: string, device = { name: 'test', platform: 'cli' }): Promise<ApiClient & { userId: string; email: string; token: string }> {
  const { logIn } = await new ApiClient(app.url).graphql<{ logIn: { token: string; user: { id: string } } }>(
    'mutation($e: String!, $p: String!, $d: DeviceInput) { logIn(email: $e, password: $p, device: $d) { token user { id } } }',
    { e: email, p: PASSWORD, d: device },
  );
  return Object.assign(new ApiClient(app.url, logIn.token), { userId: logIn.user.id, email, token: logIn.token });
}

/** Downloads an asset's original (or thumbnail/preview) with the client's token. */
export async function download(app: TestApp, token: string | undefined, assetId: string, kind = 'original'): Promise<{ status: number; bytes: Buffer; type: string | null }> {
  const response = await fetch(`${app.url}/assets/${assetId}/${kind}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: response.status, bytes: Buffer.from(await response.arrayBuffer()), type: response.headers.get('content-type') };
}

/**
 * Records every chunk PUT the client really sends (after retries, from every worker), so a test
 * can tell what crossed the wire from what the SDK says it sent.
 */
export function countChunkPuts(api: ApiClient): { spans: { offset: number; length: number }[]; bytes(): number } {
  const spans: { offset: number; length: number }[] = [];
  const send = api.putChunk.bind(api);
  api.putChunk = (async (uploadId: string, offset: number, body: Uint8Array, digest: Uint8Array, signal?: AbortSignal) => {
    spans.push({ offset, length: body.byteLength });
    return send(uploadId, offset, body, digest, signal);
  }) as ApiClient['putChunk'];
  return { spans, bytes: () => spans.reduce((n, s) => n + s.length, 0) };
}

/** True when every span lies inside one of `within`. */
export function allInside(spans: { offset: number; length: number }[], within: { offset: number; length: number }[]): boolean {
  return spans.every((s) => within.some((w) => s.offset >= w.offset && s.offset + s.length <= w.offset + w.length));
}

/**
 * The answer to a proof-of-possession challenge worked out here from the protocol's definition
 * (README: SHA-256 of the nonce's bytes, then each range's bytes in order), independently of
 * the SDK and the server, which share theirs.
 */
export function proofFor(bytes: Buffer, challenge: { nonce: string; ranges: { offset: number; length: number }[] }): string {
  const hash = createHash('sha256').update(Buffer.from(challenge.nonce, 'hex'));
  for (const r of challenge.ranges) hash.update(bytes.subarray(r.offset, r.offset + r.length));
  return hash.digest('hex');
}
