import { setTimeout as sleep } from 'node:timers/promises';
import request, { type Response } from 'supertest';
import { createTestDatabase, startApi, uniqueEmail, type RunningApi } from '../support/test-env';
import { signUpAndLogin } from '../support/auth-helpers';

/** Short, so the test can watch a block end; long enough for a burst of 50 requests. */
const WINDOW_S = 6;

/**
 * Issue 12: the failed-login limits must hold when the attempts arrive at the same time.
 * Each attempt takes its place in Redis atomically before the password is verified, so a
 * burst cannot slip through a check made before any of its attempts was counted.
 */
describe('Security: failed-login limits under concurrency (e2e)', () => {
  let db: string;
  /** Per-account limit 5 (the default), per-address limit out of the way. */
  let accountApi: RunningApi;
  /** Per-address limit 20 (the default), per-account limit out of the way. */
  let addressApi: RunningApi;

  beforeAll(async () => {
    db = await createTestDatabase();
    accountApi = await startApi(db, { env: { LOGIN_MAX_FAILURES_PER_IP: '100000', LOGIN_FAILURE_WINDOW_S: String(WINDOW_S) } });
    addressApi = await startApi(db, { env: { LOGIN_MAX_FAILURES_PER_ACCOUNT: '1000' } });
  });
  afterAll(async () => {
    await accountApi?.close();
    await addressApi?.close();
  });

  const login = (api: RunningApi, email: string, password: string) => request(api.url).post('/v1/auth/login').send({ email, password });

  function expectThrottled(response: Response, maxRetryAfter: number): void {
    expect(response.status).toBe(429);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(Number(response.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(response.headers['retry-after'])).toBeLessThanOrEqual(maxRetryAfter);
    expect(response.body).toMatchObject({ status: 429, code: 'AUTH.TOO_MANY_FAILED_LOGINS', type: '/problems/auth/too-many-failed-logins' });
  }

  it('50 concurrent wrong passwords for one account: at most 5 are verified (401), the rest 429; the right password is refused until the window ends', async () => {
    const victim = await signUpAndLogin(accountApi.url, 'Concurrent Victim');
    const responses = await Promise.all(Array.from({ length: 50 }, (_, i) => login(accountApi, victim.email, `wrong password ${i}`)));
    const verified = responses.filter((r) => r.status === 401);
    const throttled = responses.filter((r) => r.status === 429);
    expect(verified.length + throttled.length).toBe(50);
    expect(verified.length).toBeLessThanOrEqual(5);
    for (const response of verified) expect(response.body.code).toBe('AUTH.INVALID_CREDENTIALS');
    for (const response of throttled) expectThrottled(response, WINDOW_S);

    // The right password is refused too, until the window that the failures opened ends.
    const blocked = await login(accountApi, victim.email, victim.password);
    expectThrottled(blocked, WINDOW_S);
    await sleep(Number(blocked.headers['retry-after']) * 1000 + 250);
    await login(accountApi, victim.email, victim.password).expect(200);
  });

  it('a right password is not counted as a failure, and clears the account\'s failures', async () => {
    const user = await signUpAndLogin(accountApi.url, 'Typo Prone');
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 4; i++) await login(accountApi, user.email, `typo ${round}-${i}`).expect(401);
      await login(accountApi, user.email, user.password).expect(200);
    }
    // Concurrent right passwords within the limit all succeed and leave nothing counted.
    const together = await Promise.all(Array.from({ length: 5 }, () => login(accountApi, user.email, user.password)));
    expect(together.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    for (let i = 0; i < 4; i++) await login(accountApi, user.email, `after ${i}`).expect(401);
    await login(accountApi, user.email, user.password).expect(200);
  });

  it('successful sign-ins from one address do not use up the per-address limit (20)', async () => {
    const user = await signUpAndLogin(addressApi.url, 'Frequent');
    for (let i = 0; i < 25; i++) await login(addressApi, user.email, user.password).expect(200);
  });

  it('50 concurrent wrong sign-ins for different accounts from one address: at most 20 verified, the rest 429, then even a right password from there is refused', async () => {
    const user = await signUpAndLogin(addressApi.url, 'Same Office');
    const responses = await Promise.all(Array.from({ length: 50 }, (_, i) => login(addressApi, uniqueEmail(`spray${i}`), 'guessed password')));
    const verified = responses.filter((r) => r.status === 401);
    const throttled = responses.filter((r) => r.status === 429);
    expect(verified.length + throttled.length).toBe(50);
    expect(verified.length).toBeLessThanOrEqual(20);
    for (const response of throttled) expectThrottled(response, 900);
    expectThrottled(await login(addressApi, user.email, user.password), 900);
  });
});
