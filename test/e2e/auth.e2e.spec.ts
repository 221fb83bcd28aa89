import { createHmac, generateKeyPairSync, sign } from 'node:crypto';
import request from 'supertest';
import { createTestDatabase, eventually, query, startApi, type RunningApi } from '../support/test-env';
import { decodeClaims, forgeToken, signUpAndLogin, type SignedUpUser } from '../support/auth-helpers';

describe('Auth: login, token checks, refresh rotation, logout (e2e)', () => {
  let db: string;
  let api: RunningApi;
  let user: SignedUpUser;
  const secret = () => api.config.env.JWT_SECRET;

  beforeAll(async () => {
    db = await createTestDatabase();
    api = await startApi(db, { env: { LOGIN_MAX_FAILURES_PER_ACCOUNT: '3', LOGIN_MAX_FAILURES_PER_IP: '1000' } });
    user = await signUpAndLogin(api.url, 'Auth User');
  });
  afterAll(async () => {
    await api?.close();
  });

  const me = (token: string) => request(api.url).get('/v1/users/me').set('Authorization', `Bearer ${token}`);

  it('logs in with a bearer pair whose access token carries issuer, audience and expiry', async () => {
    const login = await request(api.url).post('/v1/auth/login').send({ email: user.email.toUpperCase(), password: user.password }).expect(200);
    expect(login.body).toEqual({ accessToken: expect.any(String), refreshToken: expect.any(String), tokenType: 'Bearer', expiresIn: 900 });
    const claims = decodeClaims(login.body.accessToken);
    expect(claims).toMatchObject({ iss: 'mm-api', aud: 'mm-clients', sub: user.id, role: 'customer' });
    expect((claims.exp as number) - (claims.iat as number)).toBe(900);
    await me(login.body.accessToken).expect(200);
  });

  it('answers the same 401 body for an unknown email and for a wrong password', async () => {
    const unknown = await request(api.url).post('/v1/auth/login').send({ email: 'nobody-here@example.com', password: 'whatever-long' }).expect(401);
    const wrong = await request(api.url).post('/v1/auth/login').send({ email: user.email, password: 'wrong password!' }).expect(401);
    expect(unknown.body).toEqual(wrong.body);
    expect(unknown.body).toMatchObject({ code: 'AUTH.INVALID_CREDENTIALS', status: 401 });
    expect(unknown.headers['www-authenticate']).toBe('Bearer');
    // Login with the right password after one failure still works (below the limit).
    await request(api.url).post('/v1/auth/login').send({ email: user.email, password: user.password }).expect(200);
  });

  describe('refuses forged and stale access tokens with 401', () => {
    const base = () => {
      const now = Math.floor(Date.now() / 1000);
      return { iss: 'mm-api', aud: 'mm-clients', sub: user.id, role: 'customer', sid: decodeClaims(user.accessToken).sid, iat: now, nbf: now, exp: now + 600 };
    };

    it('accepts a correctly signed token built the same way (control)', async () => {
      await me(forgeToken({ alg: 'HS256', typ: 'JWT' }, base(), secret())).expect(200);
    });

    it('alg: none', async () => {
      await me(forgeToken({ alg: 'none', typ: 'JWT' }, base(), null)).expect(401);
      await me(forgeToken({ alg: 'none', typ: 'JWT' }, base(), null) + 'AAAA').expect(401);
    });

    it('another algorithm (HS512 with the right secret, RS256)', async () => {
      const header = { alg: 'HS512', typ: 'JWT' };
      const body = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(base())).toString('base64url')}`;
      await me(`${body}.${createHmac('sha512', secret()).update(body).digest('base64url')}`).expect(401);
      const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const rsHeader = Buffer.from(JSON.stringify({ alg: 'RS256', typ: 'JWT' })).toString('base64url');
      const rsBody = `${rsHeader}.${Buffer.from(JSON.stringify(base())).toString('base64url')}`;
      await me(`${rsBody}.${sign('sha256', Buffer.from(rsBody), privateKey).toString('base64url')}`).expect(401);
    });

    it('a bad signature', async () => {
      await me(forgeToken({ alg: 'HS256', typ: 'JWT' }, base(), 'not-the-server-secret-not-the-server-secret')).expect(401);
      await me(forgeToken({ alg: 'HS256', typ: 'JWT' }, { ...base(), role: 'admin' }, 'x'.repeat(40))).expect(401);
    });

    it('expired', async () => {
      const now = Math.floor(Date.now() / 1000);
      await me(forgeToken({ alg: 'HS256', typ: 'JWT' }, { ...base(), iat: now - 1000, nbf: now - 1000, exp: now - 1 }, secret())).expect(401);
    });

    it('wrong issuer or audience', async () => {
      await me(forgeToken({ alg: 'HS256', typ: 'JWT' }, { ...base(), iss: 'someone-else' }, secret())).expect(401);
      await me(forgeToken({ alg: 'HS256', typ: 'JWT' }, { ...base(), aud: 'other-clients' }, secret())).expect(401);
    });

    it('missing, malformed or non-bearer Authorization', async () => {
      await request(api.url).get('/v1/users/me').expect(401);
      await request(api.url).get('/v1/users/me').set('Authorization', `Basic ${user.accessToken}`).expect(401);
      await me('not.a.jwt').expect(401);
      await me('x').expect(401);
    });
  });

  it('rotates the refresh token: the new pair works, the old token stops working', async () => {
    const session = await signUpAndLogin(api.url, 'Rotator');
    const first = await request(api.url).post('/v1/auth/refresh').send({ refreshToken: session.refreshToken }).expect(200);
    expect(first.body.refreshToken).not.toBe(session.refreshToken);
    await me(first.body.accessToken).expect(200);
    const second = await request(api.url).post('/v1/auth/refresh').send({ refreshToken: first.body.refreshToken }).expect(200);
    await me(second.body.accessToken).expect(200);
    const stored = await query<{ n: string }>(db, 'SELECT count(*) AS n FROM users.refresh_tokens t JOIN users.sessions s ON s.id = t.session_id WHERE s.user_id = $1', [session.id]);
    expect(stored[0].n).toBe('3');
    // Only hashes are stored.
    const raw = await query<{ token_hash: Buffer }>(db, 'SELECT token_hash FROM users.refresh_tokens t JOIN users.sessions s ON s.id = t.session_id WHERE s.user_id = $1', [session.id]);
    expect(raw.map((r) => r.token_hash.toString('base64url'))).not.toContain(session.refreshToken);
  });

  it('revokes the whole session when a rotated refresh token is reused', async () => {
    const session = await signUpAndLogin(api.url, 'Victim');
    const rotated = await request(api.url).post('/v1/auth/refresh').send({ refreshToken: session.refreshToken }).expect(200);
    // The attacker replays the old token: 401, and the family is gone.
    const reuse = await request(api.url).post('/v1/auth/refresh').send({ refreshToken: session.refreshToken }).expect(401);
    expect(reuse.body.code).toBe('AUTH.INVALID_REFRESH_TOKEN');
    await request(api.url).post('/v1/auth/refresh').send({ refreshToken: rotated.body.refreshToken }).expect(401);
    await me(rotated.body.accessToken).expect(401);
    await me(session.accessToken).expect(401);
  });

  it('refuses unknown refresh tokens', async () => {
    await request(api.url).post('/v1/auth/refresh').send({ refreshToken: 'made-up' }).expect(401);
    await request(api.url).post('/v1/auth/refresh').send({}).expect(400);
  });

  it('logout: 204, then access and refresh tokens of that session fail at once; other sessions live on', async () => {
    const session = await signUpAndLogin(api.url, 'Leaver');
    const other = await request(api.url).post('/v1/auth/login').send({ email: session.email, password: session.password }).expect(200);
    await request(api.url).post('/v1/auth/logout').set('Authorization', `Bearer ${session.accessToken}`).expect(204);
    await me(session.accessToken).expect(401);
    await request(api.url).post('/v1/auth/refresh').send({ refreshToken: session.refreshToken }).expect(401);
    await me(other.body.accessToken).expect(200);
    await request(api.url).post('/v1/auth/logout').expect(401);
  });

  it('throttles failed logins per account: 429 with Retry-After, shared in Redis', async () => {
    const victim = await signUpAndLogin(api.url, 'Throttled');
    for (let i = 0; i < 3; i++) {
      await request(api.url).post('/v1/auth/login').send({ email: victim.email, password: `wrong-password-${i}` }).expect(401);
    }
    const blocked = await request(api.url).post('/v1/auth/login').send({ email: victim.email, password: victim.password }).expect(429);
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(blocked.headers['retry-after'])).toBeLessThanOrEqual(900);
    expect(blocked.body).toMatchObject({ status: 429, code: 'AUTH.TOO_MANY_FAILED_LOGINS' });
    // Another account from the same address is not blocked (per-address limit is 1000 here).
    await request(api.url).post('/v1/auth/login').send({ email: user.email, password: user.password }).expect(200);
  });

  it('the session-revoked event reaches the users inbox (revocation also flows through the outbox)', async () => {
    const session = await signUpAndLogin(api.url, 'Evented');
    await request(api.url).post('/v1/auth/logout').set('Authorization', `Bearer ${session.accessToken}`).expect(204);
    await eventually(async () => (await query(db, `SELECT 1 FROM users.inbox WHERE event_type = 'users.session-revoked.v1'`)).length > 0);
  });
});
