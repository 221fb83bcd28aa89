#!/usr/bin/env node
// Prints where a V8 CPU profile (`--cpu-prof`, e.g. from BENCH_CPU_PROF_DIR) spent its time:
// the heaviest functions by self time, and self time per package (node_modules/<pkg>,
// node: internals, this project's own code), idle and GC apart; then total time (self +
// callees, each function counted once per sample) of this project's functions and of the
// frameworks' entry points, which says what a request path costs as a whole.
//   node bench/profile-summary.mjs <file.cpuprofile> [top=25]
import { readFileSync } from 'node:fs';

const [file, topArg] = process.argv.slice(2);
if (!file) {
  console.error('usage: node bench/profile-summary.mjs <file.cpuprofile> [top]');
  process.exit(2);
}
const top = Number(topArg ?? 25);
const profile = JSON.parse(readFileSync(file, 'utf8'));

// Self time per node: the samples' time deltas attributed to the sampled node.
const selfUs = new Map();
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i];
  selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
}

/** The package a frame belongs to: what a reader would change or replace. */
function packageOf(url) {
  if (!url) return '(native)';
  if (url.startsWith('node:')) return 'node:' + url.slice(5).split('/')[0];
  const modules = url.lastIndexOf('node_modules/');
  if (modules >= 0) {
    const rest = url.slice(modules + 'node_modules/'.length).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  const own = /\/(apps|libs)\/([^/]+)\//.exec(url);
  return own ? `${own[1]}/${own[2]}` : url;
}

function frameName({ functionName, url, lineNumber }) {
  return `${functionName || '(anonymous)'} ${url ? `${url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*?\/(apps|libs|dist)\//, '$1/')}:${lineNumber + 1}` : ''}`;
}

const byFunction = new Map();
const byPackage = new Map();
let total = 0;
let idle = 0;
for (const node of profile.nodes) {
  const us = selfUs.get(node.id) ?? 0;
  if (us === 0) continue;
  total += us;
  const { functionName, url, lineNumber } = node.callFrame;
  if (functionName === '(idle)' || functionName === '(program)') {
    idle += functionName === '(idle)' ? us : 0;
  }
  const name = frameName(node.callFrame);
  byFunction.set(name, (byFunction.get(name) ?? 0) + us);
  const pkg = ['(idle)', '(garbage collector)', '(program)'].includes(functionName) ? functionName : packageOf(url);
  byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + us);
}

const busy = total - idle;
const pct = (us) => `${((100 * us) / busy).toFixed(1).padStart(5)} %`;
console.log(`${file}: ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s busy (shares below are of busy time)\n`);
console.log('self time by package');
for (const [pkg, us] of [...byPackage].filter(([p]) => p !== '(idle)').sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`  ${pct(us)}  ${pkg}`);
}
console.log('\nheaviest functions (self time)');
for (const [name, us] of [...byFunction].filter(([n]) => !n.startsWith('(idle)')).sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`  ${pct(us)}  ${name}`);
}

// Total time: walk each sampled node's stack once, crediting every distinct function on it.
const parentOf = new Map();
for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
const nodeById = new Map(profile.nodes.map((node) => [node.id, node]));
const totalByFunction = new Map();
for (const [id, us] of selfUs) {
  const own = nodeById.get(id).callFrame.functionName;
  if (own === '(idle)' || own === '(program)' || own === '(garbage collector)') continue;
  const seen = new Set();
  for (let at = id; at !== undefined; at = parentOf.get(at)) {
    const frame = nodeById.get(at).callFrame;
    const pkg = packageOf(frame.url);
    // This project's code, and the frameworks' request entry points.
    if (!/^(apps|libs)\//.test(pkg) && !['@nestjs/core', 'fastify', '@openfeature/server-sdk', 'ioredis', 'prom-client', 'pino'].includes(pkg)) continue;
    const name = frameName(frame);
    if (seen.has(name)) continue;
    seen.add(name);
    totalByFunction.set(name, (totalByFunction.get(name) ?? 0) + us);
  }
}
console.log('\nheaviest functions of this project and the frameworks (total time: self + callees)');
for (const [name, us] of [...totalByFunction].sort((a, b) => b[1] - a[1]).slice(0, top * 2)) {
  console.log(`  ${pct(us)}  ${name}`);
}
