import { jitteredBackoff } from './queue.factory';

describe('jitteredBackoff', () => {
  it('grows exponentially and keeps half of each step random', () => {
    for (let attempt = 1; attempt <= 6; attempt++) {
      const exponential = 100 * 2 ** (attempt - 1);
      const samples = Array.from({ length: 200 }, () => jitteredBackoff(100, attempt));
      expect(Math.min(...samples)).toBeGreaterThanOrEqual(exponential / 2);
      expect(Math.max(...samples)).toBeLessThanOrEqual(exponential);
      // Jitter: the delays are spread, not all equal.
      expect(new Set(samples).size).toBeGreaterThan(10);
    }
  });

  it('is capped', () => {
    expect(jitteredBackoff(1000, 40, 30_000)).toBeLessThanOrEqual(30_000);
  });
});
