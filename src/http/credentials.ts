import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Config } from '../config.js';
import { AppError, isAppError } from '../services/app-error.js';
import type { DeviceService, Viewer } from '../services/devices.js';
import type { RequestOrigin } from '../services/request-origin.js';

export const SESSION_COOKIE = 'pixshare_session';
/** Any request may carry this header to prove it is not a cross-site form post (browsers cannot add it cross-origin without CORS). */
export const CSRF_HEADER = 'x-pixshare-csrf';

export interface Credentials {
  token: string;
  via: 'bearer' | 'cookie';
}

export function requestOrigin(req: IncomingMessage): RequestOrigin {
  return {
    address: normaliseAddress(req.socket.remoteAddress),
    port: req.socket.remotePort ?? null,
    userAgent: headerValue(req.headers, 'user-agent')?.slice(0, 300) ?? null,
  };
}

function normaliseAddress(address: string | undefined): string | null {
  if (!address) return null;
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

export function readCookie(headers: IncomingHttpHeaders, name: string): string | undefined {
  for (const part of (headerValue(headers, 'cookie') ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return undefined; // a mangled cookie is no cookie
      }
    }
  }
  return undefined;
}

/**
 * The credentials a request presents. A bearer token wins over a cookie. A cookie
 * is honoured only from requests a cross-site page cannot forge: same-origin
 * fetches (Sec-Fetch-Site), requests with our CSRF header, or JSON bodies (which
 * need a CORS preflight cross-site). For WebSocket upgrades the Origin must be ours.
 */
export function readCredentials(req: IncomingMessage, options: { allowedOrigins: string[]; upgrade?: boolean }): Credentials | null {
  const authorization = headerValue(req.headers, 'authorization');
  if (authorization !== undefined) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!match) throw new AppError('UNAUTHENTICATED', 'Authorization header must be "Bearer <token>"');
    return { token: match[1]!, via: 'bearer' };
  }
  const cookie = readCookie(req.headers, SESSION_COOKIE);
  if (!cookie) return null;
  if (options.upgrade) {
    const origin = headerValue(req.headers, 'origin');
    if (origin !== undefined && !options.allowedOrigins.includes(origin)) throw new AppError('CSRF_REJECTED', 'WebSocket from a foreign origin may not use the session cookie');
    return { token: cookie, via: 'cookie' };
  }
  const site = headerValue(req.headers, 'sec-fetch-site');
  const contentType = headerValue(req.headers, 'content-type') ?? '';
  const safe =
    site === 'same-origin' ||
    site === 'none' ||
    headerValue(req.headers, CSRF_HEADER) !== undefined ||
    /^application\/(json|graphql-response\+json)\b/i.test(contentType);
  if (!safe) throw new AppError('CSRF_REJECTED', `Requests authenticated by the session cookie need the ${CSRF_HEADER} header or a JSON body`);
  return { token: cookie, via: 'cookie' };
}

export function sessionCookie(token: string | null, options: { secure: boolean; maxAgeSeconds: number }): string {
  const attributes = ['Path=/', 'HttpOnly', 'SameSite=Lax', ...(options.secure ? ['Secure'] : [])];
  if (token === null) return [`${SESSION_COOKIE}=`, 'Max-Age=0', ...attributes].join('; ');
  return [`${SESSION_COOKIE}=${encodeURIComponent(token)}`, `Max-Age=${options.maxAgeSeconds}`, ...attributes].join('; ');
}

export type Authenticate = (req: IncomingMessage, options?: { upgrade?: boolean }) => Promise<{ viewer: Viewer | null; clearCookie: boolean }>;

/**
 * Who is asking: resolves the request's credentials to a viewer and records the
 * request on the device's control-list entry. An expired browser session simply
 * means signed out (and the cookie is cleared); a bad bearer token is refused.
 */
export function createAuthenticator(deps: { config: Pick<Config, 'publicUrl'>; devices: DeviceService }): Authenticate {
  const publicOrigin = new URL(deps.config.publicUrl).origin;
  return async (req, options = {}) => {
    const allowedOrigins = [publicOrigin, `http://${req.headers.host}`, `https://${req.headers.host}`];
    const credentials = readCredentials(req, { allowedOrigins, upgrade: options.upgrade });
    if (!credentials) return { viewer: null, clearCookie: false };
    try {
      return { viewer: await deps.devices.authenticate(credentials.token, requestOrigin(req)), clearCookie: false };
    } catch (error) {
      if (credentials.via === 'cookie' && isAppError(error) && error.code === 'UNAUTHENTICATED') return { viewer: null, clearCookie: true };
      throw error;
    }
  };
}

/** For routes that need a signed-in user. */
export async function requireViewer(authenticate: Authenticate, req: IncomingMessage): Promise<Viewer> {
  const { viewer } = await authenticate(req);
  if (!viewer) throw new AppError('UNAUTHENTICATED', 'Sign in first (Authorization: Bearer <device token>, or the session cookie)');
  return viewer;
}
