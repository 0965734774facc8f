import type { Plugin } from '@envelop/core';
import { getOperationAST, type DocumentNode, type GraphQLSchema } from 'graphql';
import { compileQuery, isCompiledQuery, type CompiledQuery } from 'graphql-jit';

/** Documents (and compiled queries) kept at most; the least recently used go first. */
const MAX_DOCUMENTS = 1000;
/**
 * Longer document texts are not kept (they go through yoga each time): comments and whitespace are
 * not tokens, so the token limit alone would let anyone fill the cache with megabyte-long texts.
 */
const MAX_DOCUMENT_TEXT = 64 * 1024;

/**
 * Documents yoga has parsed and validated — with the schema's rules and every limit it enforces
 * (depth, cost, aliases, tokens) — by their text. The direct path below runs only these.
 */
export class ValidatedDocuments {
  private readonly byText = new Map<string, DocumentNode>();
  private readonly textOf = new WeakMap<DocumentNode, string>();

  get(text: string): DocumentNode | undefined {
    const document = this.byText.get(text);
    if (document) {
      // Most recently used last: the oldest entry is the first one dropped.
      this.byText.delete(text);
      this.byText.set(text, document);
    }
    return document;
  }

  /** The envelop plugin that records what yoga parsed and found valid. */
  plugin(): Plugin {
    return {
      onParse: ({ params }) => {
        const text = typeof params.source === 'string' && params.source.length <= MAX_DOCUMENT_TEXT ? params.source : undefined;
        return ({ result }) => {
          if (text !== undefined && result && typeof result === 'object' && 'kind' in result) this.textOf.set(result as DocumentNode, text);
        };
      },
      onValidate: ({ params }) => {
        const document = params.documentAST;
        return ({ valid }) => {
          const text = this.textOf.get(document);
          if (!valid || text === undefined) return;
          this.byText.set(text, document);
          if (this.byText.size > MAX_DOCUMENTS) this.byText.delete(this.byText.keys().next().value!);
        };
      },
    };
  }
}

export interface DirectAnswer {
  status: number;
  contentType: string;
  body: string;
}

/**
 * GraphQL over HTTP for the everyday request — a JSON POST of a query or mutation that yoga has
 * already validated once — without yoga's Fetch API layers (a Request and a Response object, a
 * plugin pipeline, streams): about a millisecond and a half less per request on a quiet server,
 * most of an instant upload's time. Same schema, same context, same compiled execution
 * (graphql-jit, as yoga runs it), same error masking, the same media type yoga would pick.
 * It answers null for anything else — a document seen for the first time or not valid, a
 * subscription, a body that is not a plain request, variables that do not fit (nothing has run
 * then), an Accept header asking for a stream — and yoga answers that, as the spec wants.
 */
export function createDirectGraphQL<C>(deps: {
  schema: GraphQLSchema;
  validated: ValidatedDocuments;
  context: (server: C) => object;
  maskError: (error: unknown) => Error;
}): (body: Buffer, accept: string | undefined, server: C) => Promise<DirectAnswer | null> {
  const compiled = new Map<string, CompiledQuery>();

  function compiledFor(text: string, operationName: string | undefined): CompiledQuery | undefined {
    // Unambiguous: an operation name is a GraphQL name (plainParams), without line breaks.
    const key = operationName === undefined ? text : `${operationName}\n${text}`;
    let query = compiled.get(key);
    if (query) {
      // Most recently used last: the oldest entry is the first one dropped.
      compiled.delete(key);
      compiled.set(key, query);
    } else {
      const document = deps.validated.get(text);
      if (!document) return undefined;
      const operation = getOperationAST(document, operationName);
      if (!operation || operation.operation === 'subscription') return undefined;
      const made = compileQuery(deps.schema, document, operationName);
      if (!isCompiledQuery(made)) return undefined;
      query = made;
      compiled.set(key, query);
      if (compiled.size > MAX_DOCUMENTS) compiled.delete(compiled.keys().next().value!);
    }
    return query;
  }

  return async (body, accept, server) => {
    const mediaType = regularMediaType(accept);
    if (!mediaType) return null;
    const params = plainParams(body);
    if (!params) return null;
    const query = compiledFor(params.query, params.operationName);
    if (!query) return null;
    try {
      const result = await query.query(undefined, deps.context(server), params.variables);
      // No data: a request error (the variables), raised before anything ran. Yoga answers it.
      if (!('data' in result)) return null;
      const errors = result.errors?.map((error) => deps.maskError(error));
      return {
        // With data, yoga answers 200 whatever the field errors (none of ours carry an HTTP status).
        status: 200,
        contentType: `${mediaType}; charset=utf-8`,
        body: JSON.stringify(errors && errors.length > 0 ? { data: result.data, errors } : { data: result.data }),
      };
    } catch (error) {
      // Not a field's error (those are in the result): something failed around the execution.
      // Masked and logged, as yoga does with an unexpected error, with its status.
      return { status: 500, contentType: `${mediaType}; charset=utf-8`, body: JSON.stringify({ errors: [deps.maskError(error)] }) };
    }
  };
}

/** A request body with exactly the parameters of a plain query or mutation, or null. */
function plainParams(body: Buffer): { query: string; operationName: string | undefined; variables: Record<string, unknown> } | null {
  let params: unknown;
  try {
    params = JSON.parse(body.toString('utf8'));
  } catch {
    return null;
  }
  if (typeof params !== 'object' || params === null || Array.isArray(params)) return null;
  const { query, operationName, variables, extensions, ...rest } = params as Record<string, unknown>;
  if (Object.keys(rest).length > 0 || typeof query !== 'string') return null;
  // A name that is no GraphQL name names no operation: yoga says so.
  if (operationName !== undefined && operationName !== null && (typeof operationName !== 'string' || !/^[_A-Za-z][_0-9A-Za-z]*$/.test(operationName))) return null;
  if (variables !== undefined && variables !== null && (typeof variables !== 'object' || Array.isArray(variables))) return null;
  if (extensions !== undefined && extensions !== null && (typeof extensions !== 'object' || Array.isArray(extensions) || Object.keys(extensions).length > 0)) return null;
  return { query, operationName: operationName ?? undefined, variables: (variables ?? {}) as Record<string, unknown> };
}

const REGULAR_MEDIA_TYPES = ['application/graphql-response+json', 'application/json'];

/**
 * The media type yoga answers a plain result with, for this Accept header: the last match of its
 * regular result processor (graphql-yoga's use-result-processor), or null when only a stream
 * processor (or none) would match — yoga answers those.
 */
export function regularMediaType(accept: string | undefined): string | null {
  const asked = (accept || '*/*')
    .replace(/\s/g, '')
    .toLowerCase()
    .split(',')
    .flatMap((entry) => {
      const [type, ...params] = entry.split(';');
      const charset = params.find((p) => p.includes('charset=')) ?? 'charset=utf-8';
      return type !== undefined && charset === 'charset=utf-8' ? [type] : [];
    })
    .reverse();
  let chosen: string | null = null;
  for (const type of asked) {
    const [pre, suf] = type.split('/');
    for (const offered of REGULAR_MEDIA_TYPES) {
      const [offeredPre, offeredSuf] = offered.split('/');
      if ((pre === '*' || pre === offeredPre) && (suf === '*' || suf === offeredSuf)) chosen = offered;
    }
  }
  return chosen;
}
