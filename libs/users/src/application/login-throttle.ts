import { createHash } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type Redis from 'ioredis';
import { APP_CONFIG, REDIS_CLIENT, TooManyRequestsError, withTimeout, type AppConfig } from '@app/platform';
import { usersSettings } from '../users.settings';

/**
 * Failed-login counters per account and per client address, in Redis so every instance
 * shares them. Policy: N failures within the window block further attempts until the
 * window ends (429 + Retry-After). Fails open when Redis cannot answer within
 * REDIS_REQUEST_TIMEOUT_MS: argon2id already makes guessing slow, and an outage of the
 * cache must not lock every user out.
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
    const prefix = `${this.config.env.REDIS_KEY_PREFIX}:users:login-failures`;
    return [`${prefix}:account:${account}`, `${prefix}:ip:${ip}`];
  }

  /** Throws 429 when either counter is over its limit. */
  async assertAllowed(email: string, ip: string): Promise<void> {
    const [account, address] = this.keys(email, ip);
    let results: [Error | null, unknown][] | null;
    try {
      results = await withTimeout(
        this.redis.multi().get(account).pttl(account).get(address).pttl(address).exec(),
        this.config.env.REDIS_REQUEST_TIMEOUT_MS,
        'login throttle',
      );
    } catch {
      return;
    }
    if (!results) return;
    const [accountCount, accountTtl, addressCount, addressTtl] = results.map(([, value]) => Number(value ?? 0));
    const { LOGIN_MAX_FAILURES_PER_ACCOUNT, LOGIN_MAX_FAILURES_PER_IP } = usersSettings(this.config);
    const blockedFor = Math.max(
      accountCount >= LOGIN_MAX_FAILURES_PER_ACCOUNT ? accountTtl : 0,
      addressCount >= LOGIN_MAX_FAILURES_PER_IP ? addressTtl : 0,
    );
    if (blockedFor > 0) {
      throw new TooManyRequestsError(Math.ceil(blockedFor / 1000), 'AUTH.TOO_MANY_FAILED_LOGINS', 'Too many failed sign-in attempts; retry later.');
    }
  }

  async recordFailure(email: string, ip: string): Promise<void> {
    const window = usersSettings(this.config).LOGIN_FAILURE_WINDOW_S;
    const [account, address] = this.keys(email, ip);
    await withTimeout(
      this.redis.multi().incr(account).expire(account, window, 'NX').incr(address).expire(address, window, 'NX').exec(),
      this.config.env.REDIS_REQUEST_TIMEOUT_MS,
      'login throttle',
    ).catch(() => undefined);
  }

  async recordSuccess(email: string, ip: string): Promise<void> {
    const [account] = this.keys(email, ip);
    await withTimeout(this.redis.del(account), this.config.env.REDIS_REQUEST_TIMEOUT_MS, 'login throttle').catch(() => undefined);
  }
}
