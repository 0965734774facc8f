import SchemaBuilder from '@pothos/core';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import ValidationPlugin from '@pothos/plugin-validation';
import { AppError } from '../services/app-error.js';
import type { GraphQLContext } from './context.js';

/**
 * The schema builder and its plugins; no types are defined here.
 * - scope-auth: a second fence at the schema edge (services check access first);
 *   `authorizeOnSubscribe` refuses a subscription when it is created.
 * - validation: inputs are checked with zod at the edge, so a bad value is a
 *   BAD_USER_INPUT naming the field before any service runs.
 * Domain errors are thrown as AppError and become `extensions.code` (see
 * http/graphql.ts), the same codes the HTTP routes answer with.
 */
export const builder = new SchemaBuilder<{
  Context: GraphQLContext;
  AuthScopes: { signedIn: boolean };
  DefaultFieldNullability: false;
  DefaultInputFieldRequiredness: true;
  Scalars: {
    DateTime: { Input: Date; Output: Date | string };
    File: { Input: File; Output: never };
  };
}>({
  plugins: [ScopeAuthPlugin, ValidationPlugin],
  defaultFieldNullability: false,
  defaultInputFieldRequiredness: true,
  scopeAuth: {
    authorizeOnSubscribe: true,
    authScopes: (context) => ({ signedIn: context.viewer !== null }),
    unauthorizedError: (_parent, context) =>
      context.viewer ? new AppError('FORBIDDEN', 'Not allowed') : new AppError('UNAUTHENTICATED', 'Sign in first'),
  },
  validation: {
    validationError: (result) => {
      const issue = result.issues[0];
      const field = issue?.path?.map((p) => (typeof p === 'object' ? p.key : p)).join('.');
      return new AppError('BAD_USER_INPUT', issue?.message ?? 'Invalid input', field ? { field } : {});
    },
  },
});

builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});
