import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { QueueFactory } from '@app/platform';
import { createTestDatabase, eventually, query, startApi, type RunningApi } from '../support/test-env';

interface RetentionResult {
  deleted: number;
  batches: number;
  tombstonesDeleted: number;
}

/**
 * Retention: a repeatable job on `notifications.retention` deletes read notifications older
 * than NOTIFICATIONS_RETENTION_DAYS, in batches, skipping (not waiting for) rows someone
 * holds a lock on; unread and recent ones stay.
 */
describe('Notifications retention job (integration)', () => {
  let db: string;
  let api: RunningApi;
  const results: RetentionResult[] = [];
  const userId = randomUUID();
  let locker: Client;
  let lockedId: string;

  const count = async (where: string) =>
    Number((await query<{ n: string }>(db, `SELECT count(*) AS n FROM notifications.notifications WHERE user_id = $1 AND ${where}`, [userId]))[0].n);

  beforeAll(async () => {
    db = await createTestDatabase();
    const insert = (n: number, age: string, read: boolean, kind: string) =>
      query(
        db,
        `INSERT INTO notifications.notifications (id, user_id, kind, title, body, source_event_id, created_at, read_at)
         SELECT gen_random_uuid(), $1, $3, 't', 'b', gen_random_uuid(), now() - $2::interval - i * interval '1 second',
                CASE WHEN $4 THEN now() - interval '1 day' END
           FROM generate_series(1, $5) AS i`,
        [userId, age, kind, read, n],
      );
    await insert(1050, '100 days', true, 'old-read');
    await insert(20, '100 days', false, 'old-unread');
    await insert(20, '10 days', true, 'recent-read');
    // Deliveries of doomed notifications go with them.
    await query(
      db,
      `INSERT INTO notifications.deliveries (id, notification_id, user_id, channel, status, enqueued_at)
       SELECT gen_random_uuid(), id, user_id, 'webhook', 'sent', now() FROM notifications.notifications WHERE kind = 'old-read' LIMIT 50`,
    );
    await query(db, `INSERT INTO notifications.erased_users (user_id, erased_at) VALUES ($1, now() - interval '100 days'), ($2, now())`, [
      randomUUID(),
      randomUUID(),
    ]);
    // A request is updating one doomed row right now: the job must skip it, not wait for it.
    locker = new Client({ connectionString: db });
    await locker.connect();
    await locker.query('BEGIN');
    [{ id: lockedId }] = (await locker.query(`SELECT id FROM notifications.notifications WHERE kind = 'old-read' LIMIT 1 FOR UPDATE`)).rows;

    api = await startApi(db, {
      env: { NOTIFICATIONS_RETENTION_INTERVAL_MS: '700', NOTIFICATIONS_RETENTION_BATCH_SIZE: '100', NOTIFICATIONS_RETENTION_DAYS: '90' },
    });
    api.app
      .get(QueueFactory)
      .get('notifications.retention')
      .on('global:completed', (_jobId: string, result: string) => results.push(JSON.parse(result) as RetentionResult));
  });
  afterAll(async () => {
    await locker?.end().catch(() => undefined);
    await api?.close();
  });

  it('is scheduled once as a repeatable job at the configured interval', async () => {
    const queue = api.app.get(QueueFactory).get('notifications.retention');
    // Scheduled in the background at boot: start-up never waits for Redis.
    const repeatable = await eventually(async () => {
      const jobs = await queue.getRepeatableJobs();
      return jobs.length ? jobs : undefined;
    });
    expect(repeatable.map((job) => [job.name, Number(job.every)])).toEqual([['purge-read-notifications', 700]]);
  });

  it('deletes old read notifications in batches, skips a locked row, keeps unread and recent ones', async () => {
    const first = await eventually(async () => results.find((r) => r.deleted > 0), 10_000);
    expect(first).toEqual({ deleted: 1049, batches: 11, tombstonesDeleted: 1 });
    expect(await count(`kind = 'old-read'`)).toBe(1);
    expect(await count(`kind = 'old-unread'`)).toBe(20);
    expect(await count(`kind = 'recent-read'`)).toBe(20);
    expect(await query(db, 'SELECT 1 FROM notifications.deliveries d LEFT JOIN notifications.notifications n ON n.id = d.notification_id WHERE n.id IS NULL')).toEqual([]);
    expect(await query(db, 'SELECT 1 FROM notifications.erased_users')).toHaveLength(1);

    // Once the lock is gone, the next run takes the row it skipped.
    await locker.query('COMMIT');
    await eventually(async () => (await count(`kind = 'old-read'`)) === 0, 10_000);
    expect(await query(db, 'SELECT 1 FROM notifications.notifications WHERE id = $1', [lockedId])).toEqual([]);
    expect(await count(`kind IN ('old-unread', 'recent-read')`)).toBe(40);
  });
});
