import type { Config } from './config.js';
import { openDatabase, type Database } from './db/client.js';
import { createAssetFilesRoute } from './http/asset-files.js';
import { createBlobDownloadHandler } from './http/blob-download.js';
import { createAuthenticator } from './http/credentials.js';
import { createGraphQLServer, type GraphQLServer } from './http/graphql.js';
import type { Logger } from './logger.js';
import { startHttpServer, type HttpServer } from './http/server.js';
import { createUploadChunkRoute } from './http/upload-chunk.js';
import { createWebRoute } from './http/web.js';
import type { Services } from './schema/context.js';
import { AccountService } from './services/accounts.js';
import { BlobService } from './services/blobs.js';
import { DeviceService } from './services/devices.js';
import { Housekeeping } from './services/housekeeping.js';
import { LibraryService } from './services/library.js';
import { PubSub } from './services/pubsub.js';
import { UploadService } from './services/uploads.js';
import type { BlobStore, BlobStoreSettings } from './services/storage/blob-store.js';
import { createBlobStore } from './services/storage/create-blob-store.js';

export interface App {
  config: Config;
  url: string;
  database: Database;
  storage: BlobStore;
  services: Services;
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
export async function startApp(config: Config, log: Logger): Promise<App> {
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
    const pubsub = new PubSub(database.sql);
    await pubsub.start();
    cleanups.push(() => pubsub.close());

    const db = database.db;
    const devices = new DeviceService({ db, pubsub, config });
    cleanups.push(async () => devices.close());
    const accounts = new AccountService({ db, config, devices });
    const blobs = new BlobService({ db, storage, config, log });
    const library = new LibraryService({ db, pubsub, config });
    const uploads = new UploadService({ db, storage, blobs, library, pubsub, config });
    const services: Services = { accounts, devices, blobs, library, uploads, pubsub };
    const housekeeping = new Housekeeping({ uploads, blobs, intervalSeconds: config.uploads.housekeepingSeconds, log });
    housekeeping.start();
    cleanups.push(() => housekeeping.stop());

    const graphql = createGraphQLServer({ config, services, log });
    const authenticate = createAuthenticator({ config, devices });
    const routes = [createUploadChunkRoute({ services, authenticate }), createAssetFilesRoute({ services, storage, authenticate }), createWebRoute()];
    if (config.storage.driver === 'fs') routes.unshift(createBlobDownloadHandler({ store: storage, signingSecret: config.secret }));
    const http = await startHttpServer({ config, services, graphql, routes, authenticate, log });
    cleanups.push(() => http.close());

    return { config, url: http.url, database, storage, services, graphql, http, housekeeping, close };
  } catch (error) {
    await close();
    throw error;
  }
}
