/**
 * Writes the API's schema as the web app's TypeScript sees it: web/schema.graphql (SDL, printed from
 * the Pothos schema) and web/src/lib/graphql-env.d.ts (gql.tada's introspection types). Both are
 * committed; `test/web-schema.test.ts` fails when the schema changed and they were not regenerated,
 * and the web type check (svelte-check) then fails for every document the change breaks.
 *
 * Run with `npm run web:schema`.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { lexicographicSortSchema, printSchema } from 'graphql';
import { schema } from '../../src/schema/index.js';

const web = fileURLToPath(new URL('..', import.meta.url));
writeFileSync(`${web}/schema.graphql`, `${printSchema(lexicographicSortSchema(schema))}\n`);
execFileSync(process.execPath, [fileURLToPath(new URL('../../node_modules/gql.tada/bin/cli.js', import.meta.url)), 'generate', 'output', '--tsconfig', `${web}/tsconfig.json`], { stdio: 'inherit' });
