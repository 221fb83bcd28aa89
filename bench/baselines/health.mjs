// Baseline for `GET /health/live`: plain Fastify answering { status: 'ok' }.
import { createServer, listen } from './common.mjs';

await listen(createServer());
