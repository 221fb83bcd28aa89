import { createHash } from 'node:crypto';

/** One row of `platform.flags`: an operator's override of a declared flag. */
export interface FlagRule {
  key: string;
  state: 'on' | 'off' | 'rollout';
  /** For `rollout`: the share of users (0..100) that get the flag. */
  percentage: number;
  /** For `rollout`: user ids that get the flag whatever the percentage. */
  userIds: readonly string[];
  updatedAt: Date;
}

export type FlagReason = 'DEFAULT' | 'STATIC' | 'DISABLED' | 'TARGETING_MATCH' | 'SPLIT';

/**
 * A user's bucket for a flag, 0..99: the first 32 bits of SHA-256(key ":" userId) mod 100.
 * The same on every instance and every call (no state, no randomness), different per flag
 * (so one user is not first in every rollout), and monotonic in the percentage: a user
 * who has the flag at 20 % keeps it at 50 %.
 */
export function rolloutBucket(key: string, userId: string): number {
  return createHash('sha256').update(`${key}:${userId}`).digest().readUInt32BE(0) % 100;
}

/**
 * Evaluates a flag. `off` wins over everything (a kill switch means nobody); named users
 * come before the percentage. Without a user (system-wide decisions such as pausing a
 * queue) a rollout counts as on only at 100 %.
 */
export function evaluateFlag(rule: FlagRule | undefined, fallback: boolean, userId?: string): { value: boolean; reason: FlagReason } {
  if (!rule) return { value: fallback, reason: 'DEFAULT' };
  if (rule.state === 'on') return { value: true, reason: 'STATIC' };
  if (rule.state === 'off') return { value: false, reason: 'DISABLED' };
  if (userId !== undefined && rule.userIds.includes(userId)) return { value: true, reason: 'TARGETING_MATCH' };
  if (userId === undefined) return { value: rule.percentage >= 100, reason: 'SPLIT' };
  return { value: rolloutBucket(rule.key, userId) < rule.percentage, reason: 'SPLIT' };
}

/** `on`, `off`, or `25% + 2 users`, for the CLI and logs. */
export function describeRule(rule: FlagRule | undefined, fallback: boolean): string {
  if (!rule) return `${fallback ? 'on' : 'off'} (default)`;
  if (rule.state !== 'rollout') return rule.state;
  return `${rule.percentage}%${rule.userIds.length ? ` + ${rule.userIds.length} named user(s)` : ''}`;
}
