// Baseline for `GET /v1/users/:id` doing the same work as the API:
// Bearer JWT (EdDSA, public key) verification, the session revocation GET, then the profile from
//  - PROFILE_SOURCE=cache (default): Redis cache-aside on `<prefix>:users:profile:v1:<id>`
//    (hit: one GET; miss: the query below, then SET with PROFILE_CACHE_TTL_S),
//  - PROFILE_SOURCE=db: always `SELECT id, name FROM users.users WHERE id = $1`.
// RATE_LIMIT=on adds the API's global rate-limit counter (one EVAL per request).
import { createAuthenticator, createPool, createRateLimiter, createRedis, createServer, listen, PREFIX, problem, UUID, env } from './common.mjs';

const source = env.PROFILE_SOURCE ?? 'cache';
if (!['cache', 'db'].includes(source)) throw new Error(`PROFILE_SOURCE must be cache or db (got ${source})`);
const ttl = Number(env.PROFILE_CACHE_TTL_S ?? 300);
const redis = createRedis();
const pool = createPool();
const authenticate = createAuthenticator(redis);
const withinLimit = env.RATE_LIMIT === 'on' ? createRateLimiter(redis) : null;

const JSON_TYPE = 'application/json; charset=utf-8';

/** The profile as JSON text, like the API's ProfilesService (the cache holds the text). */
async function fromDatabase(id) {
  const { rows } = await pool.query('SELECT id, name FROM users.users WHERE id = $1', [id]);
  return rows[0] ? JSON.stringify({ id: rows[0].id, name: rows[0].name }) : null;
}

const app = createServer();
app.get('/v1/users/:id', async (request, reply) => {
  const claims = await authenticate(request, reply);
  if (!claims) return reply;
  if (withinLimit && !(await withinLimit(`user:${claims.sub}`))) return problem(reply, 429, 'Too Many Requests');
  const { id } = request.params;
  if (!UUID.test(id)) return problem(reply, 400, 'Bad Request');
  let json;
  if (source === 'cache') {
    const key = `${PREFIX}:users:profile:v1:${id}`;
    json = await redis.get(key);
    if (json === null) {
      json = await fromDatabase(id);
      if (json !== null) await redis.set(key, json, 'EX', ttl);
    }
  } else {
    json = await fromDatabase(id);
  }
  if (json === null) return problem(reply, 404, 'Not Found');
  return reply.type(JSON_TYPE).send(json);
});
app.addHook('onClose', async () => {
  await Promise.all([redis.quit(), pool.end()]);
});
await listen(app);
