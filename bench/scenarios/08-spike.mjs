// Issue 14: load shedding under a spike. GET /v1/users/:id (a cache hit; `sheddable`)
// at half of the measured capacity for BENCH_SPIKE_STEADY_S, then three times the
// capacity for BENCH_SPIKE_BURST_S, then half again for BENCH_SPIKE_AFTER_S, open loop
// (lib/phased-rate.mjs) over up to BENCH_SPIKE_SOCKETS keep-alive connections to
// 127.0.0.1, with GET /health/live (`critical`) every 100 ms alongside. Two sides, one
// at a time, each a fresh API process: the API as configured by default (shedding on)
// and the same with SHED_ENABLED=false.
//
// Capacity is measured once, in setup, on the API with shedding off: BENCH_WARMUP_S of
// warm-up, then BENCH_SPIKE_CAPACITY_S of closed-loop load over BENCH_CONNECTIONS
// connections (2xx per second). Both sides get the same absolute rates.
//
// Per side: the steady p99 (2xx sent during the steady phase), during the burst the
// offered and admitted (2xx) req/s, the p99 of admitted requests, the share answered 503
// and how fast, timeouts and connection errors, 5xx other than 503, whether the process
// survived, and the time back to steady after the burst: requests are grouped in 500 ms
// windows by send time; the steady band is the worst window p99 of the steady phase;
// recovery ends with the last window after the burst that had a non-2xx answer, a
// timeout or a p99 over that band.
import { processCpuSeconds } from '../lib/cpu.mjs';
import { signedInUser, ProductNotReady } from '../lib/fixtures.mjs';
import { runLoad } from '../lib/load.mjs';
import { CONNECTION_ERROR, NOT_SENT, runPhasedLoad, TIMED_OUT } from '../lib/phased-rate.mjs';
import { startServer } from '../lib/processes.mjs';
import { latencySummary, percentile } from '../lib/stats.mjs';

const STEADY_X = 0.5;
const BURST_X = 3;
const WINDOW_MS = 500;
const GOAL_P99_X = 2;
const GOAL_RECOVERY_MS = 5000;

const SIDE_ENV = { product: {}, off: { SHED_ENABLED: 'false' } };

const fmt = (ms) => (ms === null || ms === undefined || Number.isNaN(ms) ? '-' : `${ms < 10 ? ms.toFixed(2) : ms.toFixed(1)} ms`);
const pct = (part, whole) => (whole ? `${((100 * part) / whole).toFixed(1)} %` : '-');

function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The figures of one side's run (see the header). */
function analyse(run) {
  const [steady, burst, after] = run.phases;
  const phaseOf = (t) => (t < steady.endMs ? 0 : t < burst.endMs ? 1 : 2);
  const phases = [steady, burst, after].map((p) => ({ ...p, ok: [], shed: [], other5xx: 0, other: 0, timeouts: 0, connErrors: 0, notSent: 0, total: 0, statuses: {} }));
  const windowCount = Math.ceil(after.endMs / WINDOW_MS) + 1;
  const windows = Array.from({ length: windowCount }, () => ({ ok: [], bad: 0 }));
  for (let i = 0; i < run.count; i++) {
    const t = run.sentAtMs[i];
    const code = run.status[i];
    const phase = phases[phaseOf(t)];
    const window = windows[Math.min(windowCount - 1, Math.floor(t / WINDOW_MS))];
    phase.total++;
    if (code > 0) phase.statuses[code] = (phase.statuses[code] ?? 0) + 1;
    if (code >= 200 && code < 300) {
      phase.ok.push(run.latencyMs[i]);
      window.ok.push(run.latencyMs[i]);
      continue;
    }
    window.bad++;
    if (code === 503) phase.shed.push(run.latencyMs[i]);
    else if (code >= 500) phase.other5xx++;
    else if (code === TIMED_OUT) phase.timeouts++;
    else if (code === CONNECTION_ERROR) phase.connErrors++;
    else if (code === NOT_SENT) phase.notSent++;
    else phase.other++;
  }
  const p99 = (values) => percentile(Float64Array.from(values).sort(), 99);
  const steadyWindows = windows.slice(0, Math.floor(steady.endMs / WINDOW_MS)).filter((w) => w.ok.length > 0);
  const steadyBand = Math.max(...steadyWindows.map((w) => p99(w.ok)));
  // Windows that start at or after the burst's end.
  const firstAfter = Math.ceil(burst.endMs / WINDOW_MS);
  const afterWindows = windows.slice(firstAfter, Math.floor(after.endMs / WINDOW_MS));
  let lastBad = -1;
  afterWindows.forEach((w, k) => {
    if (w.bad > 0 || w.ok.length === 0 || p99(w.ok) > steadyBand) lastBad = k;
  });
  const recoveryMs =
    lastBad === afterWindows.length - 1 ? null : lastBad === -1 ? Math.max(0, firstAfter * WINDOW_MS - burst.endMs) : (firstAfter + lastBad + 1) * WINDOW_MS - burst.endMs;
  return { phases, steadyBand, recoveryMs, afterS: (after.endMs - after.startMs) / 1000 };
}

