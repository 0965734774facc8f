import { describe, expect, it } from 'vitest';
import { ForegroundActivity } from '../src/services/jobs/foreground-activity.js';

describe('ForegroundActivity (background work gives way to uploads)', () => {
  it('waits while a chunk is arriving and for a quiet moment after, but never past the longest wait', async () => {
    const activity = new ForegroundActivity();
    expect(activity.isQuiet(100)).toBe(true);
    const end = activity.begin();
    const started = Date.now();
    let waited: number | undefined;
    const waiting = activity.quiet(100, 5_000).then(() => (waited = Date.now() - started));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(waited).toBeUndefined(); // still receiving
    end();
    end(); // twice is once
    await waiting;
    expect(waited).toBeGreaterThanOrEqual(400); // 300 ms receiving + 100 ms quiet
    expect(activity.isQuiet(100)).toBe(true);

    // An upload that never pauses: the wait ends at its limit.
    activity.begin();
    const before = Date.now();
    await activity.quiet(100, 250);
    expect(Date.now() - before).toBeGreaterThanOrEqual(240);
    expect(Date.now() - before).toBeLessThan(2_000);
  });
});
