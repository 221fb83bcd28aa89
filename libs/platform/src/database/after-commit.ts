import { EventSubscriber, type EntityManager, type EntitySubscriberInterface, type QueryRunner, type TransactionCommitEvent, type TransactionRollbackEvent } from 'typeorm';

const pending = new WeakMap<QueryRunner, (() => void)[]>();

/**
 * Runs `effect` once the caller's transaction has committed, and never if it rolls back.
 * For side effects outside Postgres that must not announce uncommitted rows (the live
 * stream, waking the delivery dispatcher). The effect runs in-process, so a crash right
 * after the commit loses it: use it only where a poller or the client catches up anyway.
 */
export function afterCommit(manager: EntityManager, effect: () => void): void {
  const runner = manager.queryRunner;
  if (!runner?.isTransactionActive) throw new Error('afterCommit must be called inside a transaction');
  const effects = pending.get(runner);
  if (effects) effects.push(effect);
  else pending.set(runner, [effect]);
}

/** Registered on every module's connection by moduleDataSourceOptions(). */
@EventSubscriber()
export class AfterCommitSubscriber implements EntitySubscriberInterface {
  afterTransactionCommit(event: TransactionCommitEvent): void {
    // A released savepoint also "commits"; only the outermost commit counts.
    if (event.queryRunner.isTransactionActive) return;
    const effects = pending.get(event.queryRunner);
    if (!effects) return;
    pending.delete(event.queryRunner);
    for (const effect of effects) {
      try {
        effect();
      } catch {
        // The transaction is committed; a failing effect must not make it look failed.
      }
    }
  }

  afterTransactionRollback(event: TransactionRollbackEvent): void {
    if (!event.queryRunner.isTransactionActive) pending.delete(event.queryRunner);
  }
}
