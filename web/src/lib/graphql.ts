import { print } from '@0no-co/graphql.web';
import { initGraphQLTada, type TadaDocumentNode } from 'gql.tada';
import type { introspection } from './graphql-env.d.ts';

/**
 * GraphQL documents typed against the API's schema (web/schema.graphql, `npm run web:schema`):
 * a document that no longer matches the schema fails the type check.
 */
export const graphql = initGraphQLTada<{ introspection: introspection; scalars: { DateTime: string; File: File } }>();
export type { ResultOf, VariablesOf } from 'gql.tada';

/** An error the API answered with: its stable code (NOT_FOUND, SHARE_EXPIRED, …) and message. */
export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Runs a query or mutation over HTTP (the session cookie goes along). */
export async function request<Result, Variables>(document: TadaDocumentNode<Result, Variables>, variables: Variables, signal?: AbortSignal): Promise<Result> {
  let response: Response;
  try {
    response = await fetch('/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
      credentials: 'same-origin',
      body: JSON.stringify({ query: print(document), variables }),
      signal,
    });
  } catch (error) {
    if ((error as Error).name === 'AbortError') throw error;
    throw new ApiError('NETWORK', 'The server could not be reached. Check your connection and try again.');
  }
  let body: { data?: Result | null; errors?: { message: string; extensions?: { code?: string } }[] };
  try {
    body = (await response.json()) as typeof body;
  } catch {
    throw new ApiError('BAD_RESPONSE', `The server answered ${response.status} without a readable body.`);
  }
  const error = body.errors?.[0];
  if (error) throw new ApiError(error.extensions?.code ?? 'ERROR', error.message);
  if (!body.data) throw new ApiError('BAD_RESPONSE', 'The server answered without data.');
  return body.data;
}
