import { createHash, randomBytes } from 'node:crypto';

/**
 * Secrets handed to clients (device tokens, browser sessions, later share links)
 * are 256 random bits; the server keeps only their SHA-256, so a leaked database
 * does not leak working credentials.
 */
export function createToken(prefix: 'pxd' | 'pxs' | 'pxl'): { token: string; hash: Buffer } {
  const token = `${prefix}_${randomBytes(32).toString('base64url')}`;
  return { token, hash: hashToken(token) };
}

export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

/** Cheap shape check so malformed tokens are refused before touching the database. */
export function looksLikeToken(token: string): boolean {
  return /^px[dsl]_[A-Za-z0-9_-]{43}$/.test(token);
}
