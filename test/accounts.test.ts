import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../src/client/api-client.js';
import { PASSWORD, startTestApp, type TestApp } from './support/app.js';

const SIGN_UP = 'mutation($email: String!, $password: String!, $nickname: String, $device: DeviceInput) { signUp(email: $email, password: $password, nickname: $nickname, device: $device) { token user { id email nickname level quotaBytes } device { id name platform kind } } }';
const LOG_IN = 'mutation($email: String!, $password: String!, $device: DeviceInput) { logIn(email: $email, password: $password, device: $device) { token user { id email } device { id kind } } }';
const ME = '{ me { id email nickname } }';
const phone = { name: "Anna's phone", platform: 'android' };

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp({ PIXSHARE_LOGIN_MAX_FAILURES: '3' });
});
afterAll(async () => {
  expect(app.loggedErrors).toEqual([]);
  await app.close();
});

describe('sign up and log in from a program (device token)', () => {
  it('signs up, names the device, and the token identifies the user', async () => {
    const res = await app.gql<{ signUp: { token: string; user: { id: string; email: string; nickname: string; level: string; quotaBytes: number }; device: { kind: string; name: string } } }>(SIGN_UP, {
      email: '  Anna@Example.COM ',
      password: PASSWORD,
      nickname: 'Anna',
      device: phone,
    });
    expect(res.errors).toBeUndefined();
    const { token, user, device } = res.data!.signUp;
    expect(token).toMatch(/^pxd_[A-Za-z0-9_-]{43}$/);
    expect(user).toMatchObject({ email: 'anna@example.com', nickname: 'Anna', level: 'standard', quotaBytes: 10 * 2 ** 30 });
    expect(device).toMatchObject({ kind: 'program', name: "Anna's phone" });
    expect(res.headers.get('set-cookie')).toBeNull();

    const me = await app.gql<{ me: { id: string; email: string } }>(ME, {}, { token });
    expect(me.data?.me).toMatchObject({ id: user.id, email: 'anna@example.com' });
  });

  it('refuses a second account with the same email, whatever its case', async () => {
    const res = await app.gql(SIGN_UP, { email: 'ANNA@example.com', password: PASSWORD });
    expect(res.errors?.[0]?.extensions?.code).toBe('EMAIL_TAKEN');
    expect(res.data).toBeNull();
  });

  it('logs in with the right password and refuses a wrong one', async () => {
    const ok = await app.gql<{ logIn: { token: string; device: { kind: string } } }>(LOG_IN, { email: 'anna@example.com', password: PASSWORD, device: { name: 'laptop', platform: 'linux' } });
    expect(ok.errors).toBeUndefined();
    expect(ok.data!.logIn.token).toMatch(/^pxd_/);

    const wrong = await app.gql(LOG_IN, { email: 'anna@example.com', password: 'not the password', device: phone });
    expect(wrong.errors?.[0]?.extensions?.code).toBe('INVALID_CREDENTIALS');
    const unknown = await app.gql(LOG_IN, { email: 'nobody@example.com', password: PASSWORD, device: phone });
    expect(unknown.errors?.[0]?.extensions?.code).toBe('INVALID_CREDENTIALS');
    expect(unknown.errors?.[0]?.message).toBe(wrong.errors?.[0]?.message);
  });

  it('logs out: the token stops working', async () => {
    const { token } = await app.signUp();
    const out = await app.gql<{ logOut: boolean }>('mutation { logOut }', {}, { token });
    expect(out.data?.logOut).toBe(true);
    const me = await app.gql(ME, {}, { token });
    expect(me.status).toBe(401);
    expect(me.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('refuses malformed, unknown and revoked tokens with UNAUTHENTICATED', async () => {
    for (const token of ['nonsense', 'pxd_short', `pxd_${'A'.repeat(43)}`]) {
      const res = await app.gql(ME, {}, { token });
      expect(res.status).toBe(401);
      expect(res.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    }
    const basic = await app.gql(ME, {}, { headers: { authorization: 'Basic abc' } });
    expect(basic.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');

    const first = await app.signUp();
    const second = await app.gql<{ logIn: { token: string; device: { id: string } } }>(LOG_IN, { email: first.email, password: PASSWORD, device: { name: 'second', platform: 'cli' } });
    const revoked = await app.gql<{ revokeDevice: { id: string } }>('mutation($id: ID!) { revokeDevice(id: $id) { id } }', { id: second.data!.logIn.device.id }, { token: first.token });
    expect(revoked.data?.revokeDevice.id).toBe(second.data!.logIn.device.id);
    const after = await app.gql(ME, {}, { token: second.data!.logIn.token });
    expect(after.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    // The revoking device still works.
    expect((await app.gql<{ me: { id: string } }>(ME, {}, { token: first.token })).data?.me.id).toBe(first.userId);
  });

  it('stops a revoked token at once, on a connection that used it a moment ago and on every instance', async () => {
    // A second server on the same database (a deployment with several instances).
    const other = await startTestApp({ DATABASE_URL: app.database.url });
    try {
      const first = await app.signUp();
      const second = await app.gql<{ logIn: { token: string; device: { id: string } } }>(LOG_IN, { email: first.email, password: PASSWORD, device: { name: 'laptop', platform: 'cli' } });
      const { token, device } = second.data!.logIn;
      // Keep-alive clients: the token was checked moments ago on these very connections.
      const here = new ApiClient(app.url, token);
      const there = new ApiClient(other.url, token);
      for (let i = 0; i < 3; i++) {
        expect((await here.graphql<{ me: { id: string } }>(ME)).me.id).toBe(first.userId);
        expect((await there.graphql<{ me: { id: string } }>(ME)).me.id).toBe(first.userId);
      }
      await app.gql('mutation($id: ID!) { revokeDevice(id: $id) { id } }', { id: device.id }, { token: first.token });
      await expect(here.graphql(ME)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
      // The other instance hears of it through PostgreSQL within moments, well before its trust runs out.
      const revokedAt = Date.now();
      let refused: unknown;
      while (!refused && Date.now() - revokedAt < 4000) {
        refused = await there.graphql(ME).then(
          () => undefined,
          (error: unknown) => error,
        );
        if (!refused) await new Promise((r) => setTimeout(r, 20));
      }
      expect(refused).toMatchObject({ code: 'UNAUTHENTICATED' });
      expect(Date.now() - revokedAt).toBeLessThan(1000);
      expect(other.loggedErrors).toEqual([]);
    } finally {
      await other.close();
    }
  });

  it('cannot revoke another user’s device', async () => {
    const mine = await app.signUp();
    const theirs = await app.signUp();
    const res = await app.gql('mutation($id: ID!) { revokeDevice(id: $id) { id } }', { id: theirs.deviceId }, { token: mine.token });
    expect(res.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect((await app.gql<{ me: { id: string } }>(ME, {}, { token: theirs.token })).data?.me.id).toBe(theirs.userId);
  });

  it('needs a sign-in for the control list', async () => {
    const res = await app.gql('{ devices { id } }');
    expect(res.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });
});

describe('bad input gets a clear error code', () => {
  it.each([
    ['invalid email', { email: 'not-an-email', password: PASSWORD }, 'email'],
    ['too long email', { email: `${'a'.repeat(250)}@example.com`, password: PASSWORD }, 'email'],
    ['short password', { email: 'short@example.com', password: 'abc123' }, 'password'],
    ['common password', { email: 'common@example.com', password: 'password123' }, 'password'],
    ['oversized password', { email: 'big@example.com', password: 'x1'.repeat(200) }, 'password'],
    ['empty nickname', { email: 'nick@example.com', password: PASSWORD, nickname: '   ' }, 'nickname'],
  ])('%s → BAD_USER_INPUT', async (_name, variables, field) => {
    const res = await app.gql(SIGN_UP, variables);
    expect(res.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(res.errors?.[0]?.extensions?.field).toBe(field);
    expect(res.errors?.[0]?.message).not.toMatch(/unexpected/i);
  });

  it('a device with an empty name', async () => {
    const res = await app.gql(SIGN_UP, { email: 'dev@example.com', password: PASSWORD, device: { name: '', platform: 'cli' } });
    expect(res.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('unknown fields', async () => {
    const res = await app.gql('{ me { id passwordHash } }');
    expect(res.status).toBe(400);
    expect(res.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(res.errors?.[0]?.message).toMatch(/passwordHash/);
  });

  it('too-deep queries', async () => {
    // Our schema is shallow today, so the limit is lowered to show the rule at work.
    const strict = await startTestApp({ PIXSHARE_MAX_QUERY_DEPTH: '3' });
    try {
      expect((await strict.gql('{ me { id } }')).errors).toBeUndefined();
      const deep = await strict.gql('{ __type(name: "User") { fields { type { name } } } }');
      expect(deep.status).toBe(400);
      expect(deep.errors?.[0]?.extensions?.code, JSON.stringify(deep.errors)).toBe('QUERY_TOO_DEEP');
      expect(deep.errors?.[0]?.message).toMatch(/depth limit of 3/);
    } finally {
      await strict.close();
    }
  });

  it('too many aliases', async () => {
    const res = await app.gql(`{ ${Array.from({ length: 40 }, (_, i) => `a${i}: me { id }`).join(' ')} }`);
    expect(res.errors?.[0]?.extensions?.code).toBe('TOO_MANY_ALIASES');
  });

  it('oversized request body (declared and streamed)', async () => {
    const big = JSON.stringify({ query: `{ me { id } }`, variables: { pad: 'x'.repeat(2 * 1024 * 1024) } });
    const declared = await fetch(`${app.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: big });
    expect(declared.status).toBe(413);
    expect(((await declared.json()) as { errors: { extensions: { code: string } }[] }).errors[0]!.extensions.code).toBe('PAYLOAD_TOO_LARGE');

    // Chunked transfer (no Content-Length): counted as it streams.
    const chunked = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(`${app.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      });
      req.on('error', reject);
      for (let i = 0; i < 32; i++) req.write(big.slice(i * 65536, (i + 1) * 65536));
      req.end();
    });
    expect(chunked.status).toBe(413);
    expect(chunked.body).toContain('PAYLOAD_TOO_LARGE');

    // Multipart (commitChunk): at most 8 MiB + 1 MiB, whatever the chunk limit (64 MiB here):
    // a multipart part is held in memory; big chunks go through the streaming PUT.
    const form = new FormData();
    form.set('operations', JSON.stringify({ query: 'mutation($f: File!) { commitChunk(uploadId: "x", offset: 0, sha256: "x", chunk: $f) { upload { id } } }', variables: { f: null } }));
    form.set('map', JSON.stringify({ 0: ['variables.f'] }));
    form.set('0', new Blob([new Uint8Array(10 * 1024 * 1024)]), 'chunk');
    const multipart = await fetch(`${app.url}/graphql`, { method: 'POST', body: form });
    expect(multipart.status).toBe(413);
    expect(((await multipart.json()) as { errors: { extensions: { code: string } }[] }).errors[0]!.extensions.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('slows down repeated failed log-ins, then refuses them', async () => {
    const { email } = await app.signUp();
    for (let i = 0; i < 3; i++) {
      const res = await app.gql(LOG_IN, { email, password: 'wrong password!', device: phone });
      expect(res.errors?.[0]?.extensions?.code).toBe('INVALID_CREDENTIALS');
    }
    const refused = await app.gql(LOG_IN, { email, password: PASSWORD, device: phone });
    expect(refused.errors?.[0]?.extensions?.code).toBe('TOO_MANY_ATTEMPTS');
    expect(refused.errors?.[0]?.extensions?.retryAfterSeconds).toBeGreaterThan(0);
  });
});

describe('browser sessions (cookie)', () => {
  async function browserSignUp(email: string) {
    const res = await app.gql<{ signUp: { token: string | null; device: { kind: string } } }>(SIGN_UP, { email, password: PASSWORD });
    const cookie = res.headers.get('set-cookie')!;
    return { res, cookie, value: cookie.split(';')[0]! };
  }

  it('sets an HttpOnly cookie, returns no token, and the cookie signs later requests in', async () => {
    const { res, cookie, value } = await browserSignUp('browser@example.com');
    expect(res.data!.signUp.token).toBeNull();
    expect(res.data!.signUp.device.kind).toBe('browser');
    expect(cookie).toMatch(/^pixshare_session=pxs_/);
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Lax/);
    const me = await app.gql<{ me: { email: string } }>(ME, {}, { headers: { cookie: value } });
    expect(me.data?.me.email).toBe('browser@example.com');
  });

  it('refuses the cookie on requests a foreign site could forge (CSRF)', async () => {
    const { value } = await browserSignUp('csrf@example.com');
    const form = await fetch(`${app.url}/graphql`, {
      method: 'POST',
      headers: { cookie: value, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'query=mutation%20%7B%20logOut%20%7D',
    });
    expect(form.status).toBe(403);
    expect(await form.text()).toContain('CSRF_REJECTED');
    const get = await fetch(`${app.url}/graphql?query=${encodeURIComponent(ME)}`, { headers: { cookie: value, 'sec-fetch-site': 'cross-site' } });
    expect(get.status).toBe(403);
    // With the CSRF header the same GET is fine.
    const allowed = await fetch(`${app.url}/graphql?query=${encodeURIComponent(ME)}`, { headers: { cookie: value, 'x-pixshare-csrf': '1', accept: 'application/json' } });
    expect(((await allowed.json()) as { data: { me: { email: string } } }).data.me.email).toBe('csrf@example.com');
  });

  it('logs out: clears the cookie and the session ends', async () => {
    const { value } = await browserSignUp('bye@example.com');
    const res = await app.gql('mutation { logOut }', {}, { headers: { cookie: value } });
    expect(res.headers.get('set-cookie')).toMatch(/^pixshare_session=; Max-Age=0/);
    const me = await app.gql<{ me: unknown }>(ME, {}, { headers: { cookie: value } });
    expect(me.data?.me).toBeNull();
    expect(me.headers.get('set-cookie')).toMatch(/Max-Age=0/);
  });
});

describe('control list (D1)', () => {
  function requestFrom(localPort: number, token: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const body = JSON.stringify({ query: ME });
      const req = http.request(`${app.url}/graphql`, { method: 'POST', localPort, localAddress: '127.0.0.1', agent: false, headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` } }, (res) => {
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  it('records address, port and time of each request for its device', async () => {
    const user = await app.signUp();
    const list = async () =>
      (await app.gql<{ devices: { id: string; lastAddress: string; lastPort: number; lastSeenAt: string; online: boolean; current: boolean }[] }>(
        '{ devices { id lastAddress lastPort lastSeenAt online current } }',
        {},
        { token: user.token },
      )).data!.devices;
    const before = (await list())[0]!;
    for (const port of [43111, 43112]) {
      await requestFrom(port, user.token);
      // The list request itself is recorded too, so look at the device via a second token.
    }
    const other = await app.gql<{ logIn: { token: string } }>(LOG_IN, { email: user.email, password: PASSWORD, device: { name: 'watcher', platform: 'cli' } });
    const seen = (await app.gql<{ devices: { id: string; name: string; lastAddress: string; lastPort: number; lastSeenAt: string; online: boolean; current: boolean }[] }>(
      '{ devices { id name lastAddress lastPort lastSeenAt online current } }',
      {},
      { token: other.data!.logIn.token },
    )).data!.devices;
    const device = seen.find((d) => d.id === user.deviceId)!;
    expect(device).toMatchObject({ lastAddress: '127.0.0.1', lastPort: 43112, online: true, current: false });
    expect(new Date(device.lastSeenAt).getTime()).toBeGreaterThanOrEqual(new Date(before.lastSeenAt).getTime());
    expect(seen.find((d) => d.name === 'watcher')?.current).toBe(true);
    expect(seen).toHaveLength(2);
  });
});
