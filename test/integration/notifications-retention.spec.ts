import { randomUUID } from 'node:crypto';
import { QueueFactory } from '@app/platform';
import { createTestDatabase, eventually, query, startApi, type RunningApi } from '../support/test-env';

interface RetentionResult {
  partitionsDropped: string[];
  tombstonesDeleted: number;
}

/**
 * Retention runs as a repeatable job on `notifications.retention`, once per interval; what
 * it does to notifications (monthly partitions created ahead and dropped when expired) is
 * covered in notifications-partitions.spec.ts. Here: the schedule, and erasure tombstones
 * older than NOTIFICATIONS_RETENTION_DAYS going with it.
 */
describe('Notifications retention job (integration)', () => {
  let db: string;
  let api: RunningApi;
  const results: RetentionResult[] = [];
  const [oldTombstone, newTombstone] = [randomUUID(), randomUUID()];

  beforeAll(async () => {
    db = await createTestDatabase();
    await query(db, `INSERT INTO notifications.erased_users (user_id, erased_at) VALUES ($1, now() - interval '100 days'), ($2, now())`, [oldTombstone, newTombstone]);
    api = await startApi(db, { env: { NOTIFICATIONS_RETENTION_INTERVAL_MS: '700', NOTIFICATIONS_RETENTION_DAYS: '90' } });
    api.app
      .get(QueueFactory)
      .get('notifications.retention')
      .on('global:completed', (_jobId: string, result: string) => results.push(JSON.parse(result) as RetentionResult));
  });
  afterAll(async () => {
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

  it('deletes erasure tombstones older than the retention, keeps recent ones', async () => {
    const first = await eventually(async () => results.find((r) => r.tombstonesDeleted > 0), 10_000);
    expect(first.tombstonesDeleted).toBe(1);
    expect(await query(db, 'SELECT user_id FROM notifications.erased_users WHERE user_id = ANY($1)', [[oldTombstone, newTombstone]])).toEqual([{ user_id: newTombstone }]);
  });
});
