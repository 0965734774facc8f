import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

/** A graphql-ws client (the real one) for a server at `url`, signed in with `token`. */
export function wsClient(url: string, token?: string): Client {
  return createClient({
    url: `${url.replace('http', 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: token ? { authorization: `Bearer ${token}` } : undefined,
    retryAttempts: 0,
    lazy: true,
  });
}

export interface GraphQLMessage<T> {
  data?: T | null;
  errors?: { message: string; extensions?: { code?: string } }[];
}

/**
 * Collects the messages of a subscription as they arrive, from graphql-ws or SSE alike:
 * `until(predicate)` waits for a message that satisfies it; `done` resolves when the stream ends.
 */
export class Collected<T> {
  readonly messages: GraphQLMessage<T>[] = [];
  ended = false;
  private waiters: { test: (m: GraphQLMessage<T>) => boolean; resolve: (m: GraphQLMessage<T>) => void; reject: (e: Error) => void }[] = [];
  readonly done: Promise<void>;

  constructor(source: AsyncIterable<unknown>) {
    this.done = (async () => {
      try {
        for await (const item of source) {
          const message = item as GraphQLMessage<T>;
          this.messages.push(message);
          for (const waiter of [...this.waiters]) {
            if (waiter.test(message)) {
              this.waiters.splice(this.waiters.indexOf(waiter), 1);
              waiter.resolve(message);
            }
          }
        }
      } finally {
        this.ended = true;
        for (const waiter of this.waiters.splice(0)) waiter.reject(new Error(`the stream ended after ${this.messages.length} messages: ${JSON.stringify(this.messages.at(-1))}`));
      }
    })();
    this.done.catch(() => {});
  }

  until(test: (message: GraphQLMessage<T>) => boolean, timeoutMs = 20_000): Promise<GraphQLMessage<T>> {
    const seen = this.messages.find(test);
    if (seen) return Promise.resolve(seen);
    if (this.ended) return Promise.reject(new Error('the stream has ended'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no such message within ${timeoutMs} ms; last: ${JSON.stringify(this.messages.at(-1))}`)), timeoutMs);
      this.waiters.push({
        test,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
    });
  }
}

/** A subscription over server-sent events (POST, Accept: text/event-stream), as `curl -N` would follow it. */
export async function* sse<T>(url: string, token: string | undefined, query: string, variables: Record<string, unknown>, signal: AbortSignal): AsyncGenerator<GraphQLMessage<T>> {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
    signal,
  });
  if (!response.headers.get('content-type')?.includes('text/event-stream')) {
    yield (await response.json()) as GraphQLMessage<T>;
    return;
  }
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    const reader = response.body!.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const lines = event.split('\n');
        if (lines.some((line) => line === 'event: complete')) return;
        const data = lines.filter((line) => line.startsWith('data:')).map((line) => line.slice(5).trim()).join('\n');
        if (data) yield JSON.parse(data) as GraphQLMessage<T>;
      }
    }
  } catch (error) {
    if ((error as Error).name !== 'AbortError') throw error;
  }
}
