import type { AccountService } from '../services/accounts.js';
import type { DeviceService, Viewer } from '../services/devices.js';
import type { RequestOrigin } from '../services/request-origin.js';

export interface Services {
  accounts: AccountService;
  devices: DeviceService;
}

/** Built fresh for every request and every subscription. */
export interface GraphQLContext {
  services: Services;
  /** The signed-in user and device, or null. */
  viewer: Viewer | null;
  origin: RequestOrigin;
  /** Browsers keep their session in an HttpOnly cookie; set (token) or clear (null) it. */
  setSessionCookie(token: string | null): void;
}