/** Statuses other than 2xx and 503, by phase: ` (burst: 500x75)`. */
function unexpectedStatuses(phases) {
  const parts = phases
    .map((p) => [p.name, Object.entries(p.statuses).filter(([code]) => !(code >= 200 && code < 300) && code !== '503')])
    .filter(([, entries]) => entries.length)
    .map(([name, entries]) => `${name}: ${entries.map(([code, n]) => `${code}x${n}`).join(', ')}`);
  return parts.length ? ` (${parts.join('; ')})` : '';
}

export default {
  name: 'spike',
  title: 'GET /v1/users/:id (sheddable) at 1/2 capacity, a burst at 3x capacity, back; shedding on vs off',
  goal: {
    custom: true,
    text: `burst p99 <= ${GOAL_P99_X}x steady, no timeouts, no 5xx but 503, no crash, back to steady <= ${GOAL_RECOVERY_MS / 1000} s`,
  },
  // The setup API measures capacity unshed; each side starts its own API (side env below).
  productEnv: { SHED_ENABLED: 'false' },
  sides: [
    { id: 'product', label: 'shedding on: admitted (2xx) during the burst', short: 'shedding on' },
    { id: 'on-steady', label: 'shedding on: steady phase before the burst (view)', viewOf: 'product', compare: false },
    { id: 'off', label: 'shedding off: answered 2xx during the burst', short: 'shedding off' },
    { id: 'off-steady', label: 'shedding off: steady phase before the burst (view)', viewOf: 'off', compare: false },
  ],
  settingsNote: (config) =>
    `capacity: ${config.spikeCapacityS} s closed loop over ${config.connections} connections (shedding off); then per side ${config.warmupS} s warm-up at ${STEADY_X}x, ` +
    `${config.spikeSteadyS} s at ${STEADY_X}x, ${config.spikeBurstS} s at ${BURST_X}x, ${config.spikeAfterS} s at ${STEADY_X}x, open loop over up to ${config.spikeSockets} connections, ` +
    `10 s client timeout from the send (waiting for a connection included), at most 5000 outstanding requests (more are counted as not sent); GET /health/live every 100 ms alongside. ` +
    `Shedding on = the API's defaults (SHED_MAX_EVENT_LOOP_DELAY_MS, SHED_MAX_IN_FLIGHT, SHED_SHEDDABLE_RATIO, ...)`,

  async setup(ctx) {
    const user = await signedInUser(ctx);
    const request = { method: 'GET', path: `/v1/users/${user.id}`, headers: { authorization: `Bearer ${user.accessToken}` } };
    const probe = await ctx.http(ctx.product.url, request);
    if (probe.status !== 200) throw new ProductNotReady(`GET /v1/users/:id answered ${probe.status}: ${probe.text.slice(0, 300)}`);
    const { config } = ctx;
    const url = ctx.product.url;
    if (config.warmupS > 0) await runLoad({ url, request, durationS: config.warmupS, connections: config.connections, pipelining: 1, record: false });
    const capacity = await runLoad({ url, request, durationS: config.spikeCapacityS, connections: config.connections, pipelining: 1 });
    if (!(capacity.reqPerSec > 0)) throw new Error(`capacity run answered no 2xx: ${JSON.stringify(capacity.statuses)}`);
    process.stderr.write(`[bench]   capacity: ${Math.round(capacity.reqPerSec)} req/s (p99 ${capacity.latencyMs.p99?.toFixed(2)} ms at ${config.connections} connections)\n`);
    return { request, capacity: capacity.reqPerSec };
  },

  async measure(ctx, state, side, { log, checkAborted }) {
    const { config } = ctx;
    const steadyRate = state.capacity * STEADY_X;
    const burstRate = state.capacity * BURST_X;
    const api = await startServer({ label: `api (${side})`, script: ctx.apiScript, env: { ...ctx.apiEnv, ...SIDE_ENV[side] }, timeoutMs: 120_000 });
    try {
      const load = (phases) =>
        runPhasedLoad({ url: api.url, request: state.request, phases, sockets: config.spikeSockets, probe: { path: '/health/live', everyMs: 100 } });
      if (config.warmupS > 0) {
        log(`warm-up ${config.warmupS} s at ${Math.round(steadyRate)} req/s`);
        await load([{ name: 'warm-up', ratePerS: steadyRate, durationS: config.warmupS }]);
        checkAborted();
      }
      log(`${config.spikeSteadyS} s at ${Math.round(steadyRate)} req/s, ${config.spikeBurstS} s at ${Math.round(burstRate)} req/s, ${config.spikeAfterS} s at ${Math.round(steadyRate)} req/s`);
      const cpuBefore = processCpuSeconds(api.pid);
      const run = await load([
        { name: 'steady', ratePerS: steadyRate, durationS: config.spikeSteadyS },
        { name: 'burst', ratePerS: burstRate, durationS: config.spikeBurstS },
        { name: 'after', ratePerS: steadyRate, durationS: config.spikeAfterS },
      ]);
      const cpuAfter = processCpuSeconds(api.pid);
      checkAborted();
      const alive = isAlive(api.pid) && (await ctx.http(api.url, { path: '/health/live' }).then((r) => r.status === 200, () => false));

      const { phases, steadyBand, recoveryMs, afterS } = analyse(run);
      const [steady, burst] = phases;
      const burstS = (burst.endMs - burst.startMs) / 1000;
      const steadyStats = latencySummary(steady.ok);
      const burstStats = latencySummary(burst.ok);
      const okTotal = phases.reduce((n, p) => n + p.ok.length, 0);
      const failed = (p) => p.timeouts + p.connErrors + p.notSent;
      const health = run.probe.status;
      const healthOk = health.filter((s) => s === 200).length;
      const goals = [
        { id: 'steady', goal: 'steady p99 (2xx)', value: fmt(steadyStats.p99), met: null },
        { id: 'offered', goal: 'burst: offered req/s (sent)', value: `${Math.round((burst.total - burst.notSent) / burstS)} of ${Math.round(burstRate)} planned`, met: null },
        { id: 'admitted', goal: 'burst: admitted req/s (2xx)', value: `${Math.round(burst.ok.length / burstS)}`, met: null },
        {
          id: 'burst-p99',
          goal: `burst: p99 of admitted <= ${GOAL_P99_X}x steady p99`,
          value: `${fmt(burstStats.p99)} (${steadyStats.p99 ? (burstStats.p99 / steadyStats.p99).toFixed(2) : '-'}x)`,
          met: burstStats.p99 !== null && steadyStats.p99 !== null && burstStats.p99 <= GOAL_P99_X * steadyStats.p99,
        },
        { id: 'shed', goal: 'burst: shed as 503 (share, p99 of a 503)', value: `${pct(burst.shed.length, burst.total)}, ${fmt(latencySummary(burst.shed).p99)}`, met: null },
        {
          id: 'no-timeouts',
          goal: 'no timeouts / connection errors / not sent (whole run)',
          value: phases.map(failed).reduce((a, b) => a + b, 0) === 0 ? '0' : `${phases.reduce((n, p) => n + p.timeouts, 0)} / ${phases.reduce((n, p) => n + p.connErrors, 0)} / ${phases.reduce((n, p) => n + p.notSent, 0)}`,
          met: phases.every((p) => failed(p) === 0),
        },
        {
          id: 'no-5xx',
          goal: 'no 5xx other than 503 (whole run)',
          value: String(phases.reduce((n, p) => n + p.other5xx, 0)) + unexpectedStatuses(phases),
          met: phases.every((p) => p.other5xx === 0),
        },
        { id: 'no-crash', goal: 'no crash (alive, /health/live 200 after)', value: alive ? 'alive' : 'DOWN', met: alive },
        {
          id: 'recovery',
          goal: `back to steady after the burst <= ${GOAL_RECOVERY_MS / 1000} s`,
          value: recoveryMs === null ? `not within ${afterS.toFixed(1)} s` : `${(recoveryMs / 1000).toFixed(1)} s (band: window p99 <= ${fmt(steadyBand)})`,
          met: recoveryMs !== null && recoveryMs <= GOAL_RECOVERY_MS,
        },
        { id: 'health', goal: 'GET /health/live alongside: 200s, p99', value: `${healthOk} of ${health.length}, ${fmt(latencySummary(run.probe.latencyMs.filter((v) => !Number.isNaN(v))).p99)}`, met: null },
      ];
      log(goals.map((g) => `${g.goal}: ${g.value}${g.met === null ? '' : g.met ? ' (met)' : ' (NOT met)'}`).join('; '));
      const stats = {
        reqPerSec: burst.ok.length / burstS,
        latencyMs: burstStats,
        cpuUsPerRequest: cpuBefore !== null && cpuAfter !== null && okTotal ? ((cpuAfter - cpuBefore) * 1e6) / okTotal : null,
        capacity: state.capacity,
        phases: phases.map((p) => ({ name: p.name, startMs: p.startMs, endMs: p.endMs, total: p.total, statuses: p.statuses, ok: p.ok.length, shed: p.shed.length, other5xx: p.other5xx, other: p.other, timeouts: p.timeouts, connErrors: p.connErrors, notSent: p.notSent })),
        steadyBandMs: steadyBand,
        recoveryMs,
        alive,
      };
      // The API logs at warn: its errors (a 500's stack) say where a 5xx came from.
      const errors = api.output().split('\n').filter((line) => line.includes('"level":50'));
      const warnings = errors.length ? [`the API logged ${errors.length} errors (in its last 20 000 characters of output), first: ${errors[0].slice(0, 400)}`] : [];
      const steadyView = { reqPerSec: steady.ok.length / ((steady.endMs - steady.startMs) / 1000), latencyMs: steadyStats, cpuUsPerRequest: null };
      return { stats, views: { [side === 'product' ? 'on-steady' : 'off-steady']: steadyView }, goals, problems: [], warnings };
    } finally {
      await api.stop();
    }
  },
};
