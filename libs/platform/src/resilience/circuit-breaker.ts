import { Inject, Injectable } from '@nestjs/common';
import type Redis from 'ioredis';
import type { Logger } from 'pino';
import { APP_CONFIG } from '../config/config.module';
import type { AppConfig } from '../config/app-config';
import { ROOT_LOGGER } from '../logging/logging.module';
import { REDIS_CLIENT } from '../redis/redis.module';
import { withTimeout } from '../redis/redis-connection';

export interface CircuitBreakerSettings {
  /** Consecutive failures that open the circuit. */
  failureThreshold: number;
  /** How long an open circuit rejects calls before it lets one probe through. */
  cooldownMs: number;
  /** How long a probe may take before another caller may probe instead (a crashed prober). */
  probeTimeoutMs: number;
}

/** Thrown by `run` without calling the protected function while the circuit is open. */
export class CircuitOpenError extends Error {
  override name = 'CircuitOpenError';
  constructor(readonly circuit: string, readonly retryInMs: number) {
    super(`circuit open for ${circuit}; no call made (retry in ~${Math.ceil(retryInMs / 1000)} s)`);
  }
}

/** How an outcome counts: `neutral` outcomes (the caller's own fault) neither open nor close. */
export type CallOutcome = 'success' | 'failure' | 'neutral';

// KEYS[1] circuit; ARGV now, probeTimeoutMs → {allowed 0|1, probe 0|1, retryInMs}
const ACQUIRE = `
local openUntil = tonumber(redis.call('HGET', KEYS[1], 'openUntil') or '0')
if openUntil == 0 then return {1, 0, 0} end
local now = tonumber(ARGV[1])
if now < openUntil then return {0, 0, openUntil - now} end
local probeUntil = tonumber(redis.call('HGET', KEYS[1], 'probeUntil') or '0')
if now < probeUntil then return {0, 0, probeUntil - now} end
redis.call('HSET', KEYS[1], 'probeUntil', now + tonumber(ARGV[2]))
return {1, 1, 0}`;

// KEYS[1]; ARGV now, threshold, cooldownMs, ttlMs, probe → 1 when the circuit is now open
const FAILURE = `
local now = tonumber(ARGV[1])
local openUntil = tonumber(redis.call('HGET', KEYS[1], 'openUntil') or '0')
if ARGV[5] == '1' then
  redis.call('HSET', KEYS[1], 'openUntil', now + tonumber(ARGV[3]), 'probeUntil', 0)
else
  local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
  if openUntil == 0 and failures >= tonumber(ARGV[2]) then
    redis.call('HSET', KEYS[1], 'openUntil', now + tonumber(ARGV[3]))
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return redis.call('HGET', KEYS[1], 'openUntil') and 1 or 0`;

// KEYS[1]; ARGV probe → a probe's success (or any success while closed) closes and resets
const SUCCESS = `
local openUntil = tonumber(redis.call('HGET', KEYS[1], 'openUntil') or '0')
if ARGV[1] == '1' or openUntil == 0 then redis.call('DEL', KEYS[1]) end
return 0`;

// KEYS[1]: a probe that ended neutrally hands the probe slot back. Only to a state that still
// exists: an HSET on an expired key would create one without a TTL, and keys (one per
// circuit, e.g. per destination and owner) must all expire.
const RELEASE = `if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'probeUntil', 0) end return 0`;

const STATE_TTL_MS = 24 * 3600_000;

/** Most circuits one breaker family remembers as open for the metrics (per-owner keys could be many). */
const MAX_TRACKED_OPEN_CIRCUITS = 10_000;

/**
 * What this instance has seen of its breakers, for /metrics: calls refused, circuits it
 * opened, and circuits known open until their cool-down ends. The state itself lives in
 * Redis and is shared; this is one instance's view of it.
 */
export class CircuitBreakerStats {
  readonly byBreaker = new Map<string, { rejected: number; opened: number; openUntil: Map<string, number> }>();

  private entry(breaker: string) {
    let entry = this.byBreaker.get(breaker);
    if (!entry) this.byBreaker.set(breaker, (entry = { rejected: 0, opened: 0, openUntil: new Map() }));
    return entry;
  }

  rejected(breaker: string, circuit: string, retryInMs: number): void {
    const entry = this.entry(breaker);
    entry.rejected += 1;
    this.markOpen(entry.openUntil, circuit, Date.now() + retryInMs);
  }

  opened(breaker: string, circuit: string, cooldownMs: number): void {
    const entry = this.entry(breaker);
    entry.opened += 1;
    this.markOpen(entry.openUntil, circuit, Date.now() + cooldownMs);
  }

  closed(breaker: string, circuit: string): void {
    this.byBreaker.get(breaker)?.openUntil.delete(circuit);
  }

