import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createGraphQLServer, type GraphQLServer, type ServerContext } from '../src/http/graphql.js';
import { regularMediaType } from '../src/http/graphql-direct.js';
import { PASSWORD, startTestApp, type TestApp } from './support/app.js';

/**
 * The direct path answers exactly as yoga does: each request goes to yoga first (which validates
 * the document and records it), then the same request to the direct path, and the answers must match.
 */
let app: TestApp;
let graphql: GraphQLServer;
let viewerContext: () => Promise<ServerContext>;

beforeAll(async () => {
  app = await startTestApp();
  graphql = createGraphQLServer({ config: app.config, services: app.services, log: { info: () => {}, error: () => {} } });
  const user = await app.signUp('direct@example.com');
  viewerContext = async () => ({
    viewer: await app.services.devices.authenticate(user.token, { address: '127.0.0.1', port: 1, userAgent: null }),
    origin: { address: '127.0.0.1', port: 1, userAgent: null },
    responseCookies: [],
  });
});
afterAll(async () => {
  await app.close();
});

async function viaYoga(body: string, accept?: string) {
  const response = await graphql.yoga.fetch(
    new graphql.yoga.fetchAPI.Request(`${app.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...(accept ? { accept } : {}) }, body }),
    await viewerContext(),
  );
  return { status: response.status, contentType: response.headers.get('content-type'), body: await response.text() };
}

const direct = async (body: string, accept?: string) => graphql.direct(Buffer.from(body), accept, await viewerContext());

describe('direct GraphQL execution', () => {
  it('answers a document yoga validated, exactly as yoga does', async () => {
    const cases: { query: string; variables?: Record<string, unknown>; accept?: string }[] = [
      { query: '{ me { id email } }' },
      { query: '{ me { id email } }', accept: 'application/graphql-response+json' },
      { query: '{ me { id email } }', accept: 'application/graphql-response+json, application/json' },
      { query: '{ me { id email } }', accept: 'application/json;q=0.9, text/event-stream' },
      { query: '{ me { id email } }', accept: '*/*' },
      // A field error: masked with its code, with data.
      { query: 'query($id: ID!) { asset(id: $id) { id } }', variables: { id: '00000000-0000-4000-8000-000000000000' } },
      { query: 'mutation($name: String!) { createFolder(name: $name) { name } }', variables: { name: 'Direct' } },
    ];
    for (const [i, c] of cases.entries()) {
      // A document of its own per case (an alias), so that yoga sees each one first.
      const query = c.query.replace('{', `{ case${i}: __typename `);
      const body = JSON.stringify({ query, variables: c.variables });
      expect(await direct(body, c.accept), 'not validated yet').toBeNull();
      const fromYoga = await viaYoga(body, c.accept);
      const fromDirect = await direct(body, c.accept);
      if (query.includes('createFolder')) {
        // The folder exists now: both answer with the same folder (created once, then found).
        expect(JSON.parse(fromDirect!.body)).toEqual(JSON.parse(fromYoga.body));
      }
      expect({ status: fromDirect?.status, contentType: fromDirect?.contentType, body: fromDirect?.body }, `case ${i}`).toEqual(fromYoga);
    }
  });

  it('leaves to yoga what it would answer differently: invalid documents, bad variables, streams, odd bodies', async () => {
    const me = JSON.stringify({ query: '{ me { id } }' });
    await viaYoga(me);
    expect(await direct(me)).not.toBeNull();
    // Invalid (an unknown field, too many aliases): never recorded.
    const unknown = JSON.stringify({ query: '{ me { nope } }' });
    expect(JSON.parse((await viaYoga(unknown)).body).errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(await direct(unknown)).toBeNull();
    const deep = JSON.stringify({ query: `{ me { id } ${'folders { cover { id } } '.repeat(1)}${'a: me { id } '.repeat(60)}}` });
    expect(JSON.parse((await viaYoga(deep)).body).errors?.[0]?.extensions?.code).toBe('TOO_MANY_ALIASES');
    expect(await direct(deep)).toBeNull();
    // Variables that do not fit (a required one missing, one of the wrong type): nothing runs, yoga gives the spec's answer.
    const typed = JSON.stringify({ query: 'query($id: ID!) { asset(id: $id) { id } }', variables: { id: 'x' } });
    await viaYoga(typed);
    expect(await direct(JSON.stringify({ query: 'query($id: ID!) { asset(id: $id) { id } }', variables: {} }))).toBeNull();
    expect(await direct(JSON.stringify({ query: 'query($id: ID!) { asset(id: $id) { id } }', variables: { id: { not: 'an id' } } }))).toBeNull();
    // An operation name that names no operation, even when a document without one was run before.
    expect(await direct(JSON.stringify({ query: '{ me { id } }', operationName: '' }))).toBeNull();
    expect(await direct(JSON.stringify({ query: '{ me { id } }', operationName: 'Other' }))).toBeNull();
    // Very long texts are not kept (comments are not tokens: the token limit does not bound the text).
    const padded = JSON.stringify({ query: `# ${'x'.repeat(70 * 1024)}\n{ me { id } }` });
    expect((await viaYoga(padded)).status).toBe(200);
    expect(await direct(padded)).toBeNull();
    // Streams and unsupported charsets are yoga's.
    expect(await direct(me, 'text/event-stream')).toBeNull();
    expect(await direct(me, 'application/json; charset=latin1')).toBeNull();
    // Bodies that are not a plain request.
    for (const odd of ['[]', 'null', '{"query": 1}', JSON.stringify({ query: '{ me { id } }', extra: 1 }), JSON.stringify({ query: '{ me { id } }', extensions: { persistedQuery: {} } }), '{"query": "{ me { id } }"']) {
      expect(await direct(odd), odd).toBeNull();
    }
    // A subscription is never run here.
    const subscription = JSON.stringify({ query: 'subscription { devices { id } }' });
    const stream = await graphql.yoga.fetch(
      new graphql.yoga.fetchAPI.Request(`${app.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'text/event-stream' }, body: subscription }),
      await viewerContext(),
    );
    expect(stream.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = stream.body!.getReader();
    await reader.read(); // the first event: the device list as it is
    await reader.cancel();
    expect(await direct(subscription)).toBeNull();
  });

  it('picks the media type yoga picks', () => {
    expect(regularMediaType(undefined)).toBe('application/json');
    expect(regularMediaType('*/*')).toBe('application/json');
    expect(regularMediaType('application/graphql-response+json, application/json')).toBe('application/graphql-response+json');
    expect(regularMediaType('application/json, application/graphql-response+json')).toBe('application/json');
    expect(regularMediaType('text/event-stream')).toBeNull();
    expect(regularMediaType('application/json; charset=latin1')).toBeNull();
  });

  it('is what the server uses for plain JSON requests; requests from browsers (an Origin) get yoga and its CORS headers', async () => {
    const used = vi.spyOn(app.graphql, 'direct');
    try {
      const body = JSON.stringify({ query: '{ __typename served: __typename }' });
      const post = (headers: Record<string, string>) => fetch(`${app.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
      await post({});
      const plain = await post({});
      expect(plain.status).toBe(200);
      expect(await used.mock.results.at(-1)!.value).toMatchObject({ status: 200 });
      const calls = used.mock.calls.length;
      const fromBrowser = await post({ origin: 'http://example.org' });
      expect(used.mock.calls.length).toBe(calls);
      expect(fromBrowser.headers.get('access-control-allow-origin')).toBe('http://example.org');
      expect(await fromBrowser.json()).toEqual(await plain.json());
    } finally {
      used.mockRestore();
    }
  });

  it('refuses a document over the token limit with QUERY_TOO_LARGE', async () => {
    const response = await fetch(`${app.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
      body: JSON.stringify({ query: `{ ${'__typename '.repeat(6000)}}` }),
    });
    const body = (await response.json()) as { errors?: { extensions?: { code?: string } }[] };
    expect(body.errors?.[0]?.extensions?.code).toBe('QUERY_TOO_LARGE');
    expect(response.status).toBe(400);
  });

  it('sets the session cookie of a browser log-in through the server', async () => {
    const logIn = JSON.stringify({ query: 'mutation($e: String!, $p: String!) { logIn(email: $e, password: $p) { user { id } } }', variables: { e: 'direct@example.com', p: PASSWORD } });
    const used = vi.spyOn(app.graphql, 'direct');
    try {
      for (let i = 0; i < 2; i++) {
        // The first time through yoga, then directly.
        const response = await fetch(`${app.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: logIn });
        expect(response.status).toBe(200);
        expect(response.headers.get('set-cookie')).toMatch(/^pixshare_session=pxs_/);
      }
      expect(await Promise.all(used.mock.results.map((r) => r.value))).toEqual([null, expect.objectContaining({ status: 200 })]);
    } finally {
      used.mockRestore();
    }
  });
});
