/**
 * A SHA-256 as the protocol writes it: 64 hexadecimal digits. Files, chunks and proofs of
 * possession are all named by one, and clients may send upper case.
 */
const SHA256_HEX = /^[0-9a-f]{64}$/i;

export function isSha256Hex(value: unknown): value is string {
  return typeof value === 'string' && SHA256_HEX.test(value);
}

/** The lower-case form the server stores and compares, or null when `value` is no hex SHA-256. */
export function normalizeSha256(value: unknown): string | null {
  return isSha256Hex(value) ? value.toLowerCase() : null;
}
