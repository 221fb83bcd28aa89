import { generateKeyPairSync, sign } from 'node:crypto';
import request from 'supertest';
import { generateSigningKey, publicKeyPem } from '@app/platform';
import { createTestDatabase, eventually, query, startApi, type RunningApi } from '../support/test-env';
import { decodeClaims, decodeHeader, forgeToken, signUpAndLogin, TEST_SIGNING_KEY, type SignedUpUser } from '../support/auth-helpers';

describe('Auth: login, token checks, refresh rotation, logout (e2e)', () => {
  let db: string;
  let api: RunningApi;
  let user: SignedUpUser;

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

  describe('refuses forged and stale access tokens with 401 problem+json', () => {
    const kid = TEST_SIGNING_KEY.kid;
    const header = (extra: Record<string, unknown> = {}) => ({ alg: 'EdDSA', typ: 'JWT', kid, ...extra });
    const base = () => {
      const now = Math.floor(Date.now() / 1000);
      return { iss: 'mm-api', aud: 'mm-clients', sub: user.id, role: 'customer', sid: decodeClaims(user.accessToken).sid, iat: now, nbf: now, exp: now + 600 };
    };
    /** 401, as problem+json, with the body every bad token gets. */
    const refused = async (token: string) => {
      const response = await me(token).expect(401);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.body).toMatchObject({ status: 401, code: 'AUTH.UNAUTHENTICATED' });
    };

    it('signs with EdDSA and names its key (kid = the JWK thumbprint of the published key)', async () => {
      expect(decodeHeader(user.accessToken)).toEqual({ alg: 'EdDSA', typ: 'JWT', kid });
      const jwks = await request(api.url).get('/.well-known/jwks.json').expect(200);
      expect(jwks.body.keys).toEqual([expect.objectContaining({ kty: 'OKP', crv: 'Ed25519', kid, alg: 'EdDSA', use: 'sig' })]);
      expect(JSON.stringify(jwks.body)).not.toMatch(/"d"/);
    });

    it('accepts a token signed with the platform key and built the same way (control)', async () => {
      await me(forgeToken(header(), base(), TEST_SIGNING_KEY.privateKey)).expect(200);
      // A clock a few seconds ahead is tolerated.
      await me(forgeToken(header(), { ...base(), iat: base().iat + 10 }, TEST_SIGNING_KEY.privateKey)).expect(200);
    });

    it('a token signed with a different key, with its own kid or claiming ours', async () => {
      const other = generateSigningKey();
      await refused(forgeToken(header({ kid: other.kid }), base(), other.privateKey));
      await refused(forgeToken(header(), base(), other.privateKey));
      await refused(forgeToken(header(), { ...base(), role: 'admin' }, other.privateKey));
      const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
      await refused(forgeToken(header({ alg: 'ES256' }), base(), p256));
    });

    it('HS256 keyed with the public key (algorithm confusion), in every form it is published', async () => {
      const jwk = TEST_SIGNING_KEY.publicKey.export({ format: 'jwk' });
      for (const secret of [publicKeyPem(TEST_SIGNING_KEY), Buffer.from(jwk.x!, 'base64url'), JSON.stringify(jwk), TEST_SIGNING_KEY.publicKey.export({ format: 'der', type: 'spki' })]) {
        await refused(forgeToken(header({ alg: 'HS256' }), base(), secret));
        await refused(forgeToken({ alg: 'HS256', typ: 'JWT' }, base(), secret));
      }
    });

    it('alg: none', async () => {
      await refused(forgeToken(header({ alg: 'none' }), base(), null));
      await refused(forgeToken({ alg: 'none', typ: 'JWT' }, base(), null));
      await refused(forgeToken(header({ alg: 'none' }), base(), null) + 'AAAA');
    });

    it('another algorithm (RS256), or no kid', async () => {
      const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const rsHeader = Buffer.from(JSON.stringify(header({ alg: 'RS256' }))).toString('base64url');
      const rsBody = `${rsHeader}.${Buffer.from(JSON.stringify(base())).toString('base64url')}`;
      await refused(`${rsBody}.${sign('sha256', Buffer.from(rsBody), privateKey).toString('base64url')}`);
      await refused(forgeToken({ alg: 'EdDSA', typ: 'JWT' }, base(), TEST_SIGNING_KEY.privateKey));
    });

    it('a bad signature', async () => {
      const token = forgeToken(header(), base(), TEST_SIGNING_KEY.privateKey);
      const [h, payload] = token.split('.');
      const admin = Buffer.from(JSON.stringify({ ...base(), role: 'admin' })).toString('base64url');
      await refused(`${h}.${admin}.${token.split('.')[2]}`);
      await refused(`${h}.${payload}.${Buffer.alloc(64).toString('base64url')}`);
    });

    it('iat in the future (beyond a 30 s skew), iat missing, or issued longer ago than a token lives', async () => {
      const now = Math.floor(Date.now() / 1000);
      await refused(forgeToken(header(), { ...base(), iat: now + 120 }, TEST_SIGNING_KEY.privateKey));
      await refused(forgeToken(header(), { ...base(), iat: now + 86_400, nbf: now, exp: now + 600 }, TEST_SIGNING_KEY.privateKey));
      const withoutIat: Record<string, unknown> = base();
      delete withoutIat.iat;
      await refused(forgeToken(header(), withoutIat, TEST_SIGNING_KEY.privateKey));
      // Still unexpired, but older than ACCESS_TOKEN_TTL_S (900 s): e.g. minted before the TTL was lowered.
      await refused(forgeToken(header(), { ...base(), iat: now - 1000, nbf: now - 1000, exp: now + 60 }, TEST_SIGNING_KEY.privateKey));
    });

    it('expired', async () => {
      const now = Math.floor(Date.now() / 1000);
      await refused(forgeToken(header(), { ...base(), iat: now - 700, nbf: now - 700, exp: now - 1 }, TEST_SIGNING_KEY.privateKey));
    });

    it('wrong issuer or audience', async () => {
      await refused(forgeToken(header(), { ...base(), iss: 'someone-else' }, TEST_SIGNING_KEY.privateKey));
      await refused(forgeToken(header(), { ...base(), aud: 'other-clients' }, TEST_SIGNING_KEY.privateKey));
    });

    it('missing, malformed or non-bearer Authorization', async () => {
      await request(api.url).get('/v1/users/me').expect(401);
      await request(api.url).get('/v1/users/me').set('Authorization', `Basic ${user.accessToken}`).expect(401);
      await refused('not.a.jwt');
      await refused('x');
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

describe('Auth: a session has an absolute lifetime (SESSION_MAX_LIFETIME_S)', () => {
  let db: string;
  let api: RunningApi;
  const LIFETIME_S = 3;

  beforeAll(async () => {
    db = await createTestDatabase();
    // Refresh tokens would live 30 days; the session's end must win.
    api = await startApi(db, { env: { SESSION_MAX_LIFETIME_S: String(LIFETIME_S) } });
  });
  afterAll(async () => {
    await api?.close();
  });

  const refresh = (refreshToken: string) => request(api.url).post('/v1/auth/refresh').send({ refreshToken });
  const me = (token: string) => request(api.url).get('/v1/users/me').set('Authorization', `Bearer ${token}`);

  it('refreshes within the lifetime, but never past it: then 401 even with an unused, unexpired refresh token', async () => {
    const session = await signUpAndLogin(api.url, 'Mortal');
    const [{ ends_at }] = await query<{ ends_at: Date }>(
      db,
      `SELECT s.created_at + make_interval(secs => ${LIFETIME_S}) AS ends_at FROM users.sessions s WHERE s.user_id = $1`,
      [session.id],
    );
    const login = decodeClaims(session.accessToken);
    // The access token already ends with the session, not ACCESS_TOKEN_TTL_S (900 s) later.
    expect(login.exp).toBeLessThanOrEqual(Math.floor(ends_at.getTime() / 1000));

    const rotated = await refresh(session.refreshToken).expect(200);
    expect(rotated.body.expiresIn).toBeLessThanOrEqual(LIFETIME_S);
    await me(rotated.body.accessToken).expect(200);
    // The new refresh token's own expiry is capped at the session's end.
    const [token] = await query<{ expires_at: Date }>(
      db,
      'SELECT t.expires_at FROM users.refresh_tokens t JOIN users.sessions s ON s.id = t.session_id WHERE s.user_id = $1 AND t.used_at IS NULL',
      [session.id],
    );
    expect(token.expires_at.getTime()).toBeLessThanOrEqual(ends_at.getTime());

    await new Promise((r) => setTimeout(r, Math.max(0, ends_at.getTime() - Date.now()) + 1100));
    // Even a refresh token that is itself still valid (as one issued before the lifetime
    // was lowered would be) cannot outlive the session.
    await query(db, `UPDATE users.refresh_tokens SET expires_at = now() + interval '1 day' WHERE session_id IN (SELECT id FROM users.sessions WHERE user_id = $1) AND used_at IS NULL`, [session.id]);
    const late = await refresh(rotated.body.refreshToken).expect(401);
    expect(late.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(late.body.code).toBe('AUTH.INVALID_REFRESH_TOKEN');
    await me(rotated.body.accessToken).expect(401);
    // A new login starts a new session.
    const again = await request(api.url).post('/v1/auth/login').send({ email: session.email, password: session.password }).expect(200);
    await me(again.body.accessToken).expect(200);
  }, 20_000);
});
