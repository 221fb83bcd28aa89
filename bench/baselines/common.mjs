// Shared pieces of the hand-written baselines: plain Fastify 5, one process, the same
// pg pool size and Redis key layout as the API, and the same EdDSA/ES256 JWT check with
// node:crypto (public keys only, from AUTH_PUBLIC_KEYS).
import { createHash, createPublicKey, verify as verifySignature } from 'node:crypto';
import Fastify from 'fastify';
import Redis from 'ioredis';
import pg from 'pg';

export const env = process.env;
export const PREFIX = env.REDIS_KEY_PREFIX ?? 'mm';

export function createServer() {
  const app = Fastify({ logger: false });
  app.get('/health/live', async () => ({ status: 'ok' }));
  return app;
}

export async function listen(app) {
  await app.listen({ host: env.HOST ?? '127.0.0.1', port: Number(env.PORT ?? 0) });
  const close = async () => {
    await app.close();
    process.exit(0);
  };
  process.once('SIGTERM', close);
  process.once('SIGINT', close);
}

export function createRedis() {
  const redis = new Redis(env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
  return redis;
}

/** A pg pool connected as the module role, like the API's module connection. */
export function createPool() {
  if (!env.DATABASE_URL) throw new Error('DATABASE_URL (the module role connection) is required');
  return new pg.Pool({
    connectionString: env.DATABASE_URL,
    max: Number(env.DB_POOL_MAX ?? 10),
    connectionTimeoutMillis: Number(env.DB_CONNECT_TIMEOUT_MS ?? 2000),
    statement_timeout: Number(env.DB_STATEMENT_TIMEOUT_MS ?? 2000),
    options: `-c search_path=${env.DB_SCHEMA ?? 'users'}`,
  });
}

/** The product's kid: RFC 7638 JWK thumbprint (libs/platform/src/auth/token-keys.ts). */
function thumbprint(publicKey) {
  const jwk = publicKey.export({ format: 'jwk' });
  const members = jwk.kty === 'OKP' ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x } : { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y };
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}

/** AUTH_PUBLIC_KEYS as the product reads it: a JWKS/JWK JSON or PEM public keys → kid → key. */
function publicKeySet(text) {
  const value = text.replace(/\\n/g, '\n').trim();
  const keys = value.startsWith('{') || value.startsWith('[')
    ? (() => {
        const parsed = JSON.parse(value);
        return (Array.isArray(parsed) ? parsed : Array.isArray(parsed.keys) ? parsed.keys : [parsed]).map((jwk) => createPublicKey({ key: jwk, format: 'jwk' }));
      })()
    : (value.match(/-----BEGIN PUBLIC KEY-----[\s\S]+?-----END PUBLIC KEY-----/g) ?? []).map((pem) => createPublicKey(pem));
  const set = new Map();
  for (const key of keys) {
    const alg = key.asymmetricKeyType === 'ed25519' ? 'EdDSA' : key.asymmetricKeyDetails?.namedCurve === 'prime256v1' ? 'ES256' : null;
    if (alg) set.set(thumbprint(key), { alg, key });
  }
  return set;
}

/**
 * Verifies an access token the way the API does (libs/platform/src/auth/access-token.ts),
 * with the public keys only: header `kid` must be a known key and `alg` exactly that
 * key's (EdDSA or ES256), signature checked, then iss, aud, exp, nbf (30 s skew), iat
 * (required, not in the future beyond 30 s, not older than ACCESS_TOKEN_TTL_S, exp
 * within iat + TTL), and the sub/sid claims. Returns the claims, or null.
 */
export function createJwtVerifier({
  publicKeys = env.AUTH_PUBLIC_KEYS,
  issuer = env.JWT_ISSUER ?? 'mm-api',
  audience = env.JWT_AUDIENCE ?? 'mm-clients',
  ttlSeconds = Number(env.ACCESS_TOKEN_TTL_S ?? 900),
} = {}) {
  if (!publicKeys) throw new Error('AUTH_PUBLIC_KEYS is required');
  const keys = publicKeySet(publicKeys);
  const SKEW = 30;
  const parse = (part) => {
    try {
      return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    } catch {
      return null;
    }
  };
  return function verify(token) {
    const first = token.indexOf('.');
    const second = token.indexOf('.', first + 1);
    if (first < 1 || second < 0 || token.indexOf('.', second + 1) !== -1) return null;
    const header = parse(token.slice(0, first));
    if (!header || (header.typ !== undefined && header.typ !== 'JWT') || header.crit !== undefined) return null;
    const entry = typeof header.kid === 'string' ? keys.get(header.kid) : undefined;
    if (!entry || header.alg !== entry.alg) return null;
    const signature = Buffer.from(token.slice(second + 1), 'base64url');
    const input = Buffer.from(token.slice(0, second));
    const valid = entry.alg === 'ES256' ? verifySignature('sha256', input, { key: entry.key, dsaEncoding: 'ieee-p1363' }, signature) : verifySignature(null, input, entry.key, signature);
    if (!valid) return null;
    const claims = parse(token.slice(first + 1, second));
    if (!claims || typeof claims !== 'object') return null;
    const now = Math.floor(Date.now() / 1000);
    if (claims.iss !== issuer) return null;
    if (Array.isArray(claims.aud) ? !claims.aud.includes(audience) : claims.aud !== audience) return null;
    if (typeof claims.exp !== 'number' || claims.exp <= now) return null;
    if (claims.nbf !== undefined && (typeof claims.nbf !== 'number' || claims.nbf > now + SKEW)) return null;
    if (typeof claims.iat !== 'number' || claims.iat > now + SKEW || claims.iat < now - ttlSeconds - SKEW || claims.exp > claims.iat + ttlSeconds) return null;
    if (typeof claims.sub !== 'string' || typeof claims.sid !== 'string') return null;
    return claims;
  };
}

export function problem(reply, status, title) {
  return reply
    .code(status)
    .type('application/problem+json')
    .send({ type: 'about:blank', title, status, detail: title });
}

/**
 * Bearer check shared by the authenticated baselines: JWT verification plus the same
 * revocation lookup as the API (one Redis round trip, EXISTS like the API's
 * SessionRevocationStore, on `<prefix>:auth:revoked-session:<sid>`).
 * Returns the claims, or sends 401 and returns null.
 */
export function createAuthenticator(redis) {
  const verify = createJwtVerifier();
  return async function authenticate(request, reply) {
    const header = request.headers.authorization;
    const claims = typeof header === 'string' && header.startsWith('Bearer ') ? verify(header.slice(7)) : null;
    if (!claims || (await redis.exists(`${PREFIX}:auth:revoked-session:${claims.sid}`)) !== 0) {
      problem(reply, 401, 'Unauthorized');
      return null;
    }
    return claims;
  };
}

// The API's global rate limit (RedisThrottlerStorage): one EVAL per request.
const RATE_LIMIT_SCRIPT = `
local hits = redis.call('INCR', KEYS[1])
if hits == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return { hits, redis.call('PTTL', KEYS[1]) }`;

/** Counts the request in a fixed one-minute window per user, as the API's throttler does; false when over `limit`. */
export function createRateLimiter(redis, limit = Number(env.RATE_LIMIT_PER_MINUTE ?? 10_000_000)) {
  return async function withinLimit(subject) {
    const [hits] = await redis.eval(RATE_LIMIT_SCRIPT, 1, `${PREFIX}:rate:${subject}`, 60_000);
    return hits <= limit;
  };
}

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
