import { createHash } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type Redis from 'ioredis';
import { APP_CONFIG, clientAddressKey, REDIS_CLIENT, TooManyRequestsError, withTimeout, type AppConfig } from '@app/platform';
import { usersSettings } from '../users.settings';

/**
 * Each counter is a hash: `f` failed attempts in the window, `p` attempts whose password
 * is being verified right now. The window (key TTL) starts with the first attempt.
 *
 * RESERVE (before the password is verified): refuses when either counter has
 * `f + p >= limit`, otherwise takes one `p` on both, in one step, so concurrent attempts
 * cannot all pass a check made before any of them is counted. Returns 0 when reserved,
 * else the milliseconds to report in Retry-After.
 * KEYS: account, address. ARGV: account limit, address limit, window ms. On a Redis
 * Cluster the two keys live in different slots, so it runs once per key (KEYS: one
 * counter; ARGV: its limit, window ms): see LoginThrottle.reserveOnCluster.
 */
const RESERVE = `
local window = ARGV[#KEYS + 1]
local blocked = 0
for i = 1, #KEYS do
  local f = tonumber(redis.call('HGET', KEYS[i], 'f') or '0')
  local p = tonumber(redis.call('HGET', KEYS[i], 'p') or '0')
  if f + p >= tonumber(ARGV[i]) then
    local ttl = redis.call('PTTL', KEYS[i])
    if ttl < 0 then
      redis.call('PEXPIRE', KEYS[i], window)
      ttl = tonumber(window)
    end
    -- Full of failures: until the window ends. Full only because attempts are still
    -- being verified: retry in a second (they may succeed and free their places).
    local wait = ttl
    if f < tonumber(ARGV[i]) then wait = math.min(ttl, 1000) end
    if wait > blocked then blocked = wait end
  end
end
if blocked > 0 then return blocked end
for i = 1, #KEYS do
  redis.call('HINCRBY', KEYS[i], 'p', 1)
  if redis.call('PTTL', KEYS[i]) < 0 then redis.call('PEXPIRE', KEYS[i], window) end
end
return 0`;

/**
 * SETTLE after the verify. ARGV: outcome (`failure`, `success`, `aborted`), `1` if a
 * reservation was taken, window ms.
 * failure: the reservation becomes a failure on both counters (a counter that expired
 * meanwhile starts a new window with it).
 * success: the reservation is released on both counters, and the account's failures are
 * cleared (a user who mistyped can still sign in later); the address keeps its failures,
 * and other attempts in flight keep their reservations.
 * aborted (the check itself failed, e.g. the database): the reservation is released.
 * On a cluster it runs once per key; the address settles a success as `aborted` (it only
 * releases its reservation, its failures stay).
 */
const SETTLE = `
for i = 1, #KEYS do
  local exists = redis.call('EXISTS', KEYS[i]) == 1
  if exists and ARGV[2] == '1' and tonumber(redis.call('HGET', KEYS[i], 'p') or '0') > 0 then
    redis.call('HINCRBY', KEYS[i], 'p', -1)
  end
  if ARGV[1] == 'failure' then
    redis.call('HINCRBY', KEYS[i], 'f', 1)
    if not exists then redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
  end
end
if ARGV[1] == 'success' then redis.call('HDEL', KEYS[1], 'f') end
for i = 1, #KEYS do
  if tonumber(redis.call('HGET', KEYS[i], 'f') or '0') <= 0 and tonumber(redis.call('HGET', KEYS[i], 'p') or '0') <= 0 then
    redis.call('DEL', KEYS[i])
  end
end
return 0`;

/**
 * How long a reservation waits for a connected but slow Redis before failing open. Longer
 * than REDIS_REQUEST_TIMEOUT_MS: giving up early would let a burst (or a load that slows
 * the process) through unlimited, and a sign-in spends longer on its password hash anyway.
 * A disconnected Redis still fails at once (the shared client queues nothing offline).
 */
const RESERVE_TIMEOUT_MS = 1000;

/** A sign-in attempt that passed the limits; settle it once its outcome is known. */
export interface LoginAttempt {
  readonly keys: [string, string];
  /** False when Redis could not be asked (the throttle failed open). */
  readonly reserved: boolean;
}

export type LoginOutcome = 'failure' | 'success' | 'aborted';

/**
 * Failed-login limits per account and per client address, in Redis so every instance
 * shares them. Policy: N failures within the window block further attempts until the
 * window ends (429 + Retry-After), even with the right password. An attempt reserves its
 * place atomically before the password is verified, so at most N verifications run per
 * account (and per address) however many requests arrive at once. Fails open when Redis
 * is unreachable, or has not answered a reservation within RESERVE_TIMEOUT_MS: argon2id
 * already makes guessing slow, and an outage of the cache must not lock every user out.
 */
