// Baseline of the relay pair: a bare Bull `addBulk` loop, the Redis half of what the
// outbox relay does, without Postgres. Not a server: it adds WARMUP_EVENTS, then EVENTS
// jobs to the queue QUEUE in batches of BATCH_SIZE (one addBulk at a time, as the relay
// does per claimed batch), prints one JSON line { events, seconds, eventsPerSec, cpuUs }
// for the measured part, and exits.
// The queue is built like the API's QueueFactory builds its producers' queues: prefix
// `<REDIS_KEY_PREFIX>:bull`, one shared command connection without auto-pipelining,
// the jittered backoff strategy, removeOnComplete / bounded removeOnFail. Each job is
// the relay's: name = event type, data = the IntegrationEvent envelope (a fresh id, the
// producer, occurredAt, PAYLOAD, metadata.requestId), opts = { jobId: the event id,
// attempts: INBOX_MAX_ATTEMPTS, backoff: { type: 'exponential-jitter' } }.
import { randomUUID } from 'node:crypto';
import Bull from 'bull';
import Redis from 'ioredis';

const env = process.env;
const redisUrl = env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const events = Number(env.EVENTS ?? 20_000);
const warmupEvents = Number(env.WARMUP_EVENTS ?? 0);
const batchSize = Number(env.BATCH_SIZE ?? 100);
const attempts = Number(env.INBOX_MAX_ATTEMPTS ?? 8);
const type = env.EVENT_TYPE ?? 'bench.relay-probe.v1';
const producer = env.PRODUCER ?? 'orders';
const payload = JSON.parse(env.PAYLOAD ?? '{}');

const connections = [];
const connect = (options) => {
  const redis = new Redis(redisUrl, options);
  redis.on('error', () => undefined);
  connections.push(redis);
  return redis;
};
let client;
let subscriber;
const queue = new Bull(env.QUEUE ?? 'bench.bare-sink', {
  prefix: `${env.REDIS_KEY_PREFIX ?? 'mm'}:bull`,
  createClient: (kind) => {
    if (kind === 'client') return (client ??= connect({ maxRetriesPerRequest: 1, enableOfflineQueue: true, enableAutoPipelining: false, connectTimeout: 2000 }));
    if (kind === 'subscriber') return (subscriber ??= connect({ maxRetriesPerRequest: null, enableReadyCheck: false }));
    return connect({ maxRetriesPerRequest: null, enableReadyCheck: false });
  },
  settings: { backoffStrategies: { 'exponential-jitter': () => 1000 } },
  defaultJobOptions: { removeOnComplete: true, removeOnFail: { age: 7 * 24 * 3600, count: 10_000 } },
});
queue.on('error', () => undefined);

function batch(size) {
  const jobs = [];
  for (let i = 0; i < size; i++) {
    const id = randomUUID();
    jobs.push({
      name: type,
      data: { id, type, producer, occurredAt: new Date().toISOString(), payload, metadata: { requestId: randomUUID() } },
      opts: { jobId: id, attempts, backoff: { type: 'exponential-jitter' } },
    });
  }
  return jobs;
}

async function run(total) {
  for (let done = 0; done < total; done += batchSize) await queue.addBulk(batch(Math.min(batchSize, total - done)));
}

await queue.isReady();
await run(warmupEvents);
const cpuBefore = process.cpuUsage();
const startedAt = process.hrtime.bigint();
await run(events);
const seconds = Number(process.hrtime.bigint() - startedAt) / 1e9;
const cpu = process.cpuUsage(cpuBefore);
await queue.close();
for (const redis of connections) redis.disconnect();
process.stdout.write(`${JSON.stringify({ events, seconds, eventsPerSec: events / seconds, cpuUs: cpu.user + cpu.system })}\n`);
