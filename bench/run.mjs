// `npm run bench`: the product's API against hand-written baselines, one pair per file in
// bench/scenarios/, each side measured alone for a bounded time on 127.0.0.1. See
// bench/README.md. Exit code 0 whatever the figures; 1 only when the harness broke.
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { pathToFileURL } from 'node:url';
import { API_MAIN, ensureBuilt } from './lib/build.mjs';
import { BENCH_DIR, loadBenchConfig, ROOT, withUrl } from './lib/config.mjs';
import { http, ProductNotReady } from './lib/fixtures.mjs';
import { connectRedis, createBenchDatabase, deleteRedisPrefix, dropBenchDatabase } from './lib/infra.mjs';
import { abortLoad, runLoad } from './lib/load.mjs';
import { startServer, stopAll } from './lib/processes.mjs';
import { processCpuSeconds, sampleBusyPct } from './lib/cpu.mjs';
import { compare, goalText, renderTable, writeJson } from './lib/report.mjs';

const log = (message) => process.stderr.write(`[bench] ${message}\n`);

let aborted = false;
function onSignal(signal) {
  if (aborted) process.exit(130); // second ^C: leave at once
  aborted = true;
  log(`${signal}: stopping the current run, then cleaning up (^C again to leave without cleanup)`);
  abortLoad();
}
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

class Aborted extends Error {}
const checkAborted = () => {
  if (aborted) throw new Aborted('interrupted');
};

async function loadScenarios(only) {
  const dir = path.join(BENCH_DIR, 'scenarios');
  const files = readdirSync(dir).filter((f) => f.endsWith('.mjs')).sort();
  const scenarios = [];
  for (const file of files) {
    const scenario = (await import(pathToFileURL(path.join(dir, file)).href)).default;
    if (!scenario?.name || !scenario.product || !Array.isArray(scenario.baselines)) throw new Error(`bench/scenarios/${file} does not export a scenario`);
    if (only.length && !only.some((o) => scenario.name.includes(o) || file.includes(o))) continue;
    scenarios.push({ ...scenario, file });
  }
  return scenarios;
}

const resolve = (spec, state) => (typeof spec === 'function' ? spec(state) : spec);

/** Warm-up (not recorded), then the measured run. */
async function measure(config, server, request, label) {
  const { url } = server;
  // Other work on the machine skews a side: wait (bounded) for it to calm down.
  let busyBefore = await sampleBusyPct(1000);
  const quietBy = Date.now() + config.quietWaitS * 1000;
  if (busyBefore > config.quietPct && config.quietWaitS > 0) log(`  ${label}: machine ${busyBefore}% busy, waiting up to ${config.quietWaitS} s for < ${config.quietPct}%`);
  while (busyBefore > config.quietPct && Date.now() < quietBy) {
    checkAborted();
    busyBefore = await sampleBusyPct(1000);
  }
  if (config.warmupS > 0) {
    log(`  ${label}: warm-up ${config.warmupS} s`);
    await runLoad({ url, request, durationS: config.warmupS, connections: config.connections, pipelining: config.pipelining, record: false });
    checkAborted();
  }
  log(`  ${label}: measuring ${config.durationS} s`);
  const cpuBefore = processCpuSeconds(server.pid);
  const stats = await runLoad({ url, request, durationS: config.durationS, connections: config.connections, pipelining: config.pipelining });
  const cpuAfter = processCpuSeconds(server.pid);
  checkAborted();
  stats.machineBusyPctBefore = busyBefore;
  // The server process's own CPU time per 2xx response (µs): its work per request.
  stats.cpuUsPerRequest = cpuBefore !== null && cpuAfter !== null && stats.ok ? ((cpuAfter - cpuBefore) * 1e6) / stats.ok : null;
  const problems = [];
  const warnings = [];
  if (busyBefore > config.quietPct) {
    warnings.push(`${label}: the machine was ${busyBefore}% busy before the run (other processes): figures are less reliable`);
  }
  const bad = Object.entries(stats.statuses).filter(([code]) => code < 200 || code > 299);
  if (bad.length) problems.push(`${label}: non-2xx responses ${bad.map(([c, n]) => `${c}x${n}`).join(', ')}`);
  if (stats.errors) problems.push(`${label}: ${stats.errors} connection errors (${stats.timeouts} timeouts)`);
  log(`  ${label}: ${Math.round(stats.reqPerSec)} req/s, p50 ${stats.latencyMs.p50?.toFixed(2)} ms, p99 ${stats.latencyMs.p99?.toFixed(2)} ms, ${Math.round(stats.cpuUsPerRequest ?? NaN)} CPU µs/req`);
  return { stats, problems, warnings };
}

/** One request to check that a side answers what the pair expects. */
async function probe(url, request) {
  const response = await http(url, request);
  return { status: response.status, json: response.json, text: response.text, contentType: response.headers['content-type'] };
}

