// Builds the API (`npx nest build api`) when dist is missing or older than its sources.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './config.mjs';

export const API_MAIN = path.join(ROOT, 'dist', 'apps', 'api', 'src', 'main.js');

function newestMtime(dir, newest = { mtimeMs: 0, file: '' }) {
  if (!existsSync(dir)) return newest;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules') newestMtime(full, newest);
    } else if (/\.(ts|json)$/.test(entry.name) && !/\.spec\.ts$/.test(entry.name)) {
      const { mtimeMs } = statSync(full);
      if (mtimeMs > newest.mtimeMs) Object.assign(newest, { mtimeMs, file: full });
    }
  }
  return newest;
}

/** Returns why a build is needed, or null when dist is up to date. */
export function staleReason() {
  if (!existsSync(API_MAIN)) return `${path.relative(ROOT, API_MAIN)} is missing`;
  const built = statSync(API_MAIN).mtimeMs;
  const newest = newestMtime(path.join(ROOT, 'apps'));
  newestMtime(path.join(ROOT, 'libs'), newest);
  for (const file of ['tsconfig.json', 'tsconfig.base.json', 'tsconfig.build.json', 'nest-cli.json']) {
    const full = path.join(ROOT, file);
    if (existsSync(full) && statSync(full).mtimeMs > newest.mtimeMs) Object.assign(newest, { mtimeMs: statSync(full).mtimeMs, file: full });
  }
  return newest.mtimeMs > built ? `${path.relative(ROOT, newest.file)} is newer than the build` : null;
}

export function ensureBuilt(mode, log) {
  if (mode === 'never') {
    if (!existsSync(API_MAIN)) throw new Error(`BENCH_BUILD=never but ${API_MAIN} is missing`);
    return { built: false, reason: 'BENCH_BUILD=never' };
  }
  const reason = mode === 'always' ? 'BENCH_BUILD=always' : staleReason();
  if (!reason) return { built: false, reason: 'dist is up to date' };
  log(`building the API (${reason}): npx nest build api`);
  const result = spawnSync('npx', ['nest', 'build', 'api'], { cwd: ROOT, stdio: ['ignore', 2, 2] });
  if (result.status !== 0) throw new Error(`nest build api failed (exit ${result.status ?? result.signal})`);
  return { built: true, reason };
}
