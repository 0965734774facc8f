import { sql } from 'drizzle-orm';
import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { topics } from '../src/services/events.js';
import { PASSWORD, startTestApp, type TestApp } from './support/app.js';

let app: TestApp;
const clients: Client[] = [];
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  for (const client of clients) await client.dispose();
  expect(app.loggedErrors).toEqual([]);
  await app.close();
});

function connect(connectionParams?: Record<string, unknown>, headers?: Record<string, string>): Client {
  const client = createClient({
    url: `${app.url.replace('http', 'ws')}/graphql`,
    webSocketImpl: class extends WebSocket {
      constructor(url: string, protocols: string[]) {
        super(url, protocols, { headers });
      }
    },
    connectionParams,
    retryAttempts: 0,
    lazy: true,
  });
  clients.push(client);
  return client;
}

type DeviceList = { devices: { name: string }[] };

describe('graphql-ws on the same port and path', () => {
  it('streams the control list: current state first, then each change', async () => {
    const user = await app.signUp(undefined, { name: 'phone', platform: 'android' });
    const client = connect({ authorization: `Bearer ${user.token}` });
    const events = client.iterate<DeviceList>({ query: 'subscription { devices { name } }' });
    const first = await events.next();
    expect(first.value.data?.devices.map((d: { name: string }) => d.name)).toEqual(['phone']);

    const login = await app.gql('mutation($e: String!, $p: String!) { logIn(email: $e, password: $p, device: { name: "laptop", platform: "linux" }) { token } }', {
      e: user.email,
      p: PASSWORD,
    });
    expect(login.errors).toBeUndefined();
    const second = await events.next();
    expect(second.value.data?.devices.map((d: { name: string }) => d.name).sort()).toEqual(['laptop', 'phone']);
    await events.return?.();
  });

  it('accepts the token as connectionParams.token too, and runs queries and mutations', async () => {
    const user = await app.signUp();
    const client = connect({ token: user.token });
    const result = await client.iterate<{ me: { id: string } }>({ query: '{ me { id } }' }).next();
    expect(result.value.data?.me.id).toBe(user.userId);
  });

  it('refuses a subscription without a token (UNAUTHENTICATED)', async () => {
    const client = connect();
    const result = await client.iterate<DeviceList>({ query: 'subscription { devices { name } }' }).next();
    expect(result.value.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(result.value.data ?? null).toBeNull();
  });

  it('closes the connection for an invalid or revoked token (4403)', async () => {
    const client = connect({ authorization: 'Bearer pxd_invalidinvalidinvalidinvalidinvalidinvalid' });
    await expect(client.iterate({ query: 'subscription { devices { name } }' }).next()).rejects.toMatchObject({ code: 4403 });
  });

  it('applies the same limits and masking as HTTP', async () => {
    const user = await app.signUp();
    const client = connect({ token: user.token });
    const aliases = `{ ${Array.from({ length: 40 }, (_, i) => `a${i}: me { id }`).join(' ')} }`;
    await expect(client.iterate({ query: aliases }).next()).rejects.toSatisfy((errors: { extensions?: { code?: string } }[]) => errors[0]?.extensions?.code === 'TOO_MANY_ALIASES');
    // Domain errors carry their code over the socket too.
    const missing = await client.iterate({ query: 'mutation { revokeDevice(id: "00000000-0000-4000-8000-000000000000") { id } }' }).next();
    expect(missing.value.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });
});

describe('server-sent events', () => {
  it('delivers a subscription over SSE with the bearer token', async () => {
    const user = await app.signUp(undefined, { name: 'sse client', platform: 'cli' });
    const abort = new AbortController();
    const response = await fetch(`${app.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${user.token}` },
      body: JSON.stringify({ query: 'subscription { devices { name } }' }),
      signal: abort.signal,
    });
    expect(response.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reader = response.body!.getReader();
    let text = '';
    while (!text.includes('"devices"')) text += new TextDecoder().decode((await reader.read()).value);
    expect(text).toContain('sse client');
    abort.abort();
  });
});

describe('shutdown', () => {
  it('ends open subscription streams at once instead of waiting out the grace period', async () => {
    const own = await startTestApp();
    const user = await own.signUp();
    const response = await fetch(`${own.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${user.token}` },
      body: JSON.stringify({ query: 'subscription { devices { name } }' }),
    });
    const reader = response.body!.getReader();
    await reader.read();
    const started = performance.now();
    await own.close();
    expect(performance.now() - started).toBeLessThan(3000);
    // The stream ends (cleanly or cut), it does not hang.
    await reader.read().catch(() => undefined);
  });
});

describe('events published inside a transaction', () => {
  it('arrive intact (quotes, backslashes, any text) when it commits, and not at all when it rolls back', async () => {
    const { pubsub } = app;
    const topic = `test:${Date.now()}`;
    const events = pubsub.subscribe<{ text: string }>(topic);
    const tricky = `it's a \\ back'\\'slash "quote" \\n é 🌅 $$ E'x'`;
    await app.database.db.transaction(async (tx) => {
      // The literal must not depend on this setting.
      await tx.execute(sql`set local standard_conforming_strings = off`);
      await pubsub.publishIn(tx, topic, { text: tricky });
    });
    await app.database.db
      .transaction(async (tx) => {
        await pubsub.publishIn(tx, topic, { text: 'rolled back' });
        throw new Error('roll back');
      })
      .catch(() => {});
    await app.database.db.transaction(async (tx) => pubsub.publishIn(tx, topic, { text: 'second' }));
    expect((await events.next()).value).toEqual({ text: tricky });
    expect((await events.next()).value).toEqual({ text: 'second' });
    await events.return?.();
  });
});

describe('live views', () => {
  it('end with the error of a state that can no longer be read, and let go of their listener', async () => {
    const topic = topics.sync('00000000-0000-4000-8000-000000000001');
    let loads = 0;
    const view = app.services.events.watch(topic, async () => {
      if (++loads > 1) throw new Error('gone');
      return loads;
    });
    expect(await view.next()).toEqual({ value: 1, done: false });
    expect(app.pubsub.listenerCount(topic.name)).toBe(1);
    // The expectation is attached before the event can make next() reject.
    const second = expect(view.next()).rejects.toThrow('gone');
    await app.services.events.publish(topic, { kind: 'library', userId: 'x' });
    await second;
    expect(app.pubsub.listenerCount(topic.name)).toBe(0);
  });
});
