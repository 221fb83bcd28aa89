// Framework overhead: the cheapest route there is, Nest (platform-fastify, global hooks,
// guards and interceptors) against plain Fastify. Informative, no goal.
export default {
  name: 'health.live',
  title: 'GET /health/live (framework overhead)',
  goal: null,
  product: { method: 'GET', path: '/health/live' },
  baselines: [{ id: 'fastify', label: 'plain Fastify', server: 'health.mjs' }],
};
