// Issue 11, "boot to ready on a migrated database": wall time from spawning the API until
// GET /health/ready answers 200 (its migrations already applied: the run's first API did
// it; the bootstrap then only checks they are up to date), vs plain Fastify from spawn to
// its first 200. BENCH_BOOT_STARTS (5) starts per side, the median (p50) reported; readiness is
// polled every 20 ms, so figures are good to ~20 ms. Resident memory when ready comes with it.
import path from 'node:path';
import { BENCH_DIR } from '../lib/config.mjs';
import { processRssMb } from '../lib/cpu.mjs';
import { startServer } from '../lib/processes.mjs';
import { latencySummary } from '../lib/stats.mjs';

const STARTS = Number(process.env.BENCH_BOOT_STARTS || 5);
const GOAL_MS = 1000;


async function bootTimes(start) {
  const times = [];
  const rss = [];
  for (let i = 0; i < STARTS; i++) {
    const started = process.hrtime.bigint();
    const server = await start();
    times.push(Number(process.hrtime.bigint() - started) / 1e6);
    rss.push(processRssMb(server.pid));
    await server.stop();
  }
  return { times, rss };
}

export default {
  name: 'boot',
  title: 'spawn to ready: the API on a migrated database vs plain Fastify',
  goal: { custom: true, subject: 'product', text: `median spawn -> GET /health/ready 200 <= ${GOAL_MS} ms` },
  sides: [
    { id: 'product', label: 'API: spawn -> /health/ready 200 (ms)', short: 'API', api: false },
    { id: 'fastify', label: 'plain Fastify: spawn -> /health/live 200 (ms)', short: 'plain Fastify', api: false },
  ],
  settingsNote: () => `${STARTS} starts per side, one at a time, readiness polled every 20 ms; the API with the run's usual environment (all modules, migrations already applied)`,

  async measure(ctx, _state, sideId, { log }) {
    const { times, rss } =
      sideId === 'product'
        ? await bootTimes(() => startServer({ label: 'api boot', script: ctx.apiScript, env: ctx.apiEnv, readyPath: '/health/ready', pollMs: 20, timeoutMs: 60_000 }))
        : await bootTimes(() => startServer({ label: 'fastify boot', script: path.join(BENCH_DIR, 'baselines', 'health.mjs'), env: {}, pollMs: 20 }));
    const summary = latencySummary(times);
    const ms = summary.p50;
    log(`starts: ${times.map((t) => Math.round(t)).join(', ')} ms; RSS when ready ${rss.map((r) => Math.round(r ?? NaN)).join(', ')} MB`);
    const goals = [
      { id: 'boot', goal: `median spawn -> ready <= ${GOAL_MS} ms`, value: `${Math.round(ms)} ms (min ${Math.round(Math.min(...times))}, max ${Math.round(Math.max(...times))})`, met: sideId === 'product' ? ms <= GOAL_MS : null },
      { id: 'rss', goal: 'resident memory when ready (info)', value: `${Math.round(latencySummary(rss.filter((r) => r !== null)).p50)} MB`, met: null },
    ];
    return {
      stats: { reqPerSec: 1000 / ms, latencyMs: summary, cpuUsPerRequest: null, unit: 'starts/s' },
      goals,
      problems: [],
    };
  },
};
