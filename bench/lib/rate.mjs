// Open-loop load at a fixed rate: request i is sent at start + i / rate whether or not
// earlier ones have answered (a slow server cannot slow the load down and hide its own
// latency), on keep-alive connections to 127.0.0.1. Every request's timings are kept:
// scenarios correlate them with rows the server wrote.
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { assertLoopback, onAbortLoad } from './load.mjs';

/** Wall-clock milliseconds with sub-millisecond precision (the same clock as the local Postgres' now()). */
export const wallMs = () => performance.timeOrigin + performance.now();

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Sends `ratePerS` x `durationS` requests ({ method, path, headers, body, bodies? }) at a steady
 * rate. Resolves once every request has answered or timed out, with
 * { sent, durationS, statuses, errors, results: [{ sentAt, doneAt, latencyMs, status, json }] }
 * (times from wallMs()). `maxInFlight` bounds the open requests: beyond it a request is
 * counted as an error instead of sent, so a stalled server cannot pile up sockets.
 */
export async function runFixedRate({ url, request, ratePerS, durationS, timeoutMs = 10_000, maxInFlight = 2000 }) {
  assertLoopback(url);
  const target = new URL(url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const encode = (b) => (b === undefined ? undefined : Buffer.from(typeof b === 'string' ? b : JSON.stringify(b)));
  // `bodies`: request i sends bodies[i % length] (e.g. orders of different products).
  const bodies = request.bodies ? request.bodies.map(encode) : [encode(request.body)];
  const headersFor = (body) => ({ ...(request.headers ?? {}), ...(body ? { 'content-type': 'application/json', 'content-length': String(body.length) } : {}) });
  const total = Math.max(1, Math.round(ratePerS * durationS));
  const intervalMs = 1000 / ratePerS;
  const results = new Array(total);
  const statuses = {};
  let errors = 0;
  let inFlight = 0;
  let stopped = false;
  const unregister = onAbortLoad(() => {
    stopped = true;
  });
  const pending = new Set();

  const send = (i) =>
    new Promise((resolve) => {
      const body = bodies[i % bodies.length];
      const headers = headersFor(body);
      const sentAt = wallMs();
      inFlight++;
      const finish = (status, json) => {
        inFlight--;
        const doneAt = wallMs();
        results[i] = { sentAt, doneAt, latencyMs: doneAt - sentAt, status, json };
        if (status) statuses[status] = (statuses[status] ?? 0) + 1;
        else errors++;
        resolve();
      };
      const req = http.request(
        { host: target.hostname, port: target.port, method: request.method ?? 'GET', path: request.path, headers, agent, timeout: timeoutMs },
        (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => {
            let json;
            try {
              json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
            } catch {
              json = undefined;
            }
            finish(res.statusCode, json);
          });
          res.on('error', () => finish(0));
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => finish(0));
      req.end(body);
    });

  const startedAt = performance.now();
  let sent = 0;
  try {
    for (let i = 0; i < total && !stopped; i++) {
      const wait = startedAt + i * intervalMs - performance.now();
      if (wait > 1) await sleep(wait - 0.5); // timers fire late, never early; the loop catches up
      if (inFlight >= maxInFlight) {
        results[i] = { sentAt: wallMs(), doneAt: null, latencyMs: null, status: 0, json: undefined };
        errors++;
        continue;
      }
      const p = send(i);
      pending.add(p);
      p.then(() => pending.delete(p));
      sent++;
    }
    const sendingS = (performance.now() - startedAt) / 1000;
    await Promise.all(pending);
    return { sent, planned: total, durationS: sendingS, statuses, errors, results: results.filter(Boolean) };
  } finally {
    unregister();
    agent.destroy();
  }
}
