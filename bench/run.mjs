// `npm run bench`: the product's API against hand-written baselines, one pair per file in
// bench/scenarios/, each side measured alone for a bounded time on 127.0.0.1. See
// bench/README.md. Exit code 0 whatever the figures; 1 only when the harness broke.
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { isDeepStrictEqual } from 'node:util';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { API_MAIN, ensureBuilt } from './lib/build.mjs';
import { BENCH_DIR, loadBenchConfig, ROOT, withUrl } from './lib/config.mjs';

/** The domain modules, from their manifests (as jest.config.js reads them). */
const DOMAIN_MODULES = createRequire(import.meta.url)('../scripts/module-manifests.cjs').boundaryDeclarations(ROOT).DOMAIN;
import { http, ProductNotReady } from './lib/fixtures.mjs';
import { connectRedis, createBenchDatabase, deleteRedisPrefix, dropBenchDatabase } from './lib/infra.mjs';
import { abortLoad, runLoad } from './lib/load.mjs';
import { startServer, stopAll } from './lib/processes.mjs';
import { processCpuSeconds, processRssMb, sampleBusyPct } from './lib/cpu.mjs';
import { compare, evaluateAbsoluteGoal, goalFor, goalText, relativeGoals, renderTable, writeJson } from './lib/report.mjs';

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
    const pair = scenario?.product && Array.isArray(scenario.baselines);
    const custom = typeof scenario?.measure === 'function' && Array.isArray(scenario.sides);
    if (!scenario?.name || !(pair || custom)) throw new Error(`bench/scenarios/${file} does not export a scenario`);
    if (only.length && !only.some((o) => scenario.name.includes(o) || file.includes(o))) continue;
    scenarios.push({ ...scenario, file });
  }
  return scenarios;
}

const resolve = (spec, state) => (typeof spec === 'function' ? spec(state) : spec);

/** Other work on the machine skews a side: waits (bounded) for it to calm down; returns the last busy %. */
async function waitForQuiet(config, label) {
  let busyBefore = await sampleBusyPct(1000);
  const quietBy = Date.now() + config.quietWaitS * 1000;
  if (busyBefore > config.quietPct && config.quietWaitS > 0) log(`  ${label}: machine ${busyBefore}% busy, waiting up to ${config.quietWaitS} s for < ${config.quietPct}%`);
  while (busyBefore > config.quietPct && Date.now() < quietBy) {
    checkAborted();
    busyBefore = await sampleBusyPct(1000);
  }
  return busyBefore;
}

const busyWarning = (config, label, busyBefore) =>
  busyBefore > config.quietPct ? [`${label}: the machine was ${busyBefore}% busy before the run (other processes): figures are less reliable`] : [];

/** Warm-up (not recorded), then the measured run. */
async function measure(config, server, request, label) {
  const { url } = server;
  const busyBefore = await waitForQuiet(config, label);
  if (config.warmupS > 0) {
    log(`  ${label}: warm-up ${config.warmupS} s`);
    await runLoad({ url, request, durationS: config.warmupS, connections: config.connections, pipelining: config.pipelining, record: false });
    checkAborted();
  }
  log(`  ${label}: measuring ${config.durationS} s`);
  const cpuBefore = processCpuSeconds(server.pid);
  // Resident memory: after the warm-up, then its peak during the measured run (sampled).
  const rssBefore = processRssMb(server.pid);
  let rssPeak = rssBefore;
  const rssTimer = setInterval(() => {
    const rss = processRssMb(server.pid);
    if (rss !== null && (rssPeak === null || rss > rssPeak)) rssPeak = rss;
  }, 200);
  let stats;
  try {
    stats = await runLoad({ url, request, durationS: config.durationS, connections: config.connections, pipelining: config.pipelining });
  } finally {
    clearInterval(rssTimer);
  }
  const cpuAfter = processCpuSeconds(server.pid);
  checkAborted();
  stats.machineBusyPctBefore = busyBefore;
  stats.rssMb = { afterWarmup: rssBefore, peak: rssPeak };
  // The server process's own CPU time per 2xx response (µs): its work per request.
  stats.cpuUsPerRequest = cpuBefore !== null && cpuAfter !== null && stats.ok ? ((cpuAfter - cpuBefore) * 1e6) / stats.ok : null;
  const problems = [];
  const warnings = busyWarning(config, label, busyBefore);
  const bad = Object.entries(stats.statuses).filter(([code]) => code < 200 || code > 299);
  if (bad.length) problems.push(`${label}: non-2xx responses ${bad.map(([c, n]) => `${c}x${n}`).join(', ')}`);
  if (stats.errors) problems.push(`${label}: ${stats.errors} connection errors (${stats.timeouts} timeouts)`);
  log(`  ${label}: ${Math.round(stats.reqPerSec)} req/s, p50 ${stats.latencyMs.p50?.toFixed(2)} ms, p99 ${stats.latencyMs.p99?.toFixed(2)} ms, ${Math.round(stats.cpuUsPerRequest ?? NaN)} CPU µs/req, peak RSS ${Math.round(rssPeak ?? NaN)} MB`);
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
      max: runs.some((r) => typeof r.latencyMs.max === 'number') ? Math.max(...runs.map((r) => r.latencyMs.max ?? 0)) : null,
    },
    bytesPerResponse: pick((r) => r.bytesPerResponse),
    cpuUsPerRequest: pick((r) => r.cpuUsPerRequest),
    machineBusyPctBefore: Math.max(...runs.map((r) => r.machineBusyPctBefore ?? 0)),
    ...(runs[0].unit ? { unit: runs[0].unit } : {}),
    runs,
  };
}

