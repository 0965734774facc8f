import type DataLoader from 'dataloader';
import type { AssetRow } from '../db/schema/index.js';
import type { Viewer } from '../services/devices.js';
import type { Services } from '../services/index.js';
import type { RequestOrigin } from '../services/request-origin.js';

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
