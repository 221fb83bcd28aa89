import { randomUUID } from 'node:crypto';
import { evaluateFlag, rolloutBucket, type FlagRule } from './flag-rules';

const rule = (overrides: Partial<FlagRule>): FlagRule => ({ key: 'users.profile-cache', state: 'rollout', percentage: 0, userIds: [], updatedAt: new Date(), ...overrides });

describe('feature flag evaluation', () => {
  const ids = Array.from({ length: 10_000 }, () => randomUUID());

  it('puts each user in a bucket 0..99 that depends only on (flag, user id)', () => {
    for (const id of ids.slice(0, 500)) {
      const bucket = rolloutBucket('users.profile-cache', id);
      expect(bucket).toBeGreaterThanOrEqual(0);
      expect(bucket).toBeLessThan(100);
      expect(rolloutBucket('users.profile-cache', id)).toBe(bucket);
    }
    // Pinned: a change of the hash would reshuffle every rollout in production.
    expect([rolloutBucket('a.flag', 'user-1'), rolloutBucket('a.flag', 'user-2'), rolloutBucket('b.flag', 'user-1')]).toEqual([7, 32, 89]);
  });

  it.each([1, 10, 30, 50, 90])('turns a %i %% rollout on for about that share of 10 000 users', (percentage) => {
    const on = ids.filter((id) => evaluateFlag(rule({ percentage }), false, id).value).length;
    // Binomial standard deviation at n = 10 000 is at most 0.5 %; 2 points is over 4 sigma.
    expect(Math.abs(on / ids.length - percentage / 100)).toBeLessThan(0.02);
  });

  it('keeps every user who had the flag when the percentage grows (no flapping during a rollout)', () => {
    const at = (percentage: number) => new Set(ids.filter((id) => evaluateFlag(rule({ percentage }), false, id).value));
    const [p10, p30, p70] = [at(10), at(30), at(70)];
    for (const id of p10) expect(p30.has(id)).toBe(true);
    for (const id of p30) expect(p70.has(id)).toBe(true);
    expect(at(0).size).toBe(0);
    expect(at(100).size).toBe(ids.length);
  });

  it('splits users independently per flag, so the same users are not first in every rollout', () => {
    const inA = ids.filter((id) => evaluateFlag(rule({ key: 'a.flag', percentage: 50 }), false, id).value);
    const inBoth = inA.filter((id) => evaluateFlag(rule({ key: 'b.flag', percentage: 50 }), false, id).value);
    expect(Math.abs(inBoth.length / inA.length - 0.5)).toBeLessThan(0.05);
  });

  it('gives the flag to named users whatever the percentage, and off wins over everything', () => {
    const outsider = ids.find((id) => rolloutBucket('users.profile-cache', id) >= 10)!;
    expect(evaluateFlag(rule({ percentage: 10 }), true, outsider)).toEqual({ value: false, reason: 'SPLIT' });
    expect(evaluateFlag(rule({ percentage: 10, userIds: [outsider] }), false, outsider)).toEqual({ value: true, reason: 'TARGETING_MATCH' });
    expect(evaluateFlag(rule({ state: 'off', userIds: [outsider] }), true, outsider)).toEqual({ value: false, reason: 'DISABLED' });
    expect(evaluateFlag(rule({ state: 'on' }), false, outsider)).toEqual({ value: true, reason: 'STATIC' });
  });

  it('uses the declared default without a row, and counts a partial rollout as off for system-wide decisions', () => {
    expect(evaluateFlag(undefined, true).value).toBe(true);
    expect(evaluateFlag(undefined, false, 'someone').value).toBe(false);
    expect(evaluateFlag(rule({ percentage: 99, userIds: ['x'] }), true).value).toBe(false);
    expect(evaluateFlag(rule({ percentage: 100 }), false).value).toBe(true);
  });
});

