import type { Config } from './config.js';
import { openDatabase, type Database } from './db/client.js';
import { createBlobDownloadHandler } from './http/blob-download.js';
import { createGraphQLServer, type Logger } from './http/graphql.js';
import { startHttpServer, type HttpServer } from './http/server.js';
import { createWebRoute } from './http/web.js';
import type { Services } from './schema/context.js';
import { AccountService } from './services/accounts.js';
import { DeviceService } from './services/devices.js';
import { PubSub } from './services/pubsub.js';
import type { BlobStore, BlobStoreSettings } from './services/storage/blob-store.js';
import { createBlobStore } from './services/storage/create-blob-store.js';

export interface App {
  config: Config;
  url: string;
  database: Database;
  storage: BlobStore;
  services: Services;
  http: HttpServer;
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

    const devices = new DeviceService({ db: database.db, pubsub, config });
    const accounts = new AccountService({ db: database.db, config, devices });
    const services: Services = { accounts, devices };

    const graphql = createGraphQLServer({ config, services, log });
    const routes = [createWebRoute()];
    if (config.storage.driver === 'fs') routes.unshift(createBlobDownloadHandler({ store: storage, signingSecret: config.secret }));
    const http = await startHttpServer({ config, services, graphql, routes, log });
    cleanups.push(() => http.close());

    return { config, url: http.url, database, storage, services, http, close };
  } catch (error) {
    await close();
    throw error;
  }
}
