/** Half-open byte ranges `[offset, offset + length)` of an upload. */
export interface Span {
  offset: number;
  length: number;
}

/** What of `[0, size)` the spans do not cover, in order: the interrupt list's complement (U6). */
export function missingSpans(size: number, received: readonly Span[]): Span[] {
  const sorted = [...received].sort((a, b) => a.offset - b.offset);
  const missing: Span[] = [];
  let cursor = 0;
  for (const span of sorted) {
    if (span.offset > cursor) missing.push({ offset: cursor, length: span.offset - cursor });
    cursor = Math.max(cursor, span.offset + span.length);
  }
  if (cursor < size) missing.push({ offset: cursor, length: size - cursor });
  return missing;
}

export function overlaps(a: Span, b: Span): boolean {
  return a.offset < b.offset + b.length && b.offset < a.offset + a.length;
}

export function coveredBytes(spans: readonly Span[]): number {
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
export function coveredPrefix(spans: readonly Span[]): number {
  return missingSpans(Number.MAX_SAFE_INTEGER, spans)[0]?.offset ?? Number.MAX_SAFE_INTEGER;
}
