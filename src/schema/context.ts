import type DataLoader from 'dataloader';
import type { AssetRow } from '../db/schema/index.js';
import type { AccountService } from '../services/accounts.js';
import type { BlobService } from '../services/blobs.js';
import type { DeviceService, Viewer } from '../services/devices.js';
import type { LibraryService } from '../services/library.js';
import type { PubSub } from '../services/pubsub.js';
import type { UploadService } from '../services/uploads.js';
import type { RequestOrigin } from '../services/request-origin.js';

export interface Services {
  accounts: AccountService;
  devices: DeviceService;
  blobs: BlobService;
  library: LibraryService;
  uploads: UploadService;
  pubsub: PubSub;
}

/** Built fresh for every request and every subscription. */
export interface GraphQLContext {
  services: Services;
  /** The signed-in user and device, or null. */
  viewer: Viewer | null;
  origin: RequestOrigin;
  /** Base of the links handed out (downloads, thumbnails). */
  publicUrl: string;
  /** Per-request batch loaders (one query for many ids). */
  loaders: Loaders;
  /** Browsers keep their session in an HttpOnly cookie; set (token) or clear (null) it. */
  setSessionCookie(token: string | null): void;
}

export interface Loaders {
  /** The viewer's assets by id; a missing or foreign id is an error for that item only. */
  asset: DataLoader<string, AssetRow>;
}
