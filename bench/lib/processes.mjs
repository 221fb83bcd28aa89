// Child processes under test (the API and the baselines): spawn, wait until they answer,
// stop. Every server listens on 127.0.0.1 on a port chosen here.
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import { ROOT } from './config.mjs';

const running = new Set();

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts `node <script>` with exactly `env` (plus PATH), waits until GET `readyPath`
 * answers 200 (polled every `pollMs`), and returns { url, pid, stop(), output() }.
 */
export async function startServer({ label, script, env, nodeArgs = [], readyPath = '/health/live', timeoutMs = 60_000, pollMs = 100 }) {
  const port = await freePort();
  // BENCH_CPU_PROF_DIR: every server writes a V8 CPU profile there when it stops (open
  // in Chrome DevTools or speedscope), so a pair's figures come with where the time went.
  const profile = process.env.BENCH_CPU_PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF_DIR}`, `--cpu-prof-name=${label.replace(/[^\w.-]+/g, '_')}-${Date.now()}.cpuprofile`] : [];
  const child = spawn(process.execPath, [...profile, ...nodeArgs, script], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env, HOST: '127.0.0.1', PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // The first lines (what went wrong first) and the last 20 000 characters; BENCH_LOG_DIR
  // keeps everything, one file per server.
  let output = '';
  let head = '';
  const log = process.env.BENCH_LOG_DIR ? createWriteStream(path.join(process.env.BENCH_LOG_DIR, `${label.replace(/[^\w.-]+/g, '_')}-${Date.now()}.log`)) : null;
  const keep = (chunk) => {
    const text = chunk.toString();
    if (head.length < 4000) head += text.slice(0, 4000 - head.length);
    output = (output + text).slice(-20_000);
    log?.write(text);
  };
  child.once('exit', () => log?.end());
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const handle = {
    label,
    pid: child.pid,
    url: `http://127.0.0.1:${port}`,
    output: () => output,
    /** The first 4 000 characters the process wrote. */
    firstOutput: () => head,
    async stop() {
      running.delete(handle);
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
  running.add(handle);

  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      running.delete(handle);
      throw new Error(`${label} exited (${child.exitCode ?? child.signalCode}) before answering:\n${output}`);
    }
    try {
      const response = await fetch(handle.url + readyPath, { signal: AbortSignal.timeout(1000) });
      await response.arrayBuffer();
      if (response.status === 200) return handle;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await handle.stop();
      throw new Error(`${label} did not answer GET ${readyPath} within ${timeoutMs} ms:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** Stops every server still running (used on errors and signals). */
export async function stopAll() {
  await Promise.all([...running].map((handle) => handle.stop().catch(() => {})));
}

/**
 * Runs `node <script>` to completion (a baseline that is a loop, not a server) with
 * exactly `env` (plus PATH) and returns the JSON object it printed last on stdout. Killed
 * after `timeoutMs`; stopped by stopAll() like the servers.
 */
export async function runScript({ label, script, env, nodeArgs = [], timeoutMs = 120_000 }) {
  const child = spawn(process.execPath, [...nodeArgs, script], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => {
    stdout = (stdout + chunk.toString()).slice(-100_000);
  });
  child.stderr.on('data', (chunk) => {
    stderr = (stderr + chunk.toString()).slice(-20_000);
  });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const handle = {
    label,
    pid: child.pid,
    async stop() {
      running.delete(handle);
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
  running.add(handle);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const { code, signal } = await exited;
  clearTimeout(timer);
  running.delete(handle);
  if (code !== 0) throw new Error(`${label} exited (${code ?? signal}${signal === 'SIGKILL' ? `, killed after ${timeoutMs} ms or stopped` : ''}):\n${stderr || stdout}`);
  const last = stdout.trim().split('\n').pop() ?? '';
  try {
    return { result: JSON.parse(last), stderr };
  } catch {
    throw new Error(`${label} printed no JSON result: ${stdout.slice(-500)}${stderr.slice(-500)}`);
  }
}
