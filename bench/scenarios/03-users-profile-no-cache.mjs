// Issue 3, pair 2: `GET /v1/users/:id` with the profile cache disabled, so every read is
// `SELECT id, name FROM users.users WHERE id = $1` on the users module's own pool.
// Baseline: Fastify + pg as the module role (same pool size), same JWT verify and
// revocation GET. Goal (issue 11): req/s >= 0.85x.
import { signedInUser } from '../lib/fixtures.mjs';

const profileKey = (ctx, id) => `${ctx.config.benchId}:users:profile:v1:${id}`;

export default {
  name: 'users.profile.no-cache',
  title: 'GET /v1/users/:id, cache disabled (Postgres)',
  goal: { baseline: 'pg', minThroughputRatio: 0.85 },
  productEnv: { USERS_PROFILE_CACHE_ENABLED: 'false' },

  async setup(ctx) {
    const user = await signedInUser(ctx);
    return { user, request: { method: 'GET', path: `/v1/users/${user.id}`, headers: { authorization: `Bearer ${user.accessToken}` } } };
  },

  product: (state) => state.request,

  async prepare(ctx, state) {
    await ctx.redis.del(profileKey(ctx, state.user.id));
  },

  /** The flag must really bypass the cache, or this pair measures the wrong thing: returns problems found. */
  async afterSide(ctx, state, side) {
    if (side === 'product' && (await ctx.redis.exists(profileKey(ctx, state.user.id))) === 1) {
      return ['USERS_PROFILE_CACHE_ENABLED=false still wrote the profile cache key: the product side may have read from Redis'];
    }
    return [];
  },

  check: (response, state) => response.status === 200 && response.json?.id === state.user.id && response.json?.name === state.user.name,

  baselines: [{ id: 'pg', label: 'Fastify + pg, same work', server: 'users-profile.mjs', env: { PROFILE_SOURCE: 'db' } }],
};
