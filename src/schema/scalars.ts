import { GraphQLError, Kind } from 'graphql';
import { builder } from './builder.js';

/** RFC 3339 date-time with offset, e.g. 2026-11-21T10:00:00.000Z. */
builder.scalarType('DateTime', {
  description: 'An RFC 3339 date-time string such as 2026-11-21T10:00:00.000Z',
  serialize: (value) => (value instanceof Date ? value : new Date(value)).toISOString(),
  parseValue: (value) => parseDateTime(value),
  parseLiteral: (ast) => {
    if (ast.kind !== Kind.STRING) throw new GraphQLError('DateTime must be a string', { extensions: { code: 'BAD_USER_INPUT' } });
    return parseDateTime(ast.value);
  },
});

function parseDateTime(value: unknown): Date {
  if (typeof value === 'string' && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(value)) {
    const date = new Date(value);
    if (!Number.isNaN(date.getTime())) return date;
  }
  throw new GraphQLError('DateTime must be an RFC 3339 string with a time zone, e.g. 2026-11-21T10:00:00Z', { extensions: { code: 'BAD_USER_INPUT' } });
}

/** A file part of a multipart request (GraphQL multipart request spec); input only. */
builder.scalarType('File', {
  description: 'A file sent as a part of a multipart request',
  serialize: () => {
    throw new GraphQLError('File is an input-only scalar');
  },
  parseValue: (value) => {
    // By shape: the multipart parser's File is a fetch-API ponyfill, not Node's own class.
    const file = value as Partial<File> | null;
    if (file && typeof file.stream === 'function' && typeof file.size === 'number') return file as File;
    throw new GraphQLError('Expected a file part of a multipart request', { extensions: { code: 'BAD_USER_INPUT' } });
  },
});
