// The printed table and the JSON file.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const fmtInt = (n) => (n === null || n === undefined ? '-' : Math.round(n).toLocaleString('en-US'));
const fmtMs = (n) => (n === null || n === undefined ? '-' : n < 10 ? n.toFixed(2) : n.toFixed(1));
const fmtRatio = (n) => (n === null || n === undefined || !Number.isFinite(n) ? '-' : `${n.toFixed(2)}x`);

/**
 * A goal is relative to a baseline ({ baseline, minThroughputRatio, maxP99Ratio }: the
 * subject, i.e. the product or `goal.subject`, over that baseline) or absolute on the
 * subject's own figures ({ maxP99Ms }).
 */
export function goalText(goal) {
  if (!goal) return 'info only';
  if (goal.also?.length) return relativeGoals(goal).map((g) => goalText({ ...g, also: undefined })).join('; ');
  if (goal.text) return goal.text;
  const parts = [];
  if (goal.minThroughputRatio !== undefined) parts.push(`${goal.unit ?? 'req/s'} >= ${goal.minThroughputRatio.toFixed(2)}x`);
  if (goal.maxP99Ratio !== undefined) parts.push(`p99 <= ${goal.maxP99Ratio.toFixed(2)}x`);
  if (goal.maxP99Ms !== undefined) parts.push(`p99 <= ${goal.maxP99Ms} ms`);
  return `${parts.join(', ')}${goal.baseline ? ` vs ${goal.baseline}` : ''}`;
}

/**
 * The relative goals of a pair: `goal` itself when it names a baseline, plus `goal.also`,
 * more goals against other baselines (the issue sets e.g. the cache hit against both A+rl
 * and A). The pair's verdict needs every one of them.
 */
export function relativeGoals(goal) {
  if (!goal) return [];
  return [...(goal.baseline ? [goal] : []), ...(goal.also ?? []).map((g) => ({ unit: goal.unit, ...g }))];
}

/** The goal against one baseline, or null when that side is info only. */
export function goalFor(goal, sideId) {
  return relativeGoals(goal).find((g) => g.baseline === sideId) ?? null;
}

/** Whether the subject's own figures meet the absolute part of a goal; null when it has none. */
export function evaluateAbsoluteGoal(stats, goal) {
  if (goal?.maxP99Ms === undefined) return null;
  if (!stats || stats.latencyMs?.p99 === null || stats.latencyMs?.p99 === undefined) return null;
  return stats.latencyMs.p99 <= goal.maxP99Ms;
}

/** Ratios of the product against one baseline, and whether a goal holds. */
export function compare(product, baseline, goal) {
  const throughput = product && baseline ? product.reqPerSec / baseline.reqPerSec : null;
  const p99 = product && baseline ? product.latencyMs.p99 / baseline.latencyMs.p99 : null;
  let met = null;
  if (goal && throughput !== null) {
    met = true;
    if (goal.minThroughputRatio !== undefined && !(throughput >= goal.minThroughputRatio)) met = false;
    if (goal.maxP99Ratio !== undefined && !(p99 <= goal.maxP99Ratio)) met = false;
  }
  return { throughput, p99, met };
}