const median = (values) => {
  const sorted = values.filter((v) => v !== null && v !== undefined).sort((a, b) => a - b);
  if (!sorted.length) return null;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

/** One figure per side over every round: the median of each measure (= the run itself for one round). */
function aggregate(runs) {
  if (runs.length === 1) return { ...runs[0], rounds: 1 };
  const pick = (f) => median(runs.map(f));
  return {
    rounds: runs.length,
    reqPerSec: pick((r) => r.reqPerSec),
    latencyMs: {
      mean: pick((r) => r.latencyMs.mean),
      p50: pick((r) => r.latencyMs.p50),
      p90: pick((r) => r.latencyMs.p90),
      p99: pick((r) => r.latencyMs.p99),
      max: Math.max(...runs.map((r) => r.latencyMs.max ?? 0)),
    },
    bytesPerResponse: pick((r) => r.bytesPerResponse),
    cpuUsPerRequest: pick((r) => r.cpuUsPerRequest),
    machineBusyPctBefore: Math.max(...runs.map((r) => r.machineBusyPctBefore)),
    runs,
  };
}

/**
 * One pair: the product's setup once (through its own API), then per round every side
 * alone in turn (product first in odd rounds, last in even ones), each in a fresh
 * process that is stopped before the next side starts.
 */
async function runScenario(scenario, ctx) {
  const { config } = ctx;
  const out = { name: scenario.name, title: scenario.title, file: scenario.file, goal: scenario.goal ?? null, status: 'ok', reason: null, notes: [], product: null, baselines: [] };
  log(`${scenario.name}: ${scenario.title}`);
  let state = {};
  let reference;
  const runs = { product: [] };
  const startApi = () => startServer({ label: 'api', script: ctx.apiScript, env: { ...ctx.apiEnv, ...(scenario.productEnv ?? {}) }, timeoutMs: 120_000 });

  // Setup and the product's reference answer.
  let api = await startApi();
  try {
    ctx.product = { url: api.url };
    state = (await scenario.setup?.(ctx)) ?? {};
    const request = resolve(scenario.product, state);
    await scenario.prepare?.(ctx, state, 'product');
    reference = await probe(api.url, request);
    const ok = scenario.check ? await scenario.check(reference, state) : reference.status === 200;
    if (!ok) throw new ProductNotReady(`${request.method ?? 'GET'} ${request.path} answered ${reference.status}: ${reference.text.slice(0, 300)}`);
  } catch (error) {
    await api.stop();
    ctx.product = null;
    if (!(error instanceof ProductNotReady)) throw error;
    out.status = 'skipped';
    out.reason = `product not ready: ${error.message}`;
    log(`  skipped: ${error.message}`);
    return out;
  }

  const sides = [
    { id: 'product', label: 'product', start: async () => api ?? (api = await startApi()), request: resolve(scenario.product, state) },
    ...scenario.baselines.map((baseline) => ({
      id: baseline.id,
      label: `baseline ${baseline.id}`,
      baseline,
      start: () =>
        startServer({
          label: `baseline ${baseline.id}`,
          script: path.join(BENCH_DIR, 'baselines', baseline.server),
          env: { ...ctx.baselineEnv, ...(resolve(baseline.env, state) ?? {}) },
        }),
      request: resolve(baseline.request ?? scenario.product, state),
    })),
  ];
  for (const side of sides) runs[side.id] ??= [];
  const unfair = new Set();
  const noisy = new Set();

  for (let round = 1; round <= config.rounds; round++) {
    const order = round % 2 === 1 ? sides : [...sides.slice(1), sides[0]];
    for (const side of order) {
      checkAborted();
      if (unfair.has(side.id)) continue;
      const label = config.rounds > 1 ? `${side.label} (round ${round})` : side.label;
      const server = await side.start();
      try {
        if (side.id === 'product') ctx.product = { url: server.url };
        await scenario.prepare?.(ctx, state, side.id);
        const answer = await probe(server.url, side.request);
        // Fair only if every side answers the same thing as the product did at first.
        if (answer.status !== reference.status || !isDeepStrictEqual(answer.json, reference.json)) {
          out.notes.push(`${label} answered ${answer.status} ${answer.text.slice(0, 200)} instead of ${reference.status} ${reference.text.slice(0, 200)}; not measured`);
          out.status = 'invalid';
          unfair.add(side.id);
          continue;
        }
        const { stats, problems, warnings } = await measure(config, server, side.request, label);
        runs[side.id].push(stats);
        problems.push(...((await scenario.afterSide?.(ctx, state, side.id)) ?? []).map((p) => `${label}: ${p}`));
        out.notes.push(...problems, ...warnings);
        if (problems.length) out.status = 'invalid';
      } finally {
        await server.stop();
        // At LOG_LEVEL=warn a healthy server writes nothing; anything it wrote may cost time per request.
        const written = server.output().trim();
        if (written && !noisy.has(side.id)) {
          noisy.add(side.id);
          out.notes.push(`${label} wrote ${written.length} characters to stdout/stderr, first line: ${written.split('\n')[0].slice(0, 300)}`);
        }
        if (side.id === 'product') {
          api = null;
          ctx.product = null;
        }
      }
    }
  }

  out.product = runs.product.length ? aggregate(runs.product) : null;
  for (const side of sides.slice(1)) {
    const stats = runs[side.id].length ? aggregate(runs[side.id]) : null;
    const isGoal = scenario.goal?.baseline === side.id;
    const comparison = out.product && stats ? compare(out.product, stats, isGoal ? scenario.goal : null) : null;
    if (comparison && out.status !== 'ok') comparison.met = null;
    out.baselines.push({ id: side.id, label: side.baseline.label, server: side.baseline.server, stats, comparison });
  }
  const goalEntry = out.baselines.find((b) => b.id === scenario.goal?.baseline);
  if (scenario.goal) log(`  goal (${goalText(scenario.goal)}): ${goalEntry?.comparison?.met === true ? 'met' : goalEntry?.comparison?.met === false ? 'NOT met' : 'not evaluated'}`);
  return out;
}

function gitRevision() {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'apps', 'libs'], { cwd: ROOT, encoding: 'utf8' }).trim() !== '';
    return { commit, dirty };
  } catch {
    return null;
  }
}