/**
 * The pair's figures: the subject (the product, or the side named by `goal.subject` /
 * `scenario.subject`) and every other side compared with it.
 */
function summarize(scenario, sides, runs, out) {
  const subjectId = scenario.goal?.subject ?? scenario.subject ?? 'product';
  const statsOf = (id) => (runs[id]?.length ? aggregate(runs[id]) : null);
  const subjectSide = sides.find((s) => s.id === subjectId);
  const subject = statsOf(subjectId);
  out.product = statsOf('product');
  out.subject = { id: subjectId, label: subjectSide?.label ?? subjectId, stats: subject };
  out.baselines = [];
  const absolute = scenario.goal ? evaluateAbsoluteGoal(subject, scenario.goal) : null;
  if (absolute !== null) out.subject.met = out.status === 'ok' ? absolute : null;
  for (const side of sides) {
    if (side.id === subjectId) continue;
    const stats = statsOf(side.id);
    const sideGoal = goalFor(scenario.goal, side.id);
    const comparison = side.compare !== false && subject && stats ? compare(subject, stats, sideGoal) : null;
    if (comparison && sideGoal && absolute === false) comparison.met = false;
    if (comparison && out.status !== 'ok') comparison.met = null;
    out.baselines.push({ id: side.id, label: side.label, server: side.server, stats, comparison });
  }
  const relative = relativeGoals(scenario.goal);
  const verdicts = relative.map((g) => out.baselines.find((b) => b.id === g.baseline)?.comparison?.met ?? null);
  const goalMet = relative.length ? (verdicts.includes(false) ? false : verdicts.includes(null) ? null : true) : out.subject.met;
  if (scenario.goal && !scenario.goal.custom) log(`  goal (${goalText(scenario.goal)}): ${goalMet === true ? 'met' : goalMet === false ? 'NOT met' : 'not evaluated'}`);
}

/**
 * One pair: the product's setup once (through its own API), then per round every side
 * alone in turn (product first in odd rounds, last in even ones), each in a fresh
 * process that is stopped before the next side starts.
 */
