import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { ApiError, type ApiClient } from './api-client.js';

/**
 * graphql-ws to the server the API client talks to, for programs that stay connected (`status
 * --follow`, the agent): the address built as the API client builds its own (a server under a
 * path keeps it), the device token sent when connecting, and a connection that drops opened again
 * — the server may restart or the network change — up to a minute apart, until the server refuses
 * the token (graphql-ws closes with 4401/4403) or `signal` aborts.
 */
export interface LiveClient {
  client: Client;
  /** The server refused the token: the caller should stop and say so. */
  readonly refused: boolean;
  dispose(): Promise<void>;
}

export function openLive(api: ApiClient, signal: AbortSignal, on: { connected?(): void } = {}): LiveClient {
  const url = new URL(`${api.baseUrl}/graphql`);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  let refused = false;
  const client = createClient({
    url: url.href,
    webSocketImpl: WebSocket,
    connectionParams: api.token ? { authorization: `Bearer ${api.token}` } : {},
    lazy: false,
    retryAttempts: Number.MAX_SAFE_INTEGER,
    retryWait: async (retries) => new Promise((resolve) => setTimeout(resolve, Math.min(60_000, 1000 * 2 ** Math.min(retries, 6)))),
    shouldRetry: () => !refused && !signal.aborted,
    on: {
      connected: () => on.connected?.(),
      closed: (event) => {
        const code = (event as { code?: number }).code;
        if (code === 4401 || code === 4403) refused = true;
      },
    },
  });
  return {
    client,
    get refused() {
      return refused;
    },
    dispose: () => client.dispose() as Promise<void>,
  };
}

/**
 * A subscription's data, message by message; a GraphQL error in a message, or the list graphql-ws
 * throws for a refused subscription, becomes an ApiError with the server's code. Ends when
 * `signal` aborts.
 */
export async function* subscriptionData<T>(live: LiveClient, request: { query: string; variables?: Record<string, unknown> }, signal: AbortSignal): AsyncGenerator<T> {
  const messages = live.client.iterate<T>(request);
  const stop = () => void messages.return?.(undefined);
  signal.addEventListener('abort', stop, { once: true });
  try {
    for await (const message of messages) {
      if (message.errors?.length) {
        const error = message.errors[0]!;
        throw new ApiError(String(error.extensions?.code ?? 'UNKNOWN'), error.message);
      }
      if (message.data) yield message.data;
    }
  } catch (error) {
    if (signal.aborted) return;
    const first = Array.isArray(error) ? (error[0] as { message?: string; extensions?: { code?: string } } | undefined) : undefined;
    if (first) throw new ApiError(String(first.extensions?.code ?? 'UNKNOWN'), first.message ?? 'subscription failed');
    throw error;
  } finally {
    signal.removeEventListener('abort', stop);
  }
}
