import { randomBytes, randomUUID } from 'node:crypto';
import { open } from 'node:fs/promises';
import { buffer } from 'node:stream/consumers';
import type { ByteRange } from '../../protocol/byte-ranges.js';
import { proofOfPossession } from '../../protocol/proof-of-possession.js';
import { AppError } from '../app-error.js';
import { blobKey } from '../blobs.js';
import type { Viewer } from '../devices.js';
import type { Challenge } from './challenge-tokens.js';
import type { UploadContext } from './upload-context.js';
import type { CheckFile } from './upload-sessions.js';

/**
 * Proof of possession (U4, beyond the patents): before the server copies a file it already stores
 * into another user's library, that user proves to hold the bytes, not only their hash — the
 * SHA-256 of a fresh nonce followed by a few random ranges of the file (protocol/proof-of-possession.ts).
 */

const PROOF_RANGES = 4;
const PROOF_RANGE_BYTES = 4096;

export interface ChallengeView {
  id: string;
  /** Hex; the proof is SHA-256 over these 32 bytes followed by the bytes of each range in order. */
  nonce: string;
  ranges: ByteRange[];
  expiresAt: Date;
}

export interface ChallengeMaterial {
  /** The file size the ranges were picked for. */
  size: number;
  nonce: string;
  ranges: ByteRange[];
  /** Hex SHA-256 of the nonce and the ranges' stored bytes; null: not worked out. */
  expected: Promise<string | null>;
}

/** Random ranges the client must read from its copy: a few small windows, or the whole file when it is small. */
export function proofRanges(size: number): ByteRange[] {
  if (size <= PROOF_RANGES * PROOF_RANGE_BYTES) return [{ offset: 0, length: size }];
  const ranges: ByteRange[] = [];
  for (let i = 0; i < PROOF_RANGES; i++) {
    const offset = randomBytes(6).readUIntBE(0, 6) % (size - PROOF_RANGE_BYTES + 1);
    ranges.push({ offset, length: PROOF_RANGE_BYTES });
  }
  // The last bytes of the file are always asked for: prefixes are the easiest thing to have by accident.
  ranges.push({ offset: size - PROOF_RANGE_BYTES, length: PROOF_RANGE_BYTES });
  return ranges;
}

/** A challenge's nonce and ranges for a file of `size` bytes, and the right answer from the stored bytes (null: not stored). */
export function answeredMaterial(ctx: UploadContext, sha256: string, size: number): ChallengeMaterial {
  const nonce = randomBytes(32).toString('hex');
  const ranges = proofRanges(size);
  const expected = expectedProof(ctx, sha256, nonce, ranges).then(
    (proof) => proof.toString('hex'),
    () => null, // not stored (or unreadable): the claim works it out, or refuses, itself
  );
  return { size, nonce, ranges, expected };
}

/** A challenge's nonce and ranges, leaving the right answer to the claim. */
export function unansweredMaterial(size: number): ChallengeMaterial {
  return { size, nonce: randomBytes(32).toString('hex'), ranges: proofRanges(size), expected: Promise.resolve(null) };
}

/** Sealed challenge tokens (nothing is written: see challenge-tokens.ts). */
export function sealChallenges(
  ctx: UploadContext,
  viewer: Viewer,
  files: { file: CheckFile; folderId: string | null; nonce: string; ranges: ByteRange[]; expected: string | null }[],
): ChallengeView[] {
  const expiresAt = new Date(Date.now() + ctx.config.uploads.challengeSeconds * 1000);
  return files.map(({ file, folderId, nonce, ranges, expected }) => {
    const challenge: Challenge = {
      id: randomUUID(),
      userId: viewer.user.id,
      deviceId: viewer.device.id,
      sha256: file.sha256,
      size: file.size,
      name: file.name,
      folderId,
      takenAt: file.takenAt ?? null,
      nonce,
      ranges,
      expiresAt,
      expected,
    };
    return { id: ctx.challenges.seal(challenge), nonce, ranges, expiresAt };
  });
}

/** The right answer, from the stored bytes; NOT_FOUND when the blob is not (or no longer) stored. */
export async function expectedProof(ctx: UploadContext, sha256: string, nonce: string, ranges: ByteRange[]): Promise<Buffer> {
  const key = blobKey(sha256);
  const wanted = ranges.filter((range) => range.length > 0);
  // Filesystem storage: one open file for all the ranges; S3: the range requests in parallel.
  const local = ctx.storage.localPath?.(key);
  let pieces: Buffer[];
  if (local) {
    const handle = await open(local, 'r').catch((error: NodeJS.ErrnoException) => {
      throw error.code === 'ENOENT' ? new AppError('NOT_FOUND', 'No such blob') : error;
    });
    try {
      pieces = await Promise.all(
        wanted.map(async (range) => {
          const piece = Buffer.alloc(range.length);
          const { bytesRead } = await handle.read(piece, 0, range.length, range.offset);
          if (bytesRead !== range.length) throw new AppError('NOT_FOUND', 'The stored file is shorter than declared');
          return piece;
        }),
      );
    } finally {
      // Not waited for: the answer does not depend on it.
      handle.close().catch(() => {});
    }
  } else {
    pieces = await Promise.all(wanted.map(async (range) => buffer(await ctx.storage.get(key, { start: range.offset, end: range.offset + range.length - 1 }))));
  }
  return Buffer.from(proofOfPossession(nonce, pieces), 'hex');
}
