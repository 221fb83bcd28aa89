// How busy the machine is before a side is measured: the harness runs other engineers'
// builds and tests alongside on the same cores, and a busy machine skews a pair.
import { readFileSync } from 'node:fs';
import os from 'node:os';

function totals() {
  let idle = 0;
  let total = 0;
  for (const cpu of os.cpus()) {
    const t = cpu.times;
    idle += t.idle;
    total += t.user + t.nice + t.sys + t.idle + t.irq;
  }
  return { idle, total };
}

/** Percentage of all CPUs busy over `ms` (while nothing of ours is under load). */
export async function sampleBusyPct(ms = 1000) {
  const a = totals();
  await new Promise((r) => setTimeout(r, ms));
  const b = totals();
  const total = b.total - a.total;
  return total > 0 ? Math.round((100 * (total - (b.idle - a.idle))) / total) : 0;
}

/**
 * CPU seconds (user + system) a process has used so far, from /proc (Linux; null
 * elsewhere). Divided by the requests served, it tells how much work a side does per
 * request, a figure that other load on the machine disturbs far less than req/s.
 */
export function processCpuSeconds(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return null;
  }
}
const CLOCK_TICKS = 100; // USER_HZ: 100 on every mainstream Linux

/** Resident memory of a process in MB, from /proc (Linux; null elsewhere). */
export function processRssMb(pid) {
  try {
    const kb = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Number(kb) / 1024 : null;
  } catch {
    return null;
  }
}
