import type { Plugin } from 'graphql-yoga';
import type { Config } from './config.js';
import { openDatabase, type Database } from './db/client.js';
import { createAssetFilesRoute } from './http/asset-files.js';
import { createBlobDownloadHandler } from './http/blob-download.js';
import { createAuthenticator } from './http/credentials.js';
import { createGraphQLServer, type GraphQLServer } from './http/graphql.js';
import type { Logger } from './logger.js';
import type { GraphQLContext } from './schema/context.js';
import { startHttpServer, type HttpServer } from './http/server.js';
import { createSharedFilesRoute } from './http/shared-files.js';
import { createUploadChunkRoute } from './http/upload-chunk.js';
import { createWebRoute } from './http/web.js';
import { Housekeeping } from './services/housekeeping.js';
import { createServices, type Services } from './services/index.js';
import { endExifTool } from './services/media/exiftool.js';
import { JobQueue } from './services/jobs/job-queue.js';
import { Mailer } from './services/mail/mailer.js';
import { createPubSub, type PubSub } from './services/pubsub.js';
import type { BlobStore, BlobStoreSettings } from './services/storage/blob-store.js';
import { createBlobStore } from './services/storage/create-blob-store.js';

export interface App {
  config: Config;
  url: string;
  database: Database;
  storage: BlobStore;
  services: Services;
  mailer: Mailer;
  jobs: JobQueue;
  /** The event bus under services.events (LISTEN/NOTIFY). */
  pubsub: PubSub;
  graphql: GraphQLServer;
  http: HttpServer;
  housekeeping: Housekeeping;
  /** Graceful: stops accepting, lets in-flight requests finish, then closes storage and database. */
  close(): Promise<void>;
}

export function blobStoreSettings(config: Config): BlobStoreSettings {
  return config.storage.driver === 'fs'
    ? { driver: 'fs', root: config.storage.root, publicBaseUrl: config.publicUrl, signingSecret: config.secret }
    : config.storage;
}

/** The composition root: config → database (+ migrations) → storage → services → HTTP, GraphQL and WebSocket. */
export interface AppOptions {
  /** GraphQL plugins added to the one pipeline (see http/graphql.ts). */
  graphqlPlugins?: Plugin<GraphQLContext>[];
}

export async function startApp(config: Config, log: Logger, options: AppOptions = {}): Promise<App> {
  const cleanups: (() => Promise<void>)[] = [];
  const close = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch((error: unknown) => log.error('error while shutting down', error));
  };
  try {
    const database = await openDatabase(config, (line) => log.info(line));
    cleanups.push(() => database.close());
    const storage = createBlobStore(blobStoreSettings(config));
    cleanups.push(() => storage.close());
    await storage.checkReady();
    const pubsub = createPubSub({ redisUrl: config.redisUrl, sql: database.sql, log });
    await pubsub.start();
    cleanups.push(() => pubsub.close());

    const mailer = new Mailer({ config, log });
    cleanups.push(async () => mailer.close());
    const jobs = new JobQueue({ databaseUrl: database.url, config, log });
    const services = createServices({ db: database.db, storage, pubsub, jobs, mailer, config, log });
    // Handlers are registered by createServices; the queue starts once they are all there.
    await jobs.start();
    cleanups.push(() => jobs.stop());
    cleanups.push(() => endExifTool());
    // Files stored without their processing queued (before an upgrade, or a restored database).
    await services.media.queuePending();
    cleanups.push(async () => services.devices.close());
    const housekeeping = new Housekeeping({ uploads: services.uploads, blobs: services.blobs, library: services.library, intervalSeconds: config.uploads.housekeepingSeconds, log });
    housekeeping.start();
    cleanups.push(() => housekeeping.stop());

    const graphql = createGraphQLServer({ config, services, log, plugins: options.graphqlPlugins });
    const authenticate = createAuthenticator({ config, devices: services.devices });
    const routes = [
      createUploadChunkRoute({ services, authenticate }),
      createAssetFilesRoute({ services, storage, authenticate }),
      createSharedFilesRoute({ services, storage }),
      createWebRoute({ config, services }),
    ];
    if (config.storage.driver === 'fs') routes.unshift(createBlobDownloadHandler({ store: storage, signingSecret: config.secret }));
    const http = await startHttpServer({ config, services, graphql, routes, authenticate, log });
    cleanups.push(() => http.close());

    return { config, url: http.url, database, storage, services, mailer, jobs, pubsub, graphql, http, housekeeping, close };
  } catch (error) {
    await close();
    throw error;
  }
}
