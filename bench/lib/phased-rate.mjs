// Open-loop load in phases of fixed rates (steady, burst, steady again) on keep-alive
// connections to 127.0.0.1: request i of a phase is sent on time whether or not earlier
// ones have answered, so a server that queues cannot slow the load down and hide it.
// Lean on purpose (no body parsing, timings in typed arrays): the burst phase asks for
// thousands of requests per second from the same machine.
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { assertLoopback, onAbortLoad } from './load.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** `status` of a request the client gave up on (no answer within timeoutMs). */
export const TIMED_OUT = -1;
/** `status` of a connection error (refused, reset: e.g. the server crashed). */
export const CONNECTION_ERROR = -2;
/** `status` of a request never sent: `maxOutstanding` answers were already awaited. */
export const NOT_SENT = -3;

/**
 * Runs `phases` ([{ name, ratePerS, durationS }]) back to back with `request`
 * ({ method, path, headers }) over at most `sockets` connections, and alongside it
 * `probe` ({ path, everyMs }): a separate trickle, e.g. a health check, whose answers are
 * kept apart. Resolves once every request has answered or timed out, with
 * { startedAt, phases: [{ name, startMs, endMs }], count, sentAtMs, latencyMs, status,
 *   probe: { sentAtMs, latencyMs, status } } (times in ms from the run's start).
 */
export async function runPhasedLoad({ url, request, phases, sockets = 512, timeoutMs = 10_000, maxOutstanding = 5000, probe = null }) {
  assertLoopback(url);
  const target = new URL(url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets });
  const probeAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const planned = phases.reduce((n, p) => n + Math.max(1, Math.round(p.ratePerS * p.durationS)), 0);
  const sentAtMs = new Float64Array(planned);
  const latencyMs = new Float64Array(planned).fill(NaN);
  const status = new Int16Array(planned);
  const probeResults = { sentAtMs: [], latencyMs: [], status: [] };
  let outstanding = 0;
  let stopped = false;
  const unregister = onAbortLoad(() => {
    stopped = true;
  });
  let pending = 0;
  let sendingDone = false;
  let drained;
  const allDone = new Promise((resolve) => (drained = resolve));
  const t0 = performance.now();
  const now = () => performance.now() - t0;

  const send = (targetAgent, path, onDone) => {
    const sentAt = now();
    let done = false;
    // From the send, waiting for a free connection included (a socket `timeout` would
    // only count idle time on a socket once one is assigned).
    const deadline = setTimeout(() => {
      finish(TIMED_OUT);
      req.destroy();
    }, timeoutMs);
    const finish = (code) => {
      if (done) return;
      done = true;
      clearTimeout(deadline);
      onDone(sentAt, now() - sentAt, code);
    };
    const req = http.request({ host: target.hostname, port: target.port, method: request.method ?? 'GET', path, headers: request.headers ?? {}, agent: targetAgent }, (res) => {
      res.on('data', () => undefined);
      res.on('end', () => finish(res.statusCode));
      res.on('error', () => finish(CONNECTION_ERROR));
    });
    req.on('error', () => finish(CONNECTION_ERROR));
    req.end();
  };

  const record = (i) => (sentAt, latency, code) => {
    sentAtMs[i] = sentAt;
    latencyMs[i] = code > 0 ? latency : NaN;
    status[i] = code;
    outstanding--;
    if (--pending === 0 && sendingDone) drained();
  };

  let probeTimer = null;
  if (probe) {
    probeTimer = setInterval(() => {
      pending++;
      send(probeAgent, probe.path, (sentAt, latency, code) => {
        probeResults.sentAtMs.push(sentAt);
        probeResults.latencyMs.push(code > 0 ? latency : NaN);
        probeResults.status.push(code);
        if (--pending === 0 && sendingDone) drained();
      });
    }, probe.everyMs);
  }

  let i = 0;
  const phaseTimes = [];
  try {
    for (const phase of phases) {
      const count = Math.max(1, Math.round(phase.ratePerS * phase.durationS));
      const startMs = now();
      const intervalMs = 1000 / phase.ratePerS;
      for (let k = 0; k < count && !stopped; k++, i++) {
        const wait = startMs + k * intervalMs - now();
        if (wait > 1) await sleep(wait - 0.5); // timers fire late, never early; the loop catches up
        if (outstanding >= maxOutstanding) {
          sentAtMs[i] = now();
          status[i] = NOT_SENT;
          continue;
        }
        outstanding++;
        pending++;
        send(agent, request.path, record(i));
      }
      phaseTimes.push({ name: phase.name, startMs, endMs: startMs + count * intervalMs });
    }
  } finally {
    if (probeTimer) clearInterval(probeTimer);
    sendingDone = true;
    if (pending === 0) drained();
  }
  await allDone;
  unregister();
  agent.destroy();
  probeAgent.destroy();
  return { phases: phaseTimes, count: i, sentAtMs: sentAtMs.subarray(0, i), latencyMs: latencyMs.subarray(0, i), status: status.subarray(0, i), probe: probeResults };
}
