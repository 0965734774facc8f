import { createHash } from 'node:crypto';

/**
 * The answer to a proof-of-possession challenge (U4), as the protocol defines it: the hex SHA-256
 * of the nonce's 32 bytes followed by the bytes of each of the challenge's ranges, in order.
 * The SDK answers with it and the server works out the answer it expects with it.
 */
export function proofOfPossession(nonceHex: string, pieces: Iterable<Uint8Array>): string {
  const hash = createHash('sha256').update(Buffer.from(nonceHex, 'hex'));
  for (const piece of pieces) hash.update(piece);
  return hash.digest('hex');
}
