import { fileURLToPath } from 'node:url';
import { drizzle, type PostgresJsDatabase } from 'drizzle-orm/postgres-js';
import { migrate } from 'drizzle-orm/postgres-js/migrator';
import postgres from 'postgres';
import type { Config } from '../config.js';
import { startEmbeddedPostgres } from './embedded-postgres.js';
import * as schema from './schema/index.js';
import { trackCommits } from './transaction.js';

/** drizzle over postgres.js; `$client` is the postgres.js client underneath, for the rare statement drizzle cannot send as we need. */
export type Db = PostgresJsDatabase<typeof schema> & { $client: postgres.Sql };

export interface Database {
  db: Db;
  /** The raw postgres.js client, for LISTEN/NOTIFY and the few statements drizzle cannot express. */
  sql: postgres.Sql;
  url: string;
  close(): Promise<void>;
}

const migrationsFolder = fileURLToPath(new URL('./migrations', import.meta.url));
// Any constant shared by every instance: only one of them migrates at a time.
const MIGRATION_LOCK = 7_146_301;

/** Opens the database (embedded or DATABASE_URL) and brings its schema up to date. */
export async function openDatabase(config: Pick<Config, 'database'>, log: (line: string) => void = () => {}): Promise<Database> {
  const embedded = 'embedded' in config.database ? await startEmbeddedPostgres({ dir: config.database.embedded.dir, database: 'pixshare', log }) : undefined;
  const url = embedded?.url ?? (config.database as { url: string }).url;
  const sql = postgres(url, { max: 20, onnotice: () => {}, connection: { application_name: 'pixshare' } });
  try {
    const db = trackCommits(drizzle(sql, { schema }));
    await migrateDatabase(db, sql);
    return {
      db,
      sql,
      url,
      async close() {
        await sql.end({ timeout: 5 });
        await embedded?.stop();
      },
    };
  } catch (error) {
    await sql.end({ timeout: 1 });
    await embedded?.stop();
    throw error;
  }
}

export async function migrateDatabase(db: Db, sql: postgres.Sql): Promise<void> {
  const lock = await sql.reserve();
  try {
    await lock`select pg_advisory_lock(${MIGRATION_LOCK})`;
    await migrate(db, { migrationsFolder });
  } finally {
    await lock`select pg_advisory_unlock(${MIGRATION_LOCK})`.catch(() => {});
    lock.release();
  }
}
