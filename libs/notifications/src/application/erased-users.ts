import type { EntityManager } from 'typeorm';

/**
 * Serialises, per user, the transactions that write a user's rows here with the one that
 * erases them (docs/architecture.md, "Erasure and retention"). Every writer checks the
 * erasure tombstone (`erased_users`) before writing; without this lock, a welcome handled
 * at the same time as the erasure checks before the tombstone is committed, writes after
 * the erasure's deletes, and commits an address (email, name) for an erased user: the registration and
 * the erasure reach the inbox queue in either order, and several jobs run at once.
 *
 * A transaction-scoped advisory lock on the user id, taken first thing in the transaction:
 * whichever comes second waits for the first to commit, then (read committed: a new
 * snapshot per statement) sees its tombstone or its rows. Re-taking it in the same
 * transaction is free.
 */
export async function lockUserForErasure(manager: EntityManager, userId: string): Promise<void> {
  await manager.query(`SELECT pg_advisory_xact_lock(hashtext('notifications.erased_users'), hashtext($1))`, [userId]);
}
