import type { Job, JobStatus, Queue } from 'bull';
import type { EntityManager } from 'typeorm';
import { subjectLiteral } from '../database/outbox-inbox.sql';
import type { IntegrationEvent } from './integration-event';
import type { ErasureWork } from './erasure-work';

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

export interface EventPathErasure extends ErasureSubject {
  /** The consuming module's schema: its `dead_letters` table. */
  schema: string;
  /** The consuming module's erasure work list (its own `erasure_work` table). */
  work: ErasureWork;
  /** The consuming module's own queues whose jobs about the subject go (its inbox queue, never another module's). */
  queues: string[];
  /** The event being handled: its own job is the active one, and its dead letter is the inbox consumer's business. */
  exceptEventId: string;
}

export interface QueuedEventRemoval {
  scanned: number;
  removed: number;
  /** A state held more jobs than the scan limit: some were not looked at. */
  truncated: boolean;
}

/**
 * Erasure for a consumer: removes what the event path still holds about a subject (a user
 * being erased) in the consuming module. Call it from the module's erasure handler, inside
 * the inbox transaction:
 *
 * - its `dead_letters` rows whose envelope concerns the subject are deleted in that
 *   transaction (a dead letter keeps the full envelope, personal data included, until an
 *   operator replays or discards it); the expression index `dead_letters_subject_idx`
 *   (erasureSupportUp) finds them;
 * - the removal of the failed, delayed and waiting jobs of its queues that concern the
 *   subject (Bull keeps failed jobs, with their data, for 7 days) is recorded in the same
 *   transaction as an `erasure_work` row (ErasureWork). Redis is not part of the
 *   transaction, so the jobs go after the commit, and the row stays until they are gone:
 *   a crash midway is finished by the next sweep of any instance, at boot at the latest.
 *
 * Removing a waiting job of the subject loses nothing a consumer still needed: the subject
 * is being erased, and the consumer ignores its late events anyway (tombstones). Returns
 * the number of dead letters deleted.
 */
export async function eraseFromEventPath(manager: EntityManager, erasure: EventPathErasure): Promise<number> {
  const { schema, payloadField, value, exceptEventId } = erasure;
  const deleted = await manager.query<{ event_id: string }[]>(deadLettersOfSubjectSql(schema, payloadField), [value, exceptEventId]);
  await erasure.work.record(manager, { payloadField, value, queues: erasure.queues, exceptEventId });
  return deleted.length;
}

/**
 * Deletes a module's dead letters about a subject ($1), except one event ($2). The field is
 * written as a literal, not a parameter: only then can the planner match the expression
 * index `dead_letters_subject_idx` (erasureSupportUp).
 */
export function deadLettersOfSubjectSql(schema: string, payloadField: string): string {
  return `WITH d AS (
       DELETE FROM "${schema}".dead_letters
        WHERE envelope->'payload'->>${subjectLiteral(payloadField)} = $1 AND event_id <> $2
       RETURNING event_id)
     SELECT event_id FROM d`;
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