  openCircuits(breaker: string, now = Date.now()): number {
    const openUntil = this.byBreaker.get(breaker)?.openUntil;
    if (!openUntil) return 0;
    for (const [circuit, until] of openUntil) if (until <= now) openUntil.delete(circuit);
    return openUntil.size;
  }

  private markOpen(openUntil: Map<string, number>, circuit: string, until: number): void {
    openUntil.delete(circuit); // re-insert: the map's order is oldest first
    openUntil.set(circuit, until);
    if (openUntil.size > MAX_TRACKED_OPEN_CIRCUITS) openUntil.delete(openUntil.keys().next().value as string);
  }
}

/**
 * A circuit breaker whose state lives in Redis, so every instance sees the same circuit:
 * closed → (threshold consecutive failures) → open → (cool-down) → half-open, where exactly
 * one caller probes; its success closes the circuit, its failure opens it for another
 * cool-down. Each transition is one Lua script, so concurrent callers cannot race it.
 * When Redis cannot answer, the breaker fails open (calls proceed): it protects others
 * from us, it must not become an outage of its own.
 */
export class RedisCircuitBreaker {
  constructor(
    private readonly redis: Redis,
    private readonly keyPrefix: string,
    private readonly settings: CircuitBreakerSettings,
    private readonly timeoutMs: number,
    private readonly logger?: Logger,
    private readonly stats?: { record: CircuitBreakerStats; breaker: string },
  ) {}

  private key(circuit: string): string {
    return `${this.keyPrefix}:${circuit}`;
  }

  /** Calls `fn` unless the circuit is open; `classify` decides how an outcome counts. */
  async run<T>(circuit: string, fn: () => Promise<T>, classify: (error: unknown) => CallOutcome = () => 'failure'): Promise<T> {
    const permit = await this.acquire(circuit);
    if (!permit.allowed) throw new CircuitOpenError(circuit, permit.retryInMs);
    let result: T;
    try {
      result = await fn();
    } catch (error) {
      const outcome = classify(error);
      if (outcome === 'failure') await this.recordFailure(circuit, permit.probe);
      else if (outcome === 'success') await this.recordSuccess(circuit, permit.probe);
      else if (permit.probe) await this.eval(RELEASE, circuit, []);
      throw error;
    }
    await this.recordSuccess(circuit, permit.probe);
    return result;
  }

  async acquire(circuit: string): Promise<{ allowed: true; probe: boolean } | { allowed: false; retryInMs: number }> {
    const reply = (await this.eval(ACQUIRE, circuit, [Date.now(), this.settings.probeTimeoutMs])) as [number, number, number] | undefined;
    if (!reply) return { allowed: true, probe: false };
    const [allowed, probe, retryInMs] = reply;
    if (allowed !== 1) this.stats?.record.rejected(this.stats.breaker, circuit, retryInMs);
    return allowed === 1 ? { allowed: true, probe: probe === 1 } : { allowed: false, retryInMs };
  }

  async recordFailure(circuit: string, probe: boolean): Promise<void> {
    const s = this.settings;
    const opened = await this.eval(FAILURE, circuit, [Date.now(), s.failureThreshold, s.cooldownMs, Math.max(STATE_TTL_MS, s.cooldownMs * 2), probe ? 1 : 0]);
    if (opened === 1) {
      this.logger?.debug({ circuit }, 'circuit breaker open');
      this.stats?.record.opened(this.stats.breaker, circuit, s.cooldownMs);
    }
  }

  async recordSuccess(circuit: string, probe: boolean): Promise<void> {
    await this.eval(SUCCESS, circuit, [probe ? 1 : 0]);
    if (probe) this.stats?.record.closed(this.stats.breaker, circuit);
  }

  private async eval(script: string, circuit: string, args: (string | number)[]): Promise<unknown> {
    try {
      return await withTimeout(this.redis.eval(script, 1, this.key(circuit), ...args), this.timeoutMs, 'circuit breaker');
    } catch (error) {
      this.logger?.warn({ err: error, circuit }, 'circuit breaker state unavailable; failing open');
      return undefined;
    }
  }
}

/** Makes named, Redis-backed circuit breakers that share the process's Redis client. */
@Injectable()
export class CircuitBreakers {
  readonly stats = new CircuitBreakerStats();

  constructor(
    @Inject(REDIS_CLIENT) private readonly redis: Redis,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(ROOT_LOGGER) private readonly logger: Logger,
  ) {}

  /** Circuits of one family, e.g. `<module>:webhook` keyed by destination host. */
  create(name: string, settings: CircuitBreakerSettings): RedisCircuitBreaker {
    return new RedisCircuitBreaker(
      this.redis,
      `${this.config.env.REDIS_KEY_PREFIX}:circuit:${name}`,
      settings,
      Math.max(this.config.env.REDIS_REQUEST_TIMEOUT_MS * 4, 500),
      this.logger.child({ component: 'circuit-breaker', breaker: name }),
      { record: this.stats, breaker: name },
    );
  }
}