async function runScenario(scenario, ctx) {
  if (scenario.measure) return runCustomScenario(scenario, ctx);
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
    ctx.product = { url: api.url, pid: api.pid };
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

  // measureProduct: false: the product only gives the reference answer (a baseline vs baseline pair).
  const sides = [
    ...(scenario.measureProduct === false ? [] : [{ id: 'product', label: 'product', start: async () => api ?? (api = await startApi()), request: resolve(scenario.product, state) }]),
    ...scenario.baselines.map((baseline) => ({
      id: baseline.id,
      label: baseline.api ? `API ${baseline.id}` : `baseline ${baseline.id}`,
      baseline,
      // `api: true`: the API itself with other settings (`env` added to the product's), as an info row.
      start: () =>
        baseline.api
          ? startServer({ label: `api ${baseline.id}`, script: ctx.apiScript, env: { ...ctx.apiEnv, ...(scenario.productEnv ?? {}), ...(resolve(baseline.env, state) ?? {}) }, timeoutMs: 120_000 })
          : startServer({
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
  // Answers that differ per request (ids, timestamps) are compared by the scenario.
  const sameAnswer = scenario.sameAnswer ?? ((answer, ref) => answer.status === ref.status && isDeepStrictEqual(answer.json, ref.json));
  if (scenario.measureProduct === false && api) {
    await api.stop();
    api = null;
    ctx.product = null;
  }

  try {
    for (let round = 1; round <= config.rounds; round++) {
      const order = round % 2 === 1 ? sides : [...sides.slice(1), sides[0]];
      for (const side of order) {
        checkAborted();
        if (unfair.has(side.id)) continue;
        const label = config.rounds > 1 ? `${side.label} (round ${round})` : side.label;
        const server = await side.start();
        try {
          if (side.id === 'product') ctx.product = { url: server.url, pid: server.pid };
          await scenario.prepare?.(ctx, state, side.id);
          const answer = await probe(server.url, side.request);
          // Fair only if every side answers the same thing as the product did at first.
          if (!sameAnswer(answer, reference, state)) {
            out.notes.push(`${label} answered ${answer.status} ${answer.text.slice(0, 200)} instead of ${reference.status} ${reference.text.slice(0, 200)}; not measured`);
            out.status = 'invalid';
            unfair.add(side.id);
            continue;
          }
          const { stats, problems, warnings } = await measure(config, server, side.request, label);
          runs[side.id].push(stats);
          // A memory goal (goal.maxRssMb) is the product's peak resident memory under the load.
          if (side.id === 'product' && scenario.goal?.maxRssMb && stats.rssMb.peak !== null) {
            const met = stats.rssMb.peak <= scenario.goal.maxRssMb;
            out.notes.push(
              `${label}: memory under the load: peak RSS ${Math.round(stats.rssMb.peak)} MB (${Math.round(stats.rssMb.afterWarmup)} MB after the warm-up); goal <= ${scenario.goal.maxRssMb} MB: ${met ? 'met' : 'NOT met'}`,
            );
          }
          // afterSide returns problems (an array: the pair becomes invalid) or { problems, notes }.
          const after = (await scenario.afterSide?.(ctx, state, side.id)) ?? [];
          problems.push(...(Array.isArray(after) ? after : (after.problems ?? [])).map((p) => `${label}: ${p}`));
          out.notes.push(...problems, ...warnings, ...(Array.isArray(after) ? [] : (after.notes ?? [])).map((n) => `${label}: ${n}`));
          if (problems.length) out.status = 'invalid';
        } finally {
          await server.stop();
          // With nothing running: reset what the side left behind (e.g. a backlog of events).
          await scenario.afterStop?.(ctx, state, side.id);
          // At LOG_LEVEL=warn a healthy server writes nothing; anything it wrote may cost time per request.
          const written = server.output().trim();
          if (written && !noisy.has(side.id)) {
            noisy.add(side.id);
            out.notes.push(`${label} wrote ${written.length} characters to stdout/stderr (BENCH_LOG_DIR keeps them all), first line: ${server.firstOutput().trim().split('\n')[0].slice(0, 300)}`);
          }
          if (side.id === 'product') {
            api = null;
            ctx.product = null;
          }
        }
      }
    }
  } finally {
    await scenario.cleanup?.(ctx, state);
  }

  summarize(
    scenario,
    sides.map((side) => (side.baseline ? { id: side.id, label: side.baseline.label, server: side.baseline.api ? 'api' : side.baseline.server } : { id: side.id, label: 'product (API)' })),
    runs,
    out,
  );
  return out;
}

/**
 * A pair whose sides are not request/response load (end-to-end latency, a relay's
 * throughput): the scenario's own measure(ctx, state, sideId, info) runs each side and
 * returns { stats, views, problems, warnings }. `scenario.sides` lists
 * { id, label, api: true when the API must run during the side (it is stopped otherwise,
 * one side at a time), viewOf: 'id' for figures that another side's measure returns in
 * `views[id]` (shown as their own row), compare: false for rows without ratios }.
 */
async function runCustomScenario(scenario, ctx) {
  const { config } = ctx;
  const out = { name: scenario.name, title: scenario.title, file: scenario.file, goal: scenario.goal ?? null, status: 'ok', reason: null, notes: [], product: null, baselines: [] };
  log(`${scenario.name}: ${scenario.title}`);
  // The pair's own settings (its sides are not BENCH_DURATION_S of autocannon load).
  if (scenario.settingsNote) out.notes.push(scenario.settingsNote(config));
  const startApi = () => startServer({ label: 'api', script: ctx.apiScript, env: { ...ctx.apiEnv, ...(scenario.productEnv ?? {}) }, timeoutMs: 120_000 });
  let api = await startApi();
  const stopApi = async () => {
    const written = api?.output().trim();
    const first = api?.firstOutput().trim();
    await api?.stop();
    api = null;
    ctx.product = null;
    if (written && !out.notes.some((n) => n.startsWith('the API wrote'))) out.notes.push(`the API wrote ${written.length} characters to stdout/stderr (BENCH_LOG_DIR keeps them all), first line: ${first.split('\n')[0].slice(0, 300)}`);
  };
  let state = {};
  out.goalChecks = [];
  const runs = Object.fromEntries(scenario.sides.map((side) => [side.id, []]));
  try {
    try {
      ctx.product = { url: api.url, pid: api.pid };
      state = (await scenario.setup?.(ctx)) ?? {};
    } catch (error) {
      if (!(error instanceof ProductNotReady)) throw error;
      out.status = 'skipped';
      out.reason = `product not ready: ${error.message}`;
      log(`  skipped: ${error.message}`);
      return out;
    }
    const measured = scenario.sides.filter((side) => !side.viewOf);
    for (let round = 1; round <= config.rounds; round++) {
      const order = round % 2 === 1 ? measured : [...measured.slice(1), measured[0]];
      for (const side of order) {
        checkAborted();
        const label = config.rounds > 1 ? `${side.label} (round ${round})` : side.label;
        if (side.api) {
          api ??= await startApi();
          ctx.product = { url: api.url, pid: api.pid };
        } else if (api) {
          await stopApi();
        }
        const busyBefore = await waitForQuiet(config, label);
        const result = await scenario.measure(ctx, state, side.id, { round, label, api, log: (m) => log(`  ${label}: ${m}`), checkAborted });
        checkAborted();
        for (const [id, stats] of [[side.id, result.stats], ...Object.entries(result.views ?? {})]) {
          if (!stats) continue;
          stats.machineBusyPctBefore = busyBefore;
          runs[id]?.push(stats);
        }
        // Pairs with several goals of their own (goal.custom) return them checked, per side.
        if (result.goals) out.goalChecks.push({ side: side.id, label: `${side.short ?? side.label}${config.rounds > 1 ? ` (round ${round})` : ''}`, goals: result.goals });
        const problems = (result.problems ?? []).map((p) => `${label}: ${p}`);
        out.notes.push(...problems, ...(result.warnings ?? []).map((w) => `${label}: ${w}`), ...busyWarning(config, label, busyBefore));
        if (problems.length) out.status = 'invalid';
      }
    }
  } finally {
    await stopApi();
    await scenario.cleanup?.(ctx, state);
  }
  summarize(scenario, scenario.sides, runs, out);
  if (scenario.goal?.custom) {
    const subjectId = scenario.goal.subject ?? 'product';
    const checks = out.goalChecks.filter((c) => c.side === subjectId);
    out.subject.met = out.status === 'ok' && checks.length ? checks.every((c) => c.goals.every((g) => g.met !== false)) : null;
    log(`  goals (${goalText(scenario.goal)}): ${out.subject.met === true ? 'met' : out.subject.met === false ? 'NOT met' : 'not evaluated'}`);
  }
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
  let db = null;
  const redis = connectRedis(config.redisUrl);
  try {
    const databaseUrl = await createBenchDatabase(config);
    // The run's database as the admin: fixtures and scenarios read across schemas with it.
    db = new pg.Pool({ connectionString: databaseUrl, max: 3, connectionTimeoutMillis: 5000 });
    db.on('error', () => undefined);
    await redis.connect();
    const common = {
      REDIS_URL: config.redisUrl,
      REDIS_KEY_PREFIX: config.benchId,
      DB_POOL_MAX: String(config.poolMax),
      AUTH_PUBLIC_KEYS: config.tokenKeys.publicKeyPem,
      JWT_ISSUER: config.jwtIssuer,
      JWT_AUDIENCE: config.jwtAudience,
      // The baselines check iat against the token lifetime as the API does.
      ACCESS_TOKEN_TTL_S: '86400',
      NODE_ENV: 'production',
    };
    const ctx = {
      config,
      apiScript: process.env.BENCH_API_SCRIPT || API_MAIN,
      redis,
      db,
      databaseUrl,
      /** The connection of a module's own role (what the API's module DataSource uses). */
      moduleDatabaseUrl: (module) => withUrl(databaseUrl, { user: `${config.benchId}_${module}`, password: config.rolePassword(module) }),
      http,
      shared: {},
      product: null,
      apiEnv: {
        ...common,
        LOG_LEVEL: 'warn',
        DATABASE_URL: databaseUrl,
        DB_ROLE_PREFIX: config.benchId,
        // One password per module role (`<MODULE>_DB_PASSWORD`), as production requires.
        ...Object.fromEntries(DOMAIN_MODULES.map((module) => [`${module.toUpperCase()}_DB_PASSWORD`, config.rolePassword(module)])),
        // And the platform's own role (feature flags), which production requires as well.
        FLAGS_DB_PASSWORD: config.rolePassword('flags'),
        // One user hammers one route: the global limiter must not answer 429 (its
        // counting still runs, as it would in production).
        RATE_LIMIT_PER_MINUTE: '10000000',
        // /metrics and /docs on any free port: the bench reads neither.
        INTERNAL_PORT: '0',
        ACCESS_TOKEN_TTL_S: '86400',
        // Only the product signs; the baselines get the public key alone.
        USERS_TOKEN_SIGNING_KEY: config.tokenKeys.privateKeyPem,
        SHUTDOWN_DRAIN_MS: '0',
      },
      baselineEnv: {
        ...common,
        DATABASE_URL: withUrl(databaseUrl, { user: `${config.benchId}_users`, password: config.rolePassword('users') }),
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
    await db?.end().catch(() => undefined);
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
