import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * Data flows one way: transport (http/, schema/) → services/ → db/ and storage. What the server
 * and the client share lives in protocol/. These rules are read off the import statements of
 * every file under src/, so a wrong arrow fails the test suite, not a review.
 */
const SRC = fileURLToPath(new URL('../src/', import.meta.url));

/**
 * Top-level folders of src/ a layer may not import. `root`: any file beside them; `composition`:
 * the files beside them but the leaves every server layer may read (config.ts, logger.ts) —
 * main.ts and app.ts compose everything and nothing imports them.
 */
const LEAVES = ['config', 'logger'];
const FORBIDDEN: Record<string, { not: string[]; why: string }> = {
  protocol: { not: ['services', 'db', 'schema', 'http', 'client', 'cli', 'root'], why: 'protocol/ is shared by server and client and depends on neither' },
  client: { not: ['services', 'db', 'schema', 'http', 'cli', 'root'], why: 'the client speaks the protocol like any other program: client/ and protocol/ only' },
  cli: { not: ['services', 'db', 'schema', 'http', 'root'], why: 'the command-line tool is a client: client/ and protocol/ only' },
  db: { not: ['services', 'schema', 'http', 'client', 'cli', 'composition'], why: 'db/ is below the services' },
  services: { not: ['schema', 'http', 'client', 'cli', 'composition'], why: 'services never reach up to a transport or into the client' },
  schema: { not: ['http', 'client', 'cli', 'db/client', 'composition'], why: 'the schema is a transport over the services' },
  http: { not: ['client', 'cli', 'composition'], why: 'the server does not use the client SDK, and nothing below the composition root imports it' },
};

interface ImportEdge {
  from: string;
  to: string;
  line: number;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'migrations' ? [] : sourceFiles(full);
    return /\.(ts|mts|mjs|js)$/.test(entry.name) && !entry.name.endsWith('.d.ts') ? [full] : [];
  });
}

/** Relative imports of the file (static, dynamic, re-exports, type-only alike), as paths relative to src/. */
function relativeImports(file: string, text: string): ImportEdge[] {
  const edges: ImportEdge[] = [];
  const pattern = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])(\.{1,2}\/[^'"]+)\1/g;
  for (const match of text.matchAll(pattern)) {
    const target = path.relative(SRC, path.resolve(path.dirname(file), match[2]!));
    edges.push({ from: path.relative(SRC, file), to: target, line: text.slice(0, match.index).split('\n').length });
  }
  return edges;
}

/** The layer a path under src/ belongs to: its first folder, or `root` for the files beside them (app.ts, main.ts, config.ts). */
function layerOf(relative: string): string {
  return relative.includes(path.sep) ? relative.split(path.sep)[0]! : 'root';
}

function violations(edges: ImportEdge[]): string[] {
  return edges.flatMap((edge) => {
    const rule = FORBIDDEN[layerOf(edge.from)];
    if (!rule) return [];
    const target = edge.to.replace(/\.(js|ts)$/, '');
    const hit = rule.not.find((layer) => {
      if (layer === 'root') return layerOf(edge.to) === 'root';
      if (layer === 'composition') return layerOf(edge.to) === 'root' && !LEAVES.includes(target);
      return target === layer || target.startsWith(`${layer}${path.sep}`);
    });
    return hit ? [`src/${edge.from}:${edge.line} imports src/${edge.to} (${rule.why})`] : [];
  });
}

describe('layering', () => {
  const edges = sourceFiles(SRC).flatMap((file) => relativeImports(file, readFileSync(file, 'utf8')));

  it('reads the imports of the whole tree', () => {
    // A broken pattern would find nothing and let everything through.
    expect(edges.length).toBeGreaterThan(100);
    expect(edges.some((e) => e.from.startsWith(`services${path.sep}`) && e.to.startsWith(`db${path.sep}`))).toBe(true);
  });

  it('has every arrow pointing down: transport → services → db / storage; the client apart', () => {
    expect(violations(edges)).toEqual([]);
  });

  it('catches each kind of wrong arrow', () => {
    const fake = (from: string, text: string) => violations(relativeImports(path.join(SRC, from), text));
    expect(fake('services/library/library-service.ts', "import { schema } from '../../schema/index.js';")).toHaveLength(1);
    expect(fake('services/uploads/check-uploads.ts', "import type { X } from '../../http/server.js';")).toHaveLength(1);
    expect(fake('services/uploads/upload-service.ts', "const m = await import('../../client/upload-file.js');")).toHaveLength(1);
    expect(fake('db/client.ts', "export { x } from '../services/events.js';")).toHaveLength(1);
    expect(fake('client/upload-file.ts', "import { AppError } from '../services/app-error.js';")).toHaveLength(1);
    expect(fake('client/upload-file.ts', "import type { Config } from '../config.js';")).toHaveLength(1);
    expect(fake('protocol/byte-ranges.ts', "import '../services/ids.js';")).toHaveLength(1);
    expect(fake('client/upload-file.ts', "import { proofOfPossession } from '../protocol/proof-of-possession.js';")).toEqual([]);
    expect(fake('services/blobs.ts', "import { assets } from '../db/schema/index.js';")).toEqual([]);
    expect(fake('services/blobs.ts', "import type { App } from '../app.js';")).toHaveLength(1);
    expect(fake('http/server.ts', "import { startApp } from '../app.js';")).toHaveLength(1);
    expect(fake('services/blobs.ts', "import type { Config } from '../config.js';")).toEqual([]);
    expect(fake('db/client.ts', "import type { Logger } from '../logger.js';")).toEqual([]);
  });
});
