import { useGraphQlJit } from '@envelop/graphql-jit';
import { costLimitPlugin } from '@escape.tech/graphql-armor-cost-limit';
import { maxAliasesPlugin } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthPlugin } from '@escape.tech/graphql-armor-max-depth';
import { maxTokensPlugin } from '@escape.tech/graphql-armor-max-tokens';
import { createSourceEventStream, execute, GraphQLError, Kind, print, type DocumentNode, type ExecutionArgs, type ExecutionResult, type ValidationContext } from 'graphql';
import { createYoga, isAsyncIterable, type GraphiQLOptions, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import DataLoader from 'dataloader';
import type { AssetRow } from '../db/schema/index.js';
import type { GraphQLContext, Loaders } from '../schema/context.js';
import type { Services } from '../services/index.js';
import { schema } from '../schema/index.js';
import { AppError } from '../services/app-error.js';
import type { Viewer } from '../services/devices.js';
import type { RequestOrigin } from '../services/request-origin.js';

/** What the transport (HTTP handler or WebSocket) knows before GraphQL runs. */
export interface ServerContext {
  viewer: Viewer | null;
  origin: RequestOrigin;
  /** Set-Cookie values the HTTP handler adds to the response. */
  responseCookies: (string | null)[];
}

/**
 * The one GraphQL pipeline: every request — HTTP (JSON, GET, multipart), SSE and graphql-ws —
 * passes through this yoga instance and its envelop plugins (WebSocket through getEnveloped), so a
 * limit, a check or tracing added as a plugin holds on every transport.
 */
export interface GraphQLServer {
  yoga: YogaServerInstance<ServerContext, GraphQLContext>;
}


interface GraphQLErrorLike extends Error {
  originalError?: unknown;
  path?: readonly (string | number)[];
  nodes?: GraphQLError['nodes'];
  extensions?: Record<string, unknown>;
}

/**
 * By shape, not instanceof: graphql may be loaded twice (its CommonJS and ESM
 * builds) by the libraries around it, and an error from one copy is not an
 * instance of the other's class.
 */
function isGraphQLErrorLike(error: unknown): error is GraphQLErrorLike {
  return error instanceof Error && error.name === 'GraphQLError';
}

/** Turns every error into one with a stable `extensions.code`; anything unexpected is logged and masked. */
export function maskError(log: Logger) {
  return (error: unknown): Error => {
    const located = isGraphQLErrorLike(error) ? error : undefined;
    const original = located?.originalError ?? error;
    const path = located?.path;
    if (original instanceof AppError) {
      return new GraphQLError(original.message, { path, extensions: { code: original.code, ...original.details } });
    }
    if (isGraphQLErrorLike(original) && (original.originalError === undefined || isGraphQLErrorLike(original.originalError))) {
      // Parse, validation and limit errors from GraphQL itself: keep the message, make sure there is a code.
      const code = typeof original.extensions?.code === 'string' ? original.extensions.code : 'GRAPHQL_VALIDATION_FAILED';
      return new GraphQLError(original.message, { path, nodes: original.nodes, extensions: { ...original.extensions, code } });
    }
    log.error('unexpected error while executing GraphQL', original);
    return new GraphQLError('Unexpected error.', { path, extensions: { code: 'INTERNAL_SERVER_ERROR' } });
  };
}

/**
 * graphql-armor reports limits as plain "Syntax Error"s; we report them with our own codes. During
 * validation the error is reported and validation goes on; the token limit strikes while parsing
 * (no validation context), where only throwing stops the parse.
 */
function reject(code: string) {
  return (context: ValidationContext | null, error: GraphQLError) => {
    const limited = new GraphQLError(error.message.replace(/^Syntax Error: /, ''), { extensions: { code } });
    if (!context) throw limited;
    context.reportError(limited);
  };
}

function createLoaders(services: Services, viewer: Viewer | null): Loaders {
  return {
    asset: new DataLoader<string, AssetRow>(async (ids: readonly string[]) => {
      if (!viewer) return ids.map(() => new AppError('UNAUTHENTICATED', 'Sign in first'));
      const found = new Map((await services.library.getAssetsByIds(viewer, ids)).map((a) => [a.id, a]));
      return ids.map((id) => found.get(id) ?? new AppError('NOT_FOUND', 'No such asset'));
    }),
  };
}

/**
 * How an open subscription ends, the same over graphql-ws and SSE: with the session that opened it
 * (the device revoked or signed out, on any instance: a last UNAUTHENTICATED error), and, when the
 * state it follows can no longer be read (the folder went, say), with a last message carrying that
 * error's code — not a broken stream.
 */
function endWithTheSession(services: Services, mask: (error: unknown) => Error): Plugin<GraphQLContext> {
  return {
    onSubscribe({ args }) {
      const viewer = args.contextValue.viewer;
      return {
        onSubscribeResult({ result, setResult }) {
          if (!isAsyncIterable(result)) return;
          const whenRevoked = viewer ? (ended: () => void) => services.devices.whenRevoked(viewer.device.id, ended) : () => () => {};
          setResult(untilEnded(result as AsyncIterable<ExecutionResult>, whenRevoked, mask));
        },
      };
    },
  };
}

/**
 * One execution of a subscription event for every subscriber that asked the same thing: when a
 * service hands the same event object to many subscriptions (the subscribers of one folder that
 * are at the same place, see LiveFolder.messageSince), each document, variables and user is
 * executed once for it and the result shared; each transport still sends it to each subscriber.
 * The user is part of the key, so nothing resolved for one account reaches another. Events that
 * are not shared cost one lookup in a WeakMap.
 */
function shareEventExecutions(): Plugin<GraphQLContext> {
  const results = new WeakMap<object, Map<string, PromiseLike<ExecutionResult> | ExecutionResult>>();
  const documents = new WeakMap<DocumentNode, string>();
  const keyOf = (args: ExecutionArgs) => {
    let document = documents.get(args.document);
    if (document === undefined) documents.set(args.document, (document = print(args.document)));
    const viewer = (args.contextValue as GraphQLContext).viewer;
    return `${viewer?.user.id ?? '-'}\n${args.operationName ?? ''}\n${JSON.stringify(args.variableValues ?? {})}\n${document}`;
  };
  return {
    onSubscribe({ setSubscribeFn }) {
      setSubscribeFn(async (args) => {
        const stream = await createSourceEventStream(args);
        if (!isAsyncIterable(stream)) return stream as ExecutionResult;
        const key = keyOf(args);
        return mapAsyncIterable(stream as AsyncIterable<unknown>, (payload) => {
          if (payload === null || typeof payload !== 'object') return execute({ ...args, rootValue: payload });
          let byKey = results.get(payload);
          if (!byKey) results.set(payload, (byKey = new Map()));
          let result = byKey.get(key);
          if (!result) byKey.set(key, (result = execute({ ...args, rootValue: payload })));
          return result;
        });
      });
    },
  };
}

/** `source` with each value mapped; return() reaches the source. */
function mapAsyncIterable<T, R>(source: AsyncIterable<T>, map: (value: T) => PromiseLike<R> | R): AsyncIterableIterator<R> {
  const inner = source[Symbol.asyncIterator]();
  const iterator: AsyncIterableIterator<R> = {
    async next() {
      const next = await inner.next();
      return next.done ? { value: undefined, done: true } : { value: await map(next.value), done: false };
    },
    async return() {
      await inner.return?.();
      return { value: undefined, done: true };
    },
    async throw(error: unknown) {
      if (inner.throw) {
        const next = await inner.throw(error);
        return next.done ? { value: undefined, done: true } : { value: await map(next.value), done: false };
      }
      throw error;
    },
    [Symbol.asyncIterator]: () => iterator,
  };
  return iterator;
}

function untilEnded(source: AsyncIterable<ExecutionResult>, whenRevoked: (ended: () => void) => () => void, mask: (error: unknown) => Error): AsyncIterableIterator<ExecutionResult> {
  const inner = source[Symbol.asyncIterator]();
  let revoked = false;
  let finished = false;
  let wake: (() => void) | undefined;
  const stop = whenRevoked(() => {
    revoked = true;
    wake?.();
  });
  const end = async () => {
    finished = true;
    stop();
    await inner.return?.();
  };
  const iterator: AsyncIterableIterator<ExecutionResult> = {
    async next() {
      if (finished) return { value: undefined, done: true };
      if (!revoked) {
        const nextResult = inner.next();
        const signedOut = new Promise<'revoked'>((resolve) => (wake = () => resolve('revoked')));
        let first: IteratorResult<ExecutionResult> | 'revoked';
        try {
          first = await Promise.race([nextResult, signedOut]);
        } catch (error) {
          await end();
          return { value: { errors: [mask(error) as GraphQLError] }, done: false };
        } finally {
          wake = undefined;
        }
        if (first !== 'revoked') {
          if (first.done) await end();
          return first;
        }
        nextResult.catch(() => {});
      }
      await end();
      const error = new GraphQLError('The session ended: this device was signed out or revoked', { extensions: { code: 'UNAUTHENTICATED' } });
      return { value: { errors: [error] }, done: false };
    },
    async return() {
      await end();
      return { value: undefined, done: true };
    },
    [Symbol.asyncIterator]: () => iterator,
  };
  return iterator;
}

let graphiqlPage: Promise<string> | undefined;
/**
 * GraphiQL's page with its scripts inlined (a self-hosted server may have no route to a CDN).
 * The bundle is 9 MB of JavaScript: loaded on the first visit, not at start-up, and rendered once.
 */
function renderGraphiQLOffline(options: GraphiQLOptions): Promise<string> {
  graphiqlPage ??= import('@graphql-yoga/render-graphiql').then(({ renderGraphiQL }) => renderGraphiQL(options));
  return graphiqlPage;
}

export function createGraphQLServer(deps: {
  config: Config;
  services: Services;
  log: Logger;
  /** More plugins, after ours (tracing, a probe in tests): they see every request on every transport. */
  plugins?: Plugin<GraphQLContext>[];
}): GraphQLServer {
  const { limits } = deps.config;
  const masked = maskError(deps.log);
  const contextFor = ({ viewer, origin, responseCookies }: ServerContext): GraphQLContext => ({
    services: deps.services,
    viewer,
    origin,
    loaders: createLoaders(deps.services, viewer),
    publicUrl: deps.config.publicUrl,
    setSessionCookie: (token) => void responseCookies.push(token),
  });
  const yoga = createYoga<ServerContext, GraphQLContext>({
    schema,
    graphqlEndpoint: '/graphql',
    landingPage: false,
    graphiql: deps.config.graphiql ? { subscriptionsProtocol: 'WS', title: 'pixshare GraphiQL' } : false,
    renderGraphiQL: renderGraphiQLOffline,
    batching: false,
    // The HTTP server limits bodies itself (before reading them, and per transport): yoga's own
    // limit would pass every body through one more stream.
    maxRequestBodySize: false,
    // commitChunk takes its chunk as a multipart file (the body limit is raised for multipart in http/server.ts).
    multipart: true,
    logging: false,
    maskedErrors: { maskError: masked },
    context: contextFor,
    plugins: [
      // Compiles each query and mutation once (cached by document): big batches such as a
      // 5,000-file check spend far less time in per-field execution. Subscriptions keep the
      // reference executor: compiled, our subscription fields with arguments failed with an internal error.
      useGraphQlJit({}, { enableIf: (args) => !args.document.definitions.some((d) => d.kind === Kind.OPERATION_DEFINITION && d.operation === 'subscription') }),
      maxDepthPlugin({ n: limits.maxQueryDepth, propagateOnRejection: false, onReject: [reject('QUERY_TOO_DEEP')] }),
      costLimitPlugin({ maxCost: limits.maxQueryCost, propagateOnRejection: false, onReject: [reject('QUERY_TOO_COMPLEX')] }),
      maxAliasesPlugin({ n: limits.maxAliases, propagateOnRejection: false, onReject: [reject('TOO_MANY_ALIASES')] }),
      maxTokensPlugin({ n: limits.maxTokens, propagateOnRejection: false, onReject: [reject('QUERY_TOO_LARGE')] }),
      shareEventExecutions(),
      endWithTheSession(deps.services, masked),
      ...(deps.plugins ?? []),
    ],
  });
  return { yoga };
}
