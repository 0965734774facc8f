import { ConfigError, loadConfig, type Config } from './config.js';
import type { Logger } from './logger.js';

// A server started with `npm start` runs in production mode unless told otherwise: graphql-js
// skips its development-only checks (a third of the time of a large check request).
process.env.NODE_ENV ??= 'production';
const { startApp } = await import('./app.js');
const { ensureWebBuild } = await import('./http/web-build.js');

const log: Logger = {
  info: (message) => console.log(`[pixshare] ${message}`),
  error: (message, error) => console.error(`[pixshare] ${message}`, error ?? ''),
};

let config: Config;
try {
  config = loadConfig();
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(`[pixshare] ${error.message}`);
    process.exit(78); // EX_CONFIG
  }
  throw error;
}

// The web app is built before the server starts when its build is missing or stale.
await ensureWebBuild(log);

const app = await startApp(config, log).catch((error: unknown) => {
  console.error(`[pixshare] could not start: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});

const storage = config.storage.driver === 'fs' ? `files under ${config.storage.root}` : `S3 bucket ${config.storage.bucket}${config.storage.endpoint ? ` at ${config.storage.endpoint}` : ''}`;
const database = 'embedded' in config.database ? `embedded PostgreSQL under ${config.database.embedded.dir}` : 'PostgreSQL at DATABASE_URL';
log.info(`data directory: ${config.dataDir}`);
log.info(`database: ${database}`);
log.info(`storage: ${storage}`);
log.info(`live events: ${config.redisUrl ? 'Redis at REDIS_URL' : 'PostgreSQL LISTEN/NOTIFY'}`);
log.info(`mail: ${app.mailer.describe()}`);
log.info(`listening on ${config.host}:${app.http.port}`);
log.info(`web:      ${config.publicUrl}/`);
log.info(`GraphQL:  ${config.publicUrl}/graphql${config.graphiql ? ' (GraphiQL in the browser)' : ''}`);
log.info(`WebSocket: ${config.publicUrl.replace(/^http/, 'ws')}/graphql (graphql-transport-ws)`);

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) {
      log.info('second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info(`${signal}: finishing requests in flight, then stopping`);
    app.close().then(
      () => {
        log.info('stopped');
        process.exit(0);
      },
      (error: unknown) => {
        log.error('error while stopping', error);
        process.exit(1);
      },
    );
  });
}
