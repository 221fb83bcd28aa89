import request from 'supertest';
import { clientAddressKey, ConfigError, trustProxyOption } from '@app/platform';
import { createTestDatabase, startApi, testConfig, uniqueEmail, type RunningApi } from '../support/test-env';

/**
 * Issue 12: the client address keys the per-address login limit and the global rate
 * limit, so a client must not choose it. X-Forwarded-For counts only as far as
 * TRUST_PROXY says (off by default), and IPv6 clients count per /64.
 */
describe('Security: the client address behind proxies (TRUST_PROXY)', () => {
  describe('clientAddressKey: the key a limit counts an address under', () => {
    it.each([
      ['203.0.113.7', '203.0.113.7'],
      ['2001:db8:1:2::a', '2001:db8:1:2::/64'],
      ['2001:db8:1:2:ffff:ffff:ffff:ffff', '2001:db8:1:2::/64'],
      ['2001:0DB8:0001:0002:0:0:0:1', '2001:db8:1:2::/64'],
      ['2001:db8::1', '2001:db8:0:0::/64'],
      ['fe80::1%eth0', 'fe80:0:0:0::/64'],
      ['::ffff:192.0.2.9', '192.0.2.9'],
      ['::ffff:c000:209', '192.0.2.9'],
      ['::1', '::1'],
      ['', 'unknown'],
      [undefined, 'unknown'],
    ])('%s → %s', (address, key) => {
      expect(clientAddressKey(address)).toBe(key);
    });

    it('puts two addresses of one /64 under one key and the next /64 under another', () => {
      expect(clientAddressKey('2001:db8:aa:1::1')).toBe(clientAddressKey('2001:db8:aa:1:8000::2'));
      expect(clientAddressKey('2001:db8:aa:1::1')).not.toBe(clientAddressKey('2001:db8:aa:2::1'));
    });
  });

  describe('TRUST_PROXY configuration', () => {
    it.each([
      ['false', false],
      ['0', false],
      ['1', 1],
      ['2', 2],
      ['10.0.0.0/8, 192.168.1.7,fd00::/8', ['10.0.0.0/8', '192.168.1.7', 'fd00::/8']],
      ['loopback,uniquelocal', ['loopback', 'uniquelocal']],
    ])('%s → %j', (value, option) => {
      expect(trustProxyOption(value)).toEqual(option);
    });

    it('is off by default', () => {
      expect(testConfig('postgres://x@127.0.0.1/db').env.TRUST_PROXY).toBe('false');
    });

    it.each(['true', '10.0.0.0/33', 'proxy.internal', '1.2.3.4/8/1', ','])('refuses %j at boot, naming the variable', (value) => {
      expect(() => testConfig('postgres://x@127.0.0.1/db', { env: { TRUST_PROXY: value } })).toThrow(ConfigError);
      expect(() => testConfig('postgres://x@127.0.0.1/db', { env: { TRUST_PROXY: value } })).toThrow(/TRUST_PROXY/);
    });
  });

  describe('over HTTP', () => {
    let db: string;
    let direct: RunningApi;
    let behindProxy: RunningApi;
    let trustingOtherProxies: RunningApi;

    beforeAll(async () => {
      db = await createTestDatabase();
      // Per-account limit out of the way: only the per-address limit (20, the default) counts.
      const env = { LOGIN_MAX_FAILURES_PER_ACCOUNT: '1000' };
      direct = await startApi(db, { env });
      behindProxy = await startApi(db, { env: { ...env, TRUST_PROXY: '1' } });
      // The test client (127.0.0.1) is not one of these proxies: its header is ignored.
      trustingOtherProxies = await startApi(db, { env: { ...env, TRUST_PROXY: '10.0.0.0/8,fd00::/8' } });
    });
    afterAll(async () => {
      await direct?.close();
      await behindProxy?.close();
      await trustingOtherProxies?.close();
    });

    const failedLogin = (api: RunningApi, forwardedFor: string) =>
      request(api.url).post('/v1/auth/login').set('X-Forwarded-For', forwardedFor).send({ email: uniqueEmail('xff'), password: 'not the password' });
    const remaining = async (api: RunningApi, forwardedFor: string) =>
      Number((await request(api.url).post('/v1/auth/refresh').set('X-Forwarded-For', forwardedFor).send({ refreshToken: 'x' })).headers['x-ratelimit-remaining']);

    it('without TRUST_PROXY, made-up X-Forwarded-For values do not escape the per-address login limit: 429 after 20', async () => {
      const statuses: number[] = [];
      for (let i = 0; i < 30; i++) statuses.push((await failedLogin(direct, `198.51.100.${i + 1}`)).status);
      expect(statuses.slice(0, 20)).toEqual(Array(20).fill(401));
      expect(statuses.slice(20)).toEqual(Array(10).fill(429));
    });

    it('without TRUST_PROXY, the global rate limit counts the peer, whatever X-Forwarded-For says', async () => {
      const first = await remaining(direct, '192.0.2.1');
      expect(await remaining(direct, '192.0.2.2')).toBe(first - 1);
      expect(await remaining(direct, '2001:db8::77')).toBe(first - 2);
    });

    it('with a list of proxies that does not include the peer, X-Forwarded-For is ignored', async () => {
      const first = await remaining(trustingOtherProxies, '192.0.2.1');
      expect(await remaining(trustingOtherProxies, '192.0.2.2')).toBe(first - 1);
    });

    it('with TRUST_PROXY=1, the address the proxy appended is the client: each has its own login limit', async () => {
      // 25 clients, one failure each: none is limited.
      for (let i = 0; i < 25; i++) await failedLogin(behindProxy, `198.51.100.${i + 1}`).expect(401);
      // One client: 20 failures, then 429, whatever it put in front of the proxy's entry.
      for (let i = 0; i < 20; i++) await failedLogin(behindProxy, `10.9.9.${i}, 203.0.113.5`).expect(401);
      const limited = await failedLogin(behindProxy, `10.9.9.99, 203.0.113.5`).expect(429);
      expect(limited.body.code).toBe('AUTH.TOO_MANY_FAILED_LOGINS');
      // Another client behind the same proxy is not affected.
      await failedLogin(behindProxy, '203.0.113.6').expect(401);
    });

    it('with TRUST_PROXY=1, IPv6 clients count per /64 for the login limit', async () => {
      for (let i = 0; i < 20; i++) await failedLogin(behindProxy, `2001:db8:77:1::${(i + 1).toString(16)}`).expect(401);
      await failedLogin(behindProxy, '2001:db8:77:1:ffff::1').expect(429);
      await failedLogin(behindProxy, '2001:db8:77:2::1').expect(401);
    });

    it('with TRUST_PROXY=1, the global rate limit counts the forwarded client, IPv6 per /64', async () => {
      const a = await remaining(behindProxy, '192.0.2.10');
      expect(await remaining(behindProxy, '192.0.2.11')).toBe(a);
      const v6 = await remaining(behindProxy, '2001:db8:aa:1::1');
      expect(await remaining(behindProxy, '2001:db8:aa:1:8000::2')).toBe(v6 - 1);
      expect(await remaining(behindProxy, '2001:db8:aa:2::1')).toBe(v6);
    });
  });
});