async function main() {
  const config = loadBenchConfig();
  const scenarios = await loadScenarios(config.only);
  if (!scenarios.length) throw new Error(`no scenario matches BENCH_SCENARIOS=${config.only.join(',')}`);
  const build = process.env.BENCH_API_SCRIPT ? { built: false, reason: `BENCH_API_SCRIPT=${process.env.BENCH_API_SCRIPT}` } : ensureBuilt(config.build, log);
  const results = {
    benchId: config.benchId,
    startedAt: new Date().toISOString(),
    finishedAt: null,
    machine: config.machine,
    git: gitRevision(),
    build,
    settings: { rounds: config.rounds, quietWaitS: config.quietWaitS, quietPct: config.quietPct, durationS: config.durationS, warmupS: config.warmupS, connections: config.connections, pipelining: config.pipelining, poolMax: config.poolMax },
    scenarios: [],
  };
  log(`run ${config.benchId}: ${scenarios.map((s) => s.name).join(', ')}`);

  let broke = false;
  const redis = connectRedis(config.redisUrl);
  try {
    const databaseUrl = await createBenchDatabase(config);
    await redis.connect();
    const common = {
      REDIS_URL: config.redisUrl,
      REDIS_KEY_PREFIX: config.benchId,
      DB_POOL_MAX: String(config.poolMax),
      JWT_SECRET: config.jwtSecret,
      JWT_ISSUER: config.jwtIssuer,
      JWT_AUDIENCE: config.jwtAudience,
      NODE_ENV: 'production',
    };
    const ctx = {
      config,
      apiScript: process.env.BENCH_API_SCRIPT || API_MAIN,
      redis,
      http,
      shared: {},
      product: null,
      apiEnv: {
        ...common,
        LOG_LEVEL: 'warn',
        DATABASE_URL: databaseUrl,
        DB_ROLE_PREFIX: config.benchId,
        DB_ROLE_PASSWORD: config.rolePassword,
        // One user hammers one route: the global limiter must not answer 429 (its
        // counting still runs, as it would in production).
        RATE_LIMIT_PER_MINUTE: '10000000',
        ACCESS_TOKEN_TTL_S: '86400',
        SHUTDOWN_DRAIN_MS: '0',
      },
      baselineEnv: {
        ...common,
        DATABASE_URL: withUrl(databaseUrl, { user: `${config.benchId}_users`, password: config.rolePassword }),
        DB_SCHEMA: 'users',
      },
    };
    for (const scenario of scenarios) {
      checkAborted();
      try {
        results.scenarios.push(await runScenario(scenario, ctx));
      } catch (error) {
        if (error instanceof Aborted) throw error;
        await stopAll(); // nothing of a failed pair may keep running into the next one
        broke = true;
        log(`${scenario.name} failed: ${error instanceof Error ? error.stack : String(error)}`);
        results.scenarios.push({ name: scenario.name, title: scenario.title, file: scenario.file, goal: scenario.goal ?? null, status: 'error', reason: error instanceof Error ? error.message.split('\n')[0] : String(error), notes: [], product: null, baselines: [] });
      }
    }
  } finally {
    await stopAll();
    redis.disconnect();
    try {
      const roles = await dropBenchDatabase(config);
      const keys = await deleteRedisPrefix(config.redisUrl, config.benchId);
      log(`cleaned up: database ${config.benchId}, roles [${roles.join(', ')}], ${keys} Redis keys under ${config.benchId}:`);
    } catch (error) {
      broke = true;
      log(`cleanup failed (drop database ${config.benchId}, roles ${config.benchId}_*, Redis keys ${config.benchId}:* by hand): ${error}`);
    }
  }
  results.finishedAt = new Date().toISOString();
  process.stdout.write(`\n${renderTable(results)}\n`);
  writeJson(config.resultsFile, results);
  log(`results written to ${path.relative(process.cwd(), config.resultsFile)}`);
  return broke ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    log(error instanceof Aborted ? 'interrupted; cleaned up' : `failed: ${error instanceof Error ? error.stack : String(error)}`);
    process.exit(error instanceof Aborted ? 130 : 1);
  },
);