function table(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => String(row[i]).length)));
  const right = new Set([2, 3, 4, 5, 6, 7, 8]);
  const line = (row) =>
    row.map((cell, i) => (right.has(i) ? String(cell).padStart(widths[i]) : String(cell).padEnd(widths[i]))).join('  ').trimEnd();
  return [line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

export function renderTable(results) {
  const rows = [['scenario', 'side', 'req/s', 'p50 ms', 'p99 ms', 'max ms', 'CPU us/req', 'req/s ratio', 'p99 ratio', 'goal', 'met']];
  const notes = [];
  const fmtMet = (met) => (met === null || met === undefined ? '-' : met ? 'yes' : 'NO');
  for (const scenario of results.scenarios) {
    // Older result files have no `subject`: it was always the product.
    const subject = scenario.subject ?? { id: 'product', label: 'product (API)', stats: scenario.product };
    if (scenario.status !== 'ok' && !subject.stats) {
      rows.push([scenario.name, `(${scenario.status})`, '-', '-', '-', '-', '-', '-', '-', goalText(scenario.goal), '-']);
      notes.push(`${scenario.name}: ${scenario.status}: ${scenario.reason}`);
      continue;
    }
    const p = subject.stats;
    const absoluteGoal = scenario.goal && !scenario.goal.baseline;
    rows.push([
      scenario.name,
      subject.id === 'product' ? subject.label : `${subject.id}: ${subject.label}`,
      fmtInt(p?.reqPerSec),
      fmtMs(p?.latencyMs.p50),
      fmtMs(p?.latencyMs.p99),
      fmtMs(p?.latencyMs.max),
      fmtInt(p?.cpuUsPerRequest),
      '',
      '',
      absoluteGoal ? goalText(scenario.goal) : '',
      absoluteGoal ? fmtMet(subject.met) : '',
    ]);
    for (const b of scenario.baselines) {
      const sideGoal = goalFor(scenario.goal, b.id);
      rows.push([
        '',
        `${b.id}: ${b.label}`,
        fmtInt(b.stats?.reqPerSec),
        fmtMs(b.stats?.latencyMs.p50),
        fmtMs(b.stats?.latencyMs.p99),
        fmtMs(b.stats?.latencyMs.max),
        fmtInt(b.stats?.cpuUsPerRequest),
        fmtRatio(b.comparison?.throughput),
        fmtRatio(b.comparison?.p99),
        sideGoal ? goalText({ ...sideGoal, also: undefined }).replace(/ vs .*/, '') : 'info',
        sideGoal ? fmtMet(b.comparison?.met) : '',
      ]);
    }
    for (const note of scenario.notes) notes.push(`${scenario.name}: ${note}`);
    if (scenario.status !== 'ok') notes.push(`${scenario.name}: ${scenario.status}: ${scenario.reason ?? 'see the notes above; no goal verdict'}`);
  }
  const s = results.settings;
  const header = [
    `bench ${results.benchId}: ${s.connections} connections, pipelining ${s.pipelining}, ${s.warmupS} s warm-up + ${s.durationS} s per side` +
      `${s.rounds > 1 ? ` x ${s.rounds} rounds (medians)` : ''}, DB_POOL_MAX=${s.poolMax}; ${results.machine.cpus} CPUs, Node ${results.machine.node}`,
    'One process per side, one side at a time. Ratios are the first row of a pair (the product unless named) over the row.',
    'CPU us/req: the server process\'s own CPU time per response (its work per request; usually steadier than req/s when',
    'other work shares the machine). Pairs that are not request/response load name their unit in the side\'s label.',
  ].join('\n');
  return [header, '', table(rows), ...goalTables(results), ...(notes.length ? ['', 'notes:', ...notes.map((n) => `- ${n}`)] : [])].join('\n');
}

/**
 * Pairs with several goals of their own (goal.custom, e.g. the spike pair): one row per
 * goal, one column per side (and round), each figure with its verdict.
 */
function goalTables(results) {
  const out = [];
  for (const scenario of results.scenarios) {
    const checks = scenario.goalChecks ?? [];
    if (!checks.length) continue;
    const rows = [[`${scenario.name}: goal`, ...checks.map((c) => c.label)]];
    for (const { id, goal } of checks[0].goals) {
      rows.push([
        goal,
        ...checks.map((c) => {
          const g = c.goals.find((x) => x.id === id);
          return g ? `${g.value}${g.met === null || g.met === undefined ? '' : g.met ? '  met' : '  NOT met'}` : '-';
        }),
      ]);
    }
    const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => String(row[i]).length)));
    const line = (row) => row.map((cell, i) => String(cell).padEnd(widths[i])).join('  ').trimEnd();
    out.push('', line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line));
  }
  return out;
}

export function writeJson(file, results) {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
}
