import { randomBytes } from 'node:crypto';
import Redis from 'ioredis';
import { CircuitBreakerStats, CircuitOpenError, RedisCircuitBreaker } from './circuit-breaker';

/** Against the test Redis: the state is shared, so two breaker objects act as two instances. */
describe('RedisCircuitBreaker', () => {
  const redis = new Redis(process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
  const prefix = `${process.env.TEST_RUN_ID ?? 'unit'}:${randomBytes(4).toString('hex')}:circuit`;
  const settings = { failureThreshold: 3, cooldownMs: 200, probeTimeoutMs: 1000 };
  const instanceA = new RedisCircuitBreaker(redis, prefix, settings, 1000);
  const instanceB = new RedisCircuitBreaker(redis, prefix, settings, 1000);
  const fail = () => Promise.reject(new Error('boom'));
  const ok = () => Promise.resolve('ok');

  afterAll(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  });

  it('opens after N consecutive failures counted across instances, and rejects without calling', async () => {
    await expect(instanceA.run('host-1', fail)).rejects.toThrow('boom');
    await expect(instanceB.run('host-1', fail)).rejects.toThrow('boom');
    await expect(instanceA.run('host-1', ok)).resolves.toBe('ok'); // a success resets the count
    for (const breaker of [instanceA, instanceB, instanceA]) await expect(breaker.run('host-1', fail)).rejects.toThrow('boom');
    const called = jest.fn(ok);
    await expect(instanceB.run('host-1', called)).rejects.toBeInstanceOf(CircuitOpenError);
    expect(called).not.toHaveBeenCalled();
    // Another destination is not affected.
    await expect(instanceB.run('host-2', ok)).resolves.toBe('ok');
  });

  it('after the cool-down lets exactly one concurrent caller probe; a failed probe re-opens, a good one closes', async () => {
    for (let i = 0; i < 3; i++) await expect(instanceA.run('host-3', fail)).rejects.toThrow('boom');
    await new Promise((r) => setTimeout(r, 250));
    let release!: () => void;
    const slowProbe = jest.fn(() => new Promise<string>((resolve) => (release = () => resolve('probed'))));
    const permits = [instanceA.run('host-3', slowProbe), ...Array.from({ length: 9 }, (_, i) => (i % 2 ? instanceA : instanceB).run('host-3', slowProbe))];
    await new Promise((r) => setTimeout(r, 50));
    expect(slowProbe).toHaveBeenCalledTimes(1);
    release();
    const outcomes = await Promise.allSettled(permits);
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    expect(outcomes.filter((o) => o.status === 'rejected' && o.reason instanceof CircuitOpenError)).toHaveLength(9);
    // Closed again: calls go through.
    await expect(instanceB.run('host-3', ok)).resolves.toBe('ok');

    for (let i = 0; i < 3; i++) await expect(instanceA.run('host-4', fail)).rejects.toThrow('boom');
    await new Promise((r) => setTimeout(r, 250));
    await expect(instanceA.run('host-4', fail)).rejects.toThrow('boom'); // the probe fails
    await expect(instanceB.run('host-4', ok)).rejects.toBeInstanceOf(CircuitOpenError); // open for another cool-down
  });

  it("keeps this instance's view for /metrics: circuits opened, calls refused, circuits open until the cool-down ends", async () => {
    const stats = new CircuitBreakerStats();
    // A cool-down long enough that a loaded machine still counts both circuits open below.
    const slow = { ...settings, cooldownMs: 1500 };
    const observed = new RedisCircuitBreaker(redis, prefix, slow, 1000, undefined, { record: stats, breaker: 'webhook' });
    const other = new RedisCircuitBreaker(redis, prefix, slow, 1000);
    for (let i = 0; i < 3; i++) await expect(observed.run('host-6', fail)).rejects.toThrow('boom');
    await expect(observed.run('host-6', ok)).rejects.toBeInstanceOf(CircuitOpenError);
    await expect(observed.run('host-6', ok)).rejects.toBeInstanceOf(CircuitOpenError);
    // Opened by the other instance: this one learns of it from a refused call.
    for (let i = 0; i < 3; i++) await expect(other.run('host-7', fail)).rejects.toThrow('boom');
    await expect(observed.run('host-7', ok)).rejects.toBeInstanceOf(CircuitOpenError);

    const entry = stats.byBreaker.get('webhook')!;
    expect({ opened: entry.opened, rejected: entry.rejected }).toEqual({ opened: 1, rejected: 3 });
    expect(stats.openCircuits('webhook')).toBe(2);
    expect(stats.openCircuits('webhook', Date.now() + slow.cooldownMs + 1)).toBe(0); // cool-down over
    await new Promise((r) => setTimeout(r, slow.cooldownMs + 50));
    await expect(observed.run('host-6', ok)).resolves.toBe('ok'); // the probe closes it
    expect(stats.byBreaker.get('webhook')!.openUntil.has('host-6')).toBe(false);
  });

  it('keeps no state without an expiry: many circuits (e.g. one per destination and owner) cannot pile up', async () => {
    const circuits = Array.from({ length: 20 }, (_, i) => `hooks.example:443/user-${i}`);
    for (const circuit of circuits) await expect(instanceA.run(circuit, fail)).rejects.toThrow('boom');
    for (const circuit of circuits) expect(await redis.pttl(`${prefix}:${circuit}`)).toBeGreaterThan(0);
    // A success deletes the state outright.
    await instanceB.run(circuits[0], ok);
    expect(await redis.exists(`${prefix}:${circuits[0]}`)).toBe(0);

    // A probe that ends neutrally after its state expired must not re-create it without a TTL.
    const circuit = 'hooks.example:443/expired-while-probing';
    for (let i = 0; i < 3; i++) await expect(instanceA.run(circuit, fail)).rejects.toThrow('boom');
    await new Promise((r) => setTimeout(r, 250));
    const neutralProbe = async () => {
      await redis.del(`${prefix}:${circuit}`); // the state's TTL ran out meanwhile
      throw new Error('our own fault');
    };
    await expect(instanceA.run(circuit, neutralProbe, () => 'neutral')).rejects.toThrow('our own fault');
    expect(await redis.exists(`${prefix}:${circuit}`)).toBe(0);
  });

  it('fails open when Redis cannot answer', async () => {
    const broken = new Redis('redis://127.0.0.1:1', { maxRetriesPerRequest: 0, enableOfflineQueue: false, lazyConnect: true, retryStrategy: () => null });
    broken.on('error', () => undefined);
    const breaker = new RedisCircuitBreaker(broken, prefix, settings, 200);
    await expect(breaker.run('host-5', ok)).resolves.toBe('ok');
    broken.disconnect();
  });
});
