import type { EntityManager } from 'typeorm';
import { subjectLiteral } from '../database/outbox-inbox.sql';
import type { ErasureWork } from './erasure-work';
import type { ErasureSubject } from './queued-event-removal';

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

