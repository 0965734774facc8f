import type { ByteRange } from '../../protocol/byte-ranges.js';
import { SealedBox } from '../sealed-box.js';

/**
 * A proof-of-possession challenge (U4) travels as a sealed token instead of a database row: the
 * check hands it out without writing anything, and the claim reads it back without a lookup. Only
 * answering it is recorded (answered_challenges), which keeps it single-use. AES-256-GCM under a
 * key derived from the deployment secret: the client can neither read the right answer inside nor
 * change anything (the user it is for, the file, the ranges, the expiry).
 */
export interface Challenge {
  /** Recorded when the challenge is answered: a second answer is refused. */
  id: string;
  userId: string;
  deviceId: string;
  sha256: string;
  size: number;
  name: string;
  folderId: string | null;
  takenAt: Date | null;
  /** Hex, 32 bytes. */
  nonce: string;
  ranges: ByteRange[];
  expiresAt: Date;
  /** Hex SHA-256 of nonce and ranges, worked out from the stored bytes when the challenge was made; null: the claim works it out. */
  expected: string | null;
}

const PREFIX = 'pxc1_';
/** Far above any real token (a 255-character name is the largest part); longer input is not even decoded. */
export const MAX_CHALLENGE_TOKEN_LENGTH = 4096;

/** What is sealed: short keys, the token is sent twice per instant upload. */
interface Sealed {
  i: string;
  u: string;
  d: string;
  s: string;
  z: number;
  n: string;
  f: string | null;
  t: number | null;
  o: string;
  r: [number, number][];
  x: number;
  e: string | null;
}

export class ChallengeTokens {
  private readonly box: SealedBox;

  constructor(secret: string) {
    this.box = new SealedBox(secret, 'upload challenge token');
  }

  seal(challenge: Challenge): string {
    const sealed: Sealed = {
      i: challenge.id,
      u: challenge.userId,
      d: challenge.deviceId,
      s: challenge.sha256,
      z: challenge.size,
      n: challenge.name,
      f: challenge.folderId,
      t: challenge.takenAt?.getTime() ?? null,
      o: challenge.nonce,
      r: challenge.ranges.map((r) => [r.offset, r.length]),
      x: challenge.expiresAt.getTime(),
      e: challenge.expected,
    };
    return PREFIX + this.box.seal(sealed);
  }

  /** The challenge inside a token this deployment made; null for anything else (malformed, altered, another secret's). */
  open(token: string): Challenge | null {
    if (!token.startsWith(PREFIX) || token.length > MAX_CHALLENGE_TOKEN_LENGTH) return null;
    const sealed = this.box.open<Sealed>(token.slice(PREFIX.length));
    if (!sealed) return null;
    return {
      id: sealed.i,
      userId: sealed.u,
      deviceId: sealed.d,
      sha256: sealed.s,
      size: sealed.z,
      name: sealed.n,
      folderId: sealed.f,
      takenAt: sealed.t === null ? null : new Date(sealed.t),
      nonce: sealed.o,
      ranges: sealed.r.map(([offset, length]) => ({ offset, length })),
      expiresAt: new Date(sealed.x),
      expected: sealed.e,
    };
  }
}
