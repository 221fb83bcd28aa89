import type { Job, JobStatus, Queue } from 'bull';
import type { IntegrationEvent } from './integration-event';

/**
 * States in which a job can sit with its data for a long time: failed jobs are kept for
 * FAILED_JOB_RETENTION (7 days), delayed ones are retries waiting for their backoff,
 * waiting/paused ones have not run yet. Active jobs are locked by a worker and cannot be
 * removed; they finish (completed jobs are removed at once) or fail (and are then found
 * by the next erasure of the same subject, or expire with the failed set).
 */
const ERASABLE_STATES: readonly JobStatus[] = ['failed', 'delayed', 'waiting', 'paused'];

/** Jobs read from Redis per call. */
const PAGE_SIZE = 500;

/** Upper bound on the jobs looked at per state: the failed set keeps at most 10 000 (FAILED_JOB_RETENTION). */
export const EVENT_PATH_SCAN_LIMIT = 10_000;

/** Which events concern the subject being erased: `payload[field] === value` (e.g. `userId`). */
export interface ErasureSubject {
  /** A top-level field of the event payload; read as text, in SQL and in job data alike. */
  payloadField: string;
  value: string;
}

export interface QueuedEventRemoval {
  scanned: number;
  removed: number;
  /** A state held more jobs than the scan limit: some were not looked at. */
  truncated: boolean;
}

/**
 * Removes the jobs of `queue` in a state of ERASABLE_STATES whose event payload concerns
 * `subject`, except `exceptEventId`. Reads at most `scanLimit` jobs per state, in pages; a
 * job that started meanwhile (locked) is left alone.
 */
export async function removeQueuedEvents(
  queue: Queue,
  subject: ErasureSubject,
  options: { exceptEventId?: string; scanLimit?: number } = {},
): Promise<QueuedEventRemoval> {
  const limit = options.scanLimit ?? EVENT_PATH_SCAN_LIMIT;
  const concerns = (job: Job | null | undefined): job is Job => {
    if (!job || String(job.id) === options.exceptEventId) return false;
    const event = job.data as Partial<IntegrationEvent> | undefined;
    if (!event || typeof event !== 'object' || event.id === options.exceptEventId) return false;
    // An event envelope carries the subject in its payload; a module's own job data (a
    // delivery job) may carry it at the top level.
    const payload = (event.payload ?? event) as Record<string, unknown> | null;
    return payload != null && typeof payload === 'object' && String(payload[subject.payloadField]) === subject.value;
  };

  let scanned = 0;
  let truncated = false;
  const matches = new Map<string, Job>();
  for (const state of ERASABLE_STATES) {
    // Collected first, removed after: removing while paging would shift the ranges.
    for (let start = 0; ; start += PAGE_SIZE) {
      if (start >= limit) {
        truncated = true;
        break;
      }
      const end = Math.min(start + PAGE_SIZE, limit) - 1;
      const jobs = await queue.getJobs([state], start, end, true);
      scanned += jobs.length;
      for (const job of jobs) if (concerns(job)) matches.set(String(job.id), job);
      if (jobs.length < end - start + 1) break;
    }
  }

  let removed = 0;
  for (const job of matches.values()) {
    try {
      await job.remove();
      removed += 1;
    } catch {
      // Taken by a worker in the meantime (locked): it runs, and the consumer's tombstones
      // make it a no-op; if it fails, the next erasure or the failed set's retention removes it.
    }
  }
  return { scanned, removed, truncated };
}
