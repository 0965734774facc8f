import { createHmac, timingSafeEqual } from 'node:crypto';
import { AppError } from '../app-error.js';
import { assertValidBlobKey } from './blob-store.js';

/**
 * HMAC-signed download URLs for the filesystem driver: the S3 driver gets presigned URLs
 * from S3, the filesystem driver needs its own so a browser (a friend on the share page)
 * can fetch a blob with no session. The signature covers the key, the expiry and the
 * response headers it asks for, not the host, so the public base URL may change behind a
 * proxy without invalidating links.
 */

/** Path of the download route; the handler in http/blob-download.ts serves it. */
export const BLOB_ROUTE_PREFIX = '/blobs/';

/** Bumping the version invalidates every URL signed before. */
const SIGNATURE_VERSION = 'pixshare-blob-url-v1';

export interface BlobUrlClaims {
  key: string;
  /** Unix seconds after which the URL is refused. */
  expiresAt: number;
  downloadName?: string;
  contentType?: string;
}

export function signBlobUrl(publicBaseUrl: string, secret: string, claims: BlobUrlClaims): string {
  assertValidBlobKey(claims.key);
  const path = claims.key.split('/').map(encodeURIComponent).join('/');
  const query = new URLSearchParams({ exp: String(claims.expiresAt) });
  if (claims.downloadName !== undefined) query.set('name', claims.downloadName);
  if (claims.contentType !== undefined) query.set('type', claims.contentType);
  query.set('sig', signature(secret, claims));
  return `${publicBaseUrl.replace(/\/+$/, '')}${BLOB_ROUTE_PREFIX}${path}?${query}`;
}

/**
 * Checks a request URL (path under BLOB_ROUTE_PREFIX) and returns what it grants.
 * The signature is checked before the expiry so that a forged `exp` reads as
 * INVALID_SIGNATURE, and only an authentic but old link as URL_EXPIRED.
 */
export function verifySignedBlobUrl(url: URL, secret: string, nowMs = Date.now()): BlobUrlClaims {
  const invalid = () => new AppError('INVALID_SIGNATURE', 'The download link is not valid');
  if (!url.pathname.startsWith(BLOB_ROUTE_PREFIX)) throw invalid();

  let key: string;
  try {
    key = url.pathname.slice(BLOB_ROUTE_PREFIX.length).split('/').map(decodeURIComponent).join('/');
  } catch {
    throw invalid(); // malformed percent-encoding
  }
  const exp = url.searchParams.get('exp');
  const sig = url.searchParams.get('sig');
  if (!exp || !/^\d{1,15}$/.test(exp) || !sig) throw invalid();

  const claims: BlobUrlClaims = { key, expiresAt: Number(exp) };
  const downloadName = url.searchParams.get('name');
  const contentType = url.searchParams.get('type');
  if (downloadName !== null) claims.downloadName = downloadName;
  if (contentType !== null) claims.contentType = contentType;

  if (!sameSignature(sig, signature(secret, claims))) throw invalid();

  if (nowMs / 1000 > claims.expiresAt) {
    throw new AppError('URL_EXPIRED', 'The download link has expired', { expiredAt: new Date(claims.expiresAt * 1000).toISOString() });
  }
  // Signed by us, so the key was valid when signed; checked again in case the secret leaked.
  assertValidBlobKey(claims.key);
  return claims;
}

function signature(secret: string, claims: BlobUrlClaims): string {
  return signFields(secret, [SIGNATURE_VERSION, claims.key, claims.expiresAt, claims.downloadName ?? null, claims.contentType ?? null]);
}

/**
 * HMAC-SHA-256 of a list of fields (base64url). A JSON array keeps the fields unambiguous: no
 * separator can be smuggled inside one. The first field should name what is signed and its version.
 */
export function signFields(secret: string, fields: readonly (string | number | null)[]): string {
  return createHmac('sha256', secret).update(JSON.stringify(fields)).digest('base64url');
}

/** Compares a given signature with the expected one in constant time. */
export function sameSignature(given: string, expected: string): boolean {
  const a = Buffer.from(given, 'base64url');
  const b = Buffer.from(expected, 'base64url');
  return a.length === b.length && timingSafeEqual(a, b);
}
