// Settings of one `npm run bench` run, all from the environment (see bench/README.md).
import { createHmac, generateKeyPairSync, randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const ROOT = path.resolve(BENCH_DIR, '..');

function number(name, fallback, { min = 0, integer = false } = {}) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || (integer && !Number.isInteger(value))) {
    throw new Error(`${name} must be ${integer ? 'an integer' : 'a number'} >= ${min} (got ${JSON.stringify(raw)})`);
  }
  return value;
}

function serviceUrl(name, fallback, protocols) {
  const value = process.env[name] || fallback;
  const url = new URL(value);
  if (!protocols.includes(url.protocol)) throw new Error(`${name} must be a ${protocols.join('/')} URL (got ${value})`);
  return value;
}

export function loadBenchConfig() {
  // Identifiers double as a Postgres database name, a role prefix and a Redis key prefix.
  const benchId = `bench_${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  return {
    benchId,
    adminUrl: serviceUrl('BENCH_DATABASE_URL', 'postgres://postgres@127.0.0.1:5432/postgres', ['postgres:', 'postgresql:']),
    redisUrl: serviceUrl('BENCH_REDIS_URL', 'redis://127.0.0.1:6379', ['redis:', 'rediss:']),
    durationS: number('BENCH_DURATION_S', 10, { min: 1 }),
    warmupS: number('BENCH_WARMUP_S', 3, { min: 0 }),
    /** Each round measures every side once; figures are medians over rounds. */
    rounds: number('BENCH_ROUNDS', 1, { min: 1, integer: true }),
    /** Before each side: wait up to BENCH_QUIET_WAIT_S for the machine to be under BENCH_QUIET_PCT % busy. */
    quietWaitS: number('BENCH_QUIET_WAIT_S', 20, { min: 0 }),
    quietPct: number('BENCH_QUIET_PCT', 15, { min: 1 }),
    connections: number('BENCH_CONNECTIONS', 10, { min: 1, integer: true }),
    pipelining: number('BENCH_PIPELINING', 1, { min: 1, integer: true }),
    poolMax: number('BENCH_DB_POOL_MAX', 10, { min: 1, integer: true }),
    /** Products the order pairs spread their load over (one line each; 1 = a single hot row). */
    orderProducts: number('BENCH_ORDERS_PRODUCTS', 10, { min: 1, integer: true }),
    /** Outbox rows the relay pair publishes per side (and a tenth of it as warm-up). */
    relayEvents: number('BENCH_RELAY_EVENTS', 20_000, { min: 100, integer: true }),
    /** The end-to-end latency pair: orders per second and measured seconds. */
    e2eRate: number('BENCH_E2E_RATE', 100, { min: 1 }),
    e2eDurationS: number('BENCH_E2E_DURATION_S', 30, { min: 1 }),
    /** Then the same pair at this rate (the second goal); 0 skips it. */
    e2eHighRate: number('BENCH_E2E_HIGH_RATE', 300, { min: 0 }),
    /** The spike pair: capacity run, then steady, burst (3x capacity) and after phases, and its connections. */
    spikeCapacityS: number('BENCH_SPIKE_CAPACITY_S', 5, { min: 1 }),
    spikeSteadyS: number('BENCH_SPIKE_STEADY_S', 10, { min: 1 }),
    spikeBurstS: number('BENCH_SPIKE_BURST_S', 20, { min: 1 }),
    spikeAfterS: number('BENCH_SPIKE_AFTER_S', 10, { min: 1 }),
    spikeSockets: number('BENCH_SPIKE_SOCKETS', 512, { min: 1, integer: true }),
    /** Comma-separated substrings of scenario names or file names; empty = all. */
    only: (process.env.BENCH_SCENARIOS ?? '').split(',').map((s) => s.trim()).filter(Boolean),
    /** `auto` (build when dist is missing or older than the sources), `always`, `never`. */
    build: process.env.BENCH_BUILD || 'auto',
    /** An Ed25519 pair per run: the API signs (USERS_TOKEN_SIGNING_KEY), API and baselines verify (AUTH_PUBLIC_KEYS). */
    tokenKeys: tokenKeyPair(),
    jwtIssuer: 'mm-api',
    jwtAudience: 'mm-clients',
    /** Each module role's own password for this run (production requires one per module). */
    rolePassword: ((seed) => (module) => createHmac('sha256', seed).update(module).digest('hex'))(randomBytes(32)),
    resultsFile: process.env.BENCH_RESULTS_FILE || path.join(BENCH_DIR, 'results', 'latest.json'),
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', node: process.version, platform: `${os.platform()} ${os.release()}` },
  };
}

/** Replaces the credentials and database of an admin URL (module role connections). */
export function withUrl(base, { user, password, database } = {}) {
  const url = new URL(base);
  if (user !== undefined) url.username = user;
  if (password !== undefined) url.password = password;
  if (database !== undefined) url.pathname = `/${database}`;
  return url.toString();
}

/** PEMs of a fresh Ed25519 key pair, as a deployment would configure them. */
function tokenKeyPair() {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), publicKeyPem: publicKey.export({ format: 'pem', type: 'spki' }).toString() };
}
