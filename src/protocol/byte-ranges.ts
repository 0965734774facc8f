/** Half-open byte ranges `[offset, offset + length)` of an upload. */
export interface ByteRange {
  offset: number;
  length: number;
}

/** What of `[0, size)` the spans do not cover, in order: the interrupt list's complement (U6). */
export function missingRanges(size: number, received: readonly ByteRange[]): ByteRange[] {
  const sorted = [...received].sort((a, b) => a.offset - b.offset);
  const missing: ByteRange[] = [];
  let cursor = 0;
  for (const span of sorted) {
    if (span.offset > cursor) missing.push({ offset: cursor, length: span.offset - cursor });
    cursor = Math.max(cursor, span.offset + span.length);
  }
  if (cursor < size) missing.push({ offset: cursor, length: size - cursor });
  return missing;
}

export function overlaps(a: ByteRange, b: ByteRange): boolean {
  return a.offset < b.offset + b.length && b.offset < a.offset + a.length;
}

export function coveredBytes(spans: readonly ByteRange[]): number {
  let total = 0;
  let cursor = 0;
  for (const span of [...spans].sort((a, b) => a.offset - b.offset)) {
    const start = Math.max(cursor, span.offset);
    const end = span.offset + span.length;
    if (end > start) total += end - start;
    cursor = Math.max(cursor, end);
  }
  return total;
}

/** Where the spans stop covering `[0, …)` without a gap: the length of the received prefix. */
export function coveredPrefix(spans: readonly ByteRange[]): number {
  return missingRanges(Number.MAX_SAFE_INTEGER, spans)[0]?.offset ?? Number.MAX_SAFE_INTEGER;
}
