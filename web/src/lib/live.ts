import { print } from '@0no-co/graphql.web';
import type { TadaDocumentNode } from 'gql.tada';
import { createClient, type Client } from 'graphql-ws';
import { ApiError } from './graphql.js';

let client: Client | undefined;

/** The one WebSocket of the page (graphql-ws; the session cookie goes with it), opened on first use and reconnecting by itself. */
function socket(): Client {
  client ??= createClient({
    url: `${window.location.protocol === 'https:' ? 'wss' : 'ws'}://${window.location.host}/graphql`,
    lazy: true,
    retryAttempts: Infinity,
    shouldRetry: () => true,
  });
  return client;
}

/**
 * Follows a subscription: `onData` with every message (the whole state first, and again after a
 * reconnection), `onError` once if it ends with an error. Returns the function that stops it.
 */
export function subscribe<Result, Variables>(
  document: TadaDocumentNode<Result, Variables>,
  variables: Variables,
  handlers: { onData: (data: Result) => void; onError?: (error: ApiError) => void },
): () => void {
  return socket().subscribe<Result>(
    { query: print(document), variables: variables as Record<string, unknown> },
    {
      next: (message) => {
        const error = message.errors?.[0];
        if (error) handlers.onError?.(new ApiError(String(error.extensions?.code ?? 'ERROR'), error.message));
        else if (message.data) handlers.onData(message.data);
      },
      error: () => handlers.onError?.(new ApiError('NETWORK', 'The live connection to the server was lost.')),
      complete: () => {},
    },
  );
}
