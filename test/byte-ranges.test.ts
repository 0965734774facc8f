import { describe, expect, it } from 'vitest';
import { coveredBytes, coveredPrefix, missingRanges } from '../src/protocol/byte-ranges.js';

const span = (offset: number, length: number) => ({ offset, length });

describe('byte ranges of an upload', () => {
  it('lists what is missing, in order, whatever the order and overlaps of what arrived', () => {
    expect(missingRanges(100, [])).toEqual([span(0, 100)]);
    expect(missingRanges(100, [span(50, 10), span(0, 20), span(10, 15)])).toEqual([span(25, 25), span(60, 40)]);
    expect(missingRanges(100, [span(0, 100)])).toEqual([]);
  });

  it('counts covered bytes once, however often they were sent', () => {
    expect(coveredBytes([span(0, 10), span(5, 10), span(50, 5)])).toBe(20);
  });

  it('finds the received prefix: covered from byte 0 without a gap', () => {
    expect(coveredPrefix([])).toBe(0);
    expect(coveredPrefix([span(10, 5)])).toBe(0);
    expect(coveredPrefix([span(4, 6), span(0, 5), span(20, 5)])).toBe(10);
    expect(coveredPrefix([span(0, 8), span(8, 8)])).toBe(16);
  });
});
