// Baseline B for `GET /v1/users/:id` (cache hit), the literal wording: read the
// profile key from Redis and return its JSON. No auth, no parsing.
import { createRedis, createServer, listen, PREFIX, problem } from './common.mjs';

const redis = createRedis();
const app = createServer();
app.get('/v1/users/:id', async (request, reply) => {
  const cached = await redis.get(`${PREFIX}:users:profile:v1:${request.params.id}`);
  if (cached === null) return problem(reply, 404, 'Not Found');
  return reply.type('application/json; charset=utf-8').send(cached);
});
app.addHook('onClose', async () => redis.quit());
await listen(app);
