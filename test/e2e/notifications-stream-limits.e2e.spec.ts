import request from 'supertest';
import { EventStreams } from '@app/platform';
import { decodeClaims, signUpAndLogin, testTokens, type SignedUpUser } from '../support/auth-helpers';
import { SseClient } from '../support/notifications';
import { createTestDatabase, eventually, startApi, type RunningApi } from '../support/test-env';

/**
 * Limits on GET /v1/notifications/stream (docs/api.md, "Live stream"): at most
 * STREAM_MAX_PER_USER streams per user and STREAM_MAX_PER_INSTANCE in all on one instance,
 * counted so that simultaneous opens cannot slip past the cap, and given back when a
 * stream closes; and no stream outlives the access token that opened it.
 */
describe('Live stream limits and token expiry (e2e)', () => {
  let db: string;
  let api: RunningApi; // STREAM_MAX_PER_USER 5
  let small: RunningApi; // STREAM_MAX_PER_INSTANCE 3
  const clients: SseClient[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    api = await startApi(db, { env: { STREAM_MAX_PER_USER: '5', NOTIFICATIONS_SSE_HEARTBEAT_MS: '200' } });
    small = await startApi(db, { env: { STREAM_MAX_PER_INSTANCE: '3', STREAM_MAX_PER_USER: '5' }, redisPrefix: api.config.env.REDIS_KEY_PREFIX });
  });
  afterAll(async () => {
    for (const client of clients) client.close();
    await small?.app.close();
    await api?.close();
  });

  async function connect(on: RunningApi, token: string): Promise<SseClient> {
    const client = await SseClient.connect(on.url, token);
    clients.push(client);
    return client;
  }

  function expectRefused(client: SseClient, code: string, retryAfter: string): void {
    expect(client.status).toBe(429);
    expect(client.headers!['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(client.headers!['retry-after']).toBe(retryAfter);
    expect(JSON.parse(client.text)).toMatchObject({ status: 429, title: 'Too Many Requests', code });
  }

  it('40 simultaneous opens by one user with a cap of 5: exactly 5 streams, 35 × 429 with Retry-After; closing gives places back', async () => {
    const ada = await signUpAndLogin(api.url, 'Ada');
    const opened = await Promise.all(Array.from({ length: 40 }, () => connect(api, ada.accessToken)));

    const streaming = opened.filter((c) => c.status === 200);
    const refused = opened.filter((c) => c.status !== 200);
    expect(streaming).toHaveLength(5);
    expect(refused).toHaveLength(35);
    for (const client of refused) expectRefused(client, 'STREAM.TOO_MANY_PER_USER', '30');
    expect(streaming.every((c) => !c.ended)).toBe(true);
    const streams = api.app.get(EventStreams);
    expect(streams.reservedCount(ada.id)).toBe(5);

    // The cap is the user's, not everyone's: another user streams from the same instance.
    const bob = await signUpAndLogin(api.url, 'Bob');
    expect((await connect(api, bob.accessToken)).status).toBe(200);

    // Two streams close: two places come back (once the server saw the sockets close), not more.
    streaming[0].close();
    streaming[1].close();
    await eventually(() => Promise.resolve(streams.reservedCount(ada.id) === 3));
    const again = await Promise.all(Array.from({ length: 4 }, () => connect(api, ada.accessToken)));
    expect(again.map((c) => c.status).sort()).toEqual([200, 200, 429, 429]);
  });

  it('caps the streams of one instance across users (STREAM_MAX_PER_INSTANCE), with a shorter Retry-After', async () => {
    const users = await Promise.all(['Cy', 'Di', 'Ed'].map((name) => signUpAndLogin(small.url, name)));
    const opened = await Promise.all(users.flatMap((u) => [connect(small, u.accessToken), connect(small, u.accessToken)]));

    expect(opened.filter((c) => c.status === 200)).toHaveLength(3);
    const refused = opened.filter((c) => c.status !== 200);
    expect(refused).toHaveLength(3);
    for (const client of refused) expectRefused(client, 'STREAM.INSTANCE_FULL', '5');
    expect(small.app.get(EventStreams).openCount).toBe(3);
    expect((await request(small.internalUrl).get('/metrics').expect(200)).text).toMatch(/^live_streams_open 3$/m);
    // The other instance has its own count.
    expect((await connect(api, users[0].accessToken)).status).toBe(200);

    opened.find((c) => c.status === 200)!.close();
    await eventually(() => Promise.resolve(small.app.get(EventStreams).reservedCount() === 2));
    expect((await connect(small, users[2].accessToken)).status).toBe(200);
  });

  it('ends a stream when its access token expires, with a last `token-expired` event, and gives its place back', async () => {
    const fay: SignedUpUser = await signUpAndLogin(api.url, 'Fay');
    // A real token of Fay's session, valid for about 2 s (ACCESS_TOKEN_TTL_S cannot go below 30).
    const { token } = testTokens(api.config).sign(
      { userId: fay.id, role: 'customer', sessionId: String(decodeClaims(fay.accessToken).sid) },
      { notAfter: Math.floor(Date.now() / 1000) + 2 },
    );
    const expiresAtMs = Number(decodeClaims(token).exp) * 1000;

    const stream = await connect(api, token);
    expect(stream.status).toBe(200);
    expect(api.app.get(EventStreams).reservedCount(fay.id)).toBe(1);
    // A stream opened with a long-lived token stays open meanwhile.
    const longLived = await connect(api, fay.accessToken);

    await eventually(() => Promise.resolve(stream.ended), 6000);
    const last = stream.events.at(-1)!;
    expect(last.event).toBe('token-expired');
    expect(JSON.parse(last.data)).toEqual({ reason: 'token-expired', expiredAt: new Date(expiresAtMs).toISOString() });
    // Not before the token's exp (same clock: client and server run in this process).
    expect(Date.now()).toBeGreaterThanOrEqual(expiresAtMs);
    await eventually(() => Promise.resolve(api.app.get(EventStreams).reservedCount(fay.id) === 1));
    expect(longLived.ended).toBe(false);
  });
});
