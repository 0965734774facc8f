import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { drizzle } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import type { TestProject } from 'vitest/node';
import { migrateDatabase } from '../../src/db/client.js';
import { startEmbeddedPostgres } from '../../src/db/embedded-postgres.js';
import * as schema from '../../src/db/schema/index.js';

export const TEMPLATE_DATABASE = 'pixshare_template';

declare module 'vitest' {
  export interface ProvidedContext {
    /** URL of the migrated template database; test files clone it. */
    templateDatabaseUrl: string;
  }
}

/**
 * Starts one embedded PostgreSQL for the whole run (or uses TEST_DATABASE_URL, e.g.
 * the machine's own PostgreSQL in CI's second pass) and migrates a template database.
 */
export default async function setup(project: TestProject) {
  let stop = async () => {};
  let adminUrl = process.env.TEST_DATABASE_URL;
  let dir: string | undefined;
  if (!adminUrl) {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pixshare-test-pg-'));
    await fs.chmod(dir, 0o755); // when run as root, PostgreSQL runs as the postgres user and must reach its directory
    const embedded = await startEmbeddedPostgres({ dir: path.join(dir, 'pg'), database: 'postgres' });
    adminUrl = embedded.url;
    stop = embedded.stop;
  }
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`drop database if exists ${TEMPLATE_DATABASE} with (force)`);
  await admin.unsafe(`create database ${TEMPLATE_DATABASE}`);
  const templateUrl = withDatabase(adminUrl, TEMPLATE_DATABASE);
  const sql = postgres(templateUrl, { max: 2, onnotice: () => {} });
  await migrateDatabase(drizzle(sql, { schema }), sql);
  await sql.end();
  await admin.end();
  project.provide('templateDatabaseUrl', templateUrl);

  return async () => {
    await stop();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  };
}

export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}
