// Issue 3, pair 1: `GET /v1/users/:id` served from the Redis cache (cache-aside, hot key).
//  A "same work": JWT verify + revocation lookup + profile GET (two round trips), same JSON.
//  A+rl: A plus the global rate-limit counter the API also keeps in Redis: every round
//    trip the API makes, so product vs A+rl is what the framework costs.
// Goals (issue 11): req/s >= 0.90x and p99 <= 1.5x of A+rl, and req/s >= 0.80x of A.
//  B "cache read only": the literal baseline, one GET and the JSON as stored.
import { ProductNotReady, signedInUser } from '../lib/fixtures.mjs';

const profileKey = (ctx, id) => `${ctx.config.benchId}:users:profile:v1:${id}`;

export default {
  name: 'users.profile.cache-hit',
  title: 'GET /v1/users/:id, cache hit',
  // maxRssMb: the API's peak resident memory under this load (a note of the pair).
  goal: { baseline: 'A+rl', minThroughputRatio: 0.9, maxP99Ratio: 1.5, maxRssMb: 180, also: [{ baseline: 'A', minThroughputRatio: 0.8 }] },
  productEnv: { USERS_PROFILE_CACHE_ENABLED: 'true', USERS_PROFILE_CACHE_TTL_S: '3600' },

  async setup(ctx) {
    const user = await signedInUser(ctx);
    return { user, request: { method: 'GET', path: `/v1/users/${user.id}`, headers: { authorization: `Bearer ${user.accessToken}` } } };
  },

  product: (state) => state.request,

  /** Before each side: the key is hot (the product fills it; baselines get the product's value back if it expired). */
  async prepare(ctx, state, side) {
    const key = profileKey(ctx, state.user.id);
    if (side === 'product') {
      const first = await ctx.http(ctx.product.url, state.request);
      if (first.status !== 200) throw new ProductNotReady(`GET ${state.request.path} answered ${first.status}`);
      // The product fills the cache after it answers (best effort, not awaited): wait for it.
      for (let tries = 0; tries < 40 && (state.cached = await ctx.redis.get(key)) === null; tries++) await new Promise((r) => setTimeout(r, 50));
      if (state.cached === null) throw new ProductNotReady(`the product did not cache the profile under ${key}`);
      const parsed = JSON.parse(state.cached);
      if (parsed.id !== state.user.id || parsed.name !== state.user.name) {
        throw new ProductNotReady(`unexpected cached value under ${key}: ${state.cached}`);
      }
    } else if ((await ctx.redis.exists(key)) === 0) {
      await ctx.redis.set(key, state.cached, 'EX', 3600);
    }
  },

  check: (response, state) => response.status === 200 && response.json?.id === state.user.id && response.json?.name === state.user.name,

  baselines: [
    { id: 'A', label: 'same work', server: 'users-profile.mjs', env: { PROFILE_SOURCE: 'cache', PROFILE_CACHE_TTL_S: '3600' } },
    // Informative: A plus the API's global rate-limit counter (one EVAL), i.e. every Redis round trip the API makes.
    { id: 'A+rl', label: 'same work + rate-limit EVAL', server: 'users-profile.mjs', env: { PROFILE_SOURCE: 'cache', PROFILE_CACHE_TTL_S: '3600', RATE_LIMIT: 'on' } },
    { id: 'B', label: 'cache read only', server: 'redis-read.mjs', request: (state) => ({ method: 'GET', path: state.request.path }) },
  ],
};
