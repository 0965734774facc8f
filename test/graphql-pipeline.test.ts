import { createHash } from 'node:crypto';
import http from 'node:http';
import { Kind, parse, type DocumentNode } from 'graphql';
import { createClient } from 'graphql-ws';
import type { Plugin } from 'graphql-yoga';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { uploadFile } from '../src/client/upload-file.js';
import type { GraphQLContext } from '../src/schema/context.js';
import { startTestApp, type TestApp } from './support/app.js';
import { newClient, scratchDir } from './support/files.js';

/**
 * One GraphQL pipeline: a plugin registered once sees every operation on every transport — its
 * parse, validate, context and execute (or subscribe) hooks — so a limit, a check or tracing
 * added later as a plugin cannot be skipped by the most used requests.
 */
type Hook = 'parse' | 'validate' | 'context' | 'execute' | 'subscribe';

interface Seen {
  hook: Hook;
  /** The operation's name, else its root fields (as the SDK's anonymous mutations have). */
  operation: string;
  signedIn?: boolean;
}

function label(document: DocumentNode): string {
  const operation = document.definitions.find((d) => d.kind === Kind.OPERATION_DEFINITION);
  if (!operation || operation.kind !== Kind.OPERATION_DEFINITION) return '?';
  return operation.name?.value ?? operation.selectionSet.selections.map((s) => (s.kind === Kind.FIELD ? s.name.value : '…')).join(',');
}

const seen: Seen[] = [];
const probe: Plugin<GraphQLContext> = {
  onParse: ({ params }) => {
    const source = typeof params.source === 'string' ? params.source : params.source.body;
    seen.push({ hook: 'parse', operation: label(parse(source)) });
  },
  onValidate: ({ params }) => void seen.push({ hook: 'validate', operation: label(params.documentAST) }),
  onContextBuilding: ({ context }) => {
    const query = (context as { params?: { query?: string } }).params?.query;
    if (query) seen.push({ hook: 'context', operation: label(parse(query)) });
  },
  onExecute: async ({ args }) => {
    seen.push({ hook: 'execute', operation: label(args.document), signedIn: Boolean((args.contextValue as GraphQLContext).viewer) });
    // An operation slow enough for its client to leave before the answer.
    if (label(args.document) === 'ProbeSlow') await new Promise((resolve) => setTimeout(resolve, 300));
  },
  onSubscribe: ({ args }) => void seen.push({ hook: 'subscribe', operation: label(args.document), signedIn: Boolean((args.contextValue as GraphQLContext).viewer) }),
};

/** The hooks the probe saw for one operation, in the order they ran. */
const hooksOf = (operation: string) => seen.filter((s) => s.operation === operation).map((s) => s.hook);

let app: TestApp;
let files: Awaited<ReturnType<typeof scratchDir>>;
beforeAll(async () => {
  // Registered the way a deployment would add tracing or a rate limit: once, to the one pipeline.
  app = await startTestApp({}, { graphqlPlugins: [probe] });
  files = await scratchDir();
});
afterAll(async () => {
  expect(app.loggedErrors).toEqual([]);
  await app.close();
  await files.remove();
});