@Injectable()
export class LoginThrottle {
  constructor(
    @Inject(REDIS_CLIENT) private readonly redis: Redis,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  private keys(email: string, ip: string): [string, string] {
    // Hash the email: counters must not put addresses in Redis in clear text.
    const account = createHash('sha256').update(email.trim().toLowerCase()).digest('base64url');
    // `attempts`, not the former `failures` string keys: a hash now, and a rolling deploy
    // must not hit WRONGTYPE on counters an older instance wrote.
    const prefix = `${this.config.env.REDIS_KEY_PREFIX}:users:login-attempts`;
    return [`${prefix}:account:${account}`, `${prefix}:ip:${clientAddressKey(ip)}`];
  }

  /** Takes a place for one attempt, or throws 429 when either limit is reached. */
  async reserve(email: string, ip: string): Promise<LoginAttempt> {
    const keys = this.keys(email, ip);
    const { LOGIN_MAX_FAILURES_PER_ACCOUNT, LOGIN_MAX_FAILURES_PER_IP, LOGIN_FAILURE_WINDOW_S } = usersSettings(this.config);
    let blockedForMs: number;
    try {
      blockedForMs = this.config.env.REDIS_CLUSTER_NODES
        ? await this.reserveOnCluster(keys, [LOGIN_MAX_FAILURES_PER_ACCOUNT, LOGIN_MAX_FAILURES_PER_IP], LOGIN_FAILURE_WINDOW_S * 1000)
        : await this.script(RESERVE, keys, [LOGIN_MAX_FAILURES_PER_ACCOUNT, LOGIN_MAX_FAILURES_PER_IP, LOGIN_FAILURE_WINDOW_S * 1000]);
    } catch {
      return { keys, reserved: false };
    }
    if (blockedForMs > 0) {
      throw new TooManyRequestsError(Math.max(1, Math.ceil(blockedForMs / 1000)), 'AUTH.TOO_MANY_FAILED_LOGINS', 'Too many failed sign-in attempts; retry later.');
    }
    return { keys, reserved: true };
  }

  /** Records the outcome of a reserved attempt (best effort: fails open like reserve). */
  async settle(attempt: LoginAttempt, outcome: LoginOutcome): Promise<void> {
    const window = usersSettings(this.config).LOGIN_FAILURE_WINDOW_S * 1000;
    const reserved = attempt.reserved ? '1' : '0';
    const [account, address] = attempt.keys;
    // Once sent, the script runs in Redis whether or not the answer is awaited in time.
    const settled = this.config.env.REDIS_CLUSTER_NODES
      ? Promise.all([
          this.redis.eval(SETTLE, 1, account, outcome, reserved, window),
          this.redis.eval(SETTLE, 1, address, outcome === 'success' ? 'aborted' : outcome, reserved, window),
        ])
      : this.redis.eval(SETTLE, 2, account, address, outcome, reserved, window);
    await withTimeout(settled, this.config.env.REDIS_REQUEST_TIMEOUT_MS, 'login throttle settlement').catch(() => undefined);
  }

  private async script(script: string, keys: string[], args: number[]): Promise<number> {
    return Number(
      await withTimeout(
        this.redis.eval(script, keys.length, ...keys, ...args),
        Math.max(this.config.env.REDIS_REQUEST_TIMEOUT_MS, RESERVE_TIMEOUT_MS),
        'login throttle reservation',
      ),
    );
  }

  /**
   * On a Redis Cluster the account and the address counters sit in different slots, and
   * one script may not touch both: each is reserved atomically on its own, account first;
   * an address that refuses gives the account's place back. Every counter still admits at
   * most its limit of verifications; a concurrent attempt may see the account's place for
   * that instant and be told to retry in a second. (docs/architecture.md "Redis keys and slots")
   */
  private async reserveOnCluster([account, address]: [string, string], [accountLimit, addressLimit]: [number, number], windowMs: number): Promise<number> {
    const accountBlocked = await this.script(RESERVE, [account], [accountLimit, windowMs]);
    if (accountBlocked > 0) return accountBlocked;
    let addressBlocked: number;
    try {
      addressBlocked = await this.script(RESERVE, [address], [addressLimit, windowMs]);
    } catch (error) {
      await this.redis.eval(SETTLE, 1, account, 'aborted', '1', windowMs).catch(() => undefined);
      throw error;
    }
    if (addressBlocked > 0) await this.redis.eval(SETTLE, 1, account, 'aborted', '1', windowMs).catch(() => undefined);
    return addressBlocked;
  }
}
