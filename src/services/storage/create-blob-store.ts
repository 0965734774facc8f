import type { BlobStore, BlobStoreSettings } from './blob-store.js';
import { FsBlobStore } from './fs-blob-store.js';
import { S3BlobStore } from './s3-blob-store.js';

/**
 * The store named by the settings. Construction does no I/O; call `await store.checkReady()`
 * at start-up so an unreachable bucket or an unwritable directory stops the server with an
 * Error naming it, instead of surfacing as the first user's failed upload.
 */
export function createBlobStore(settings: BlobStoreSettings): BlobStore {
  return settings.driver === 'fs' ? new FsBlobStore(settings) : new S3BlobStore(settings);
}