describe('one GraphQL pipeline', () => {
  it('runs the plugins for queries and mutations over HTTP: JSON POST, GET, multipart', async () => {
    const api = await newClient(app);
    await api.graphql('query ProbePostQuery { me { id } }');
    await api.graphql('mutation ProbePostMutation { createFolder(name: "probe") { id } }');
    for (const operation of ['ProbePostQuery', 'ProbePostMutation']) {
      expect(hooksOf(operation)).toEqual(['parse', 'validate', 'context', 'execute']);
    }
    // The same document again: parsing and validation may come from yoga's cache, but context and execution run.
    seen.length = 0;
    await api.graphql('query ProbePostQuery { me { id } }');
    expect(hooksOf('ProbePostQuery')).toEqual(expect.arrayContaining(['context', 'execute']));

    const get = await fetch(`${app.url}/graphql?query=${encodeURIComponent('query ProbeGetQuery { me { id } }')}`, { headers: { authorization: `Bearer ${api.token}`, accept: 'application/json' } });
    expect(get.status).toBe(200);
    expect(hooksOf('ProbeGetQuery')).toEqual(['parse', 'validate', 'context', 'execute']);

    // A chunk through the multipart request spec (commitChunk).
    const bytes = Buffer.from('a chunk through the multipart transport');
    const digest = createHash('sha256').update(bytes).digest('hex');
    const { startUpload } = await api.graphql<{ startUpload: { id: string } }>('mutation($f: CheckFileInput!) { startUpload(file: $f) { id } }', { f: { sha256: digest, size: bytes.length, name: 'multipart.bin' } });
    const form = new FormData();
    form.set('operations', JSON.stringify({ query: 'mutation ProbeMultipart($u: ID!, $s: String!, $f: File!) { commitChunk(uploadId: $u, offset: 0, sha256: $s, chunk: $f) { asset { id } } }', variables: { u: startUpload.id, s: digest, f: null } }));
    form.set('map', JSON.stringify({ 0: ['variables.f'] }));
    form.set('0', new Blob([bytes]), 'chunk');
    const multipart = await fetch(`${app.url}/graphql`, { method: 'POST', body: form, headers: { authorization: `Bearer ${api.token}` } });
    expect(((await multipart.json()) as { data: { commitChunk: { asset: { id: string } | null } } }).data.commitChunk.asset).not.toBeNull();
    expect(hooksOf('ProbeMultipart')).toEqual(['parse', 'validate', 'context', 'execute']);
    expect(seen.filter((s) => s.hook === 'execute').every((s) => s.signedIn)).toBe(true);
  });

  it('runs them for checkUploads and claimUpload as the SDK sends them (an instant upload)', async () => {
    const owner = await newClient(app);
    const { file } = await files.random('shared.bin', 64 * 1024);
    await uploadFile(owner, file);
    seen.length = 0;
    const claimer = await newClient(app);
    seen.length = 0;
    const result = await uploadFile(claimer, file);
    expect(result.outcome).toBe('instant');
    expect(hooksOf('checkUploads')).toEqual(expect.arrayContaining(['context', 'execute']));
    expect(hooksOf('claimUpload')).toEqual(expect.arrayContaining(['context', 'execute']));
    // Each request once through the whole pipeline, nothing beside it.
    expect(seen.filter((s) => s.hook === 'execute').map((s) => s.operation)).toEqual(['checkUploads', 'claimUpload']);
    expect(seen.filter((s) => s.hook === 'context').map((s) => s.operation)).toEqual(['checkUploads', 'claimUpload']);
  });

  it('runs them for a subscription over SSE', async () => {
    const api = await newClient(app);
    const abort = new AbortController();
    const response = await fetch(`${app.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${api.token}` },
      body: JSON.stringify({ query: 'subscription ProbeSse { devices { name } }' }),
      signal: abort.signal,
    });
    const reader = response.body!.getReader();
    let text = '';
    while (!text.includes('"devices"')) text += new TextDecoder().decode((await reader.read()).value);
    abort.abort();
    expect(hooksOf('ProbeSse')).toEqual(['parse', 'validate', 'context', 'subscribe']);
    expect(seen.find((s) => s.operation === 'ProbeSse' && s.hook === 'subscribe')?.signedIn).toBe(true);
  });

  it('runs them for a query, a mutation and a subscription over graphql-ws', async () => {
    const api = await newClient(app);
    const client = createClient({ url: `${app.url.replace('http', 'ws')}/graphql`, webSocketImpl: WebSocket, connectionParams: { token: api.token }, retryAttempts: 0 });
    try {
      await client.iterate({ query: 'query ProbeWsQuery { me { id } }' }).next();
      await client.iterate({ query: 'mutation ProbeWsMutation { createFolder(name: "ws") { id } }' }).next();
      const events = client.iterate({ query: 'subscription ProbeWsSubscription { devices { name } }' });
      await events.next();
      await events.return?.();
    } finally {
      await client.dispose();
    }
    expect(hooksOf('ProbeWsQuery')).toEqual(['parse', 'validate', 'context', 'execute']);
    expect(hooksOf('ProbeWsMutation')).toEqual(['parse', 'validate', 'context', 'execute']);
    expect(hooksOf('ProbeWsSubscription')).toEqual(['parse', 'validate', 'context', 'subscribe']);
    expect(seen.filter((s) => s.operation.startsWith('ProbeWs') && (s.hook === 'execute' || s.hook === 'subscribe')).every((s) => s.signedIn)).toBe(true);
  });

  it('takes a client that leaves before its answer in its stride: nothing logged as an error, the server still answers', async () => {
    const api = await newClient(app);
    const body = JSON.stringify({ query: 'query ProbeSlow { me { id } }' });
    // Gone while the operation runs, as a page reloaded or closed in the middle of a request is.
    for (const delayMs of [0, 20, 100, 250]) {
      await new Promise<void>((resolve) => {
        const request = http.request(`${app.url}/graphql`, { method: 'POST', headers: { authorization: `Bearer ${api.token}`, 'content-type': 'application/json' } });
        request.on('error', () => resolve());
        request.on('response', () => resolve());
        request.end(body, () => setTimeout(() => request.destroy(), delayMs));
      });
    }
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(app.loggedErrors).toEqual([]);
    expect(await api.graphql<{ me: { id: string } }>('query { me { id } }')).toMatchObject({ me: { id: expect.any(String) } });
  });
});
