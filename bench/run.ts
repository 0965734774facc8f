/**
 * `npm run bench -- <name>` runs bench/<name>.ts: its exported `run()` prints human-readable
 * figures and, as the very last line, one JSON object for machines (CI, trend tracking).
 */
import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const benchDir = fileURLToPath(new URL('.', import.meta.url));
const available = (await readdir(benchDir))
  .filter((file) => file.endsWith('.ts') && file !== 'run.ts')
  .map((file) => file.slice(0, -'.ts'.length))
  .sort();

const name = process.argv[2];
if (!name || !available.includes(name)) {
  console.error(`${name ? `Unknown benchmark "${name}". ` : ''}Usage: npm run bench -- <name>`);
  console.error(`Available: ${available.join(', ') || '(none)'}`);
  process.exit(1);
}

const bench = (await import(`./${name}.ts`)) as { run?: () => Promise<void> };
if (typeof bench.run !== 'function') {
  console.error(`bench/${name}.ts does not export run()`);
  process.exit(1);
}
await bench.run();
// A benchmark that forgets a socket or timer must not hang the runner (or CI).
process.exit(0);
