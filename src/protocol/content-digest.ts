/**
 * The `Content-Digest` header a chunk PUT carries (RFC 9530): `sha-256=:<base64 of the 32 bytes>:`.
 * Written by the SDK, read by the server's chunk route.
 */
export function contentDigestHeader(sha256: Uint8Array): string {
  return `sha-256=:${Buffer.from(sha256).toString('base64')}:`;
}

/**
 * The hex SHA-256 of an RFC 9530 Content-Digest dictionary (other algorithms are ignored), or
 * null when it has none.
 */
export function parseContentDigest(header: string | string[] | undefined): string | null {
  const value = Array.isArray(header) ? header.join(',') : header;
  if (!value) return null;
  for (const member of value.split(',')) {
    const match = /^\s*sha-256\s*=\s*:([A-Za-z0-9+/]+={0,2}):\s*$/i.exec(member);
    if (match) {
      const digest = Buffer.from(match[1]!, 'base64');
      if (digest.length === 32) return digest.toString('hex');
    }
  }
  return null;
}
