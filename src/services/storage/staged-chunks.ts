import { AppError } from '../app-error.js';
import { assertValidChunk, type InclusiveRange } from './blob-store.js';
import type { ByteRange } from '../../protocol/byte-ranges.js';

/** One stretch of a read: absolute upload positions `start..end` (inclusive) served by `chunk`. */
export interface StagedPiece {
  chunk: ByteRange;
  start: number;
  end: number;
}

/**
 * Which chunks serve which bytes of `range`. Chunks may overlap (a client may change its
 * chunk size when it resumes, and re-sent chunks carry the same bytes), so this walks the
 * range and at every position takes the covering chunk reaching farthest: fewest reads.
 * Returns the first uncovered position instead when the chunks leave a gap.
 */
export function planStagedReads(chunks: readonly ByteRange[], range: InclusiveRange): StagedPiece[] | { gapAt: number } {
  const sorted = [...chunks].sort((a, b) => a.offset - b.offset);
  const pieces: StagedPiece[] = [];
  let next = 0;
  let best: ByteRange | undefined;
  let position = range.start;
  while (position <= range.end) {
    for (let candidate = sorted[next]; candidate && candidate.offset <= position; candidate = sorted[++next]) {
      if (!best || candidate.offset + candidate.length > best.offset + best.length) best = candidate;
    }
    if (!best || best.offset + best.length <= position) return { gapAt: position };
    const end = Math.min(range.end, best.offset + best.length - 1);
    pieces.push({ chunk: best, start: position, end });
    position = end + 1;
  }
  return pieces;
}

/**
 * Assembly's precondition, checked before any byte is read: the counted chunks are well
 * formed, lie inside the declared size and cover all of it.
 */
export function planAssembly(chunks: readonly ByteRange[], size: number): StagedPiece[] {
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new AppError('BAD_USER_INPUT', 'Invalid upload size', { size });
  }
  for (const chunk of chunks) {
    assertValidChunk(chunk.offset, chunk.length);
    if (chunk.offset + chunk.length > size) {
      throw new AppError('BAD_USER_INPUT', 'A chunk reaches past the declared size', { ...chunk, size });
    }
  }
  if (size === 0) return [];
  const plan = planStagedReads(chunks, { start: 0, end: size - 1 });
  if (!Array.isArray(plan)) {
    throw new AppError('BAD_USER_INPUT', 'The staged chunks do not cover the whole file', { missingFrom: plan.gapAt, size });
  }
  return plan;
}
