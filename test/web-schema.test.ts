import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { costLimitRule } from '@escape.tech/graphql-armor-cost-limit';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import { buildSchema, lexicographicSortSchema, parse, printSchema, specifiedRules, validate } from 'graphql';
import { loadConfig } from '../src/config.js';
import { describe, expect, it } from 'vitest';
import { schema } from '../src/schema/index.js';

const web = fileURLToPath(new URL('../web', import.meta.url));

async function sources(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile() && /\.(ts|svelte)$/.test(e.name) && !e.name.endsWith('.d.ts')).map((e) => path.join(e.parentPath, e.name));
}

/** The documents of `graphql(`…`)` calls in a source file. */
function documentsIn(text: string): string[] {
  return [...text.matchAll(/\bgraphql\(\s*`([^`]*)`/g)].map((m) => m[1]!);
}

describe('the web app against the API schema', () => {
  it('holds the current schema (run `npm run web:schema` after changing the API)', async () => {
    const committed = await readFile(path.join(web, 'schema.graphql'), 'utf8');
    expect(committed).toBe(`${printSchema(lexicographicSortSchema(schema))}\n`);
  });

  it("asks only for what the schema has, within the server's limits: every document of the app validates", async () => {
    const api = buildSchema(await readFile(path.join(web, 'schema.graphql'), 'utf8'));
    // The limits a default server applies (a document over them would be refused with QUERY_TOO_COMPLEX or QUERY_TOO_DEEP).
    const { limits } = loadConfig({ PIXSHARE_SECRET: 'x'.repeat(40) });
    const rules = [...specifiedRules, costLimitRule({ maxCost: limits.maxQueryCost }), maxDepthRule({ n: limits.maxQueryDepth })];
    const files = await sources(path.join(web, 'src'));
    let documents = 0;
    for (const file of files) {
      for (const source of documentsIn(await readFile(file, 'utf8'))) {
        documents++;
        const errors = validate(api, parse(source), rules).map((e) => e.message);
        expect(errors, `${path.relative(web, file)}: ${source.trim().split('\n')[0]}`).toEqual([]);
      }
    }
    expect(documents).toBeGreaterThan(0);
  });
});
