import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import pino from 'pino';
import { DataSource } from 'typeorm';
import request from 'supertest';
import { bootstrapDatabases, moduleDataSourceOptions, QueueFactory } from '@app/platform';
import { notificationPageQuery, NotificationCursor, notificationsDatabase } from '@app/notifications';
import { signUpAndLogin } from '../support/auth-helpers';
import { adminUrl, createTestDatabase, eventually, query, runId, startApi, testConfig, type RunningApi } from '../support/test-env';

/**
 * notifications.notifications and notifications.deliveries are partitioned by month
 * (docs/architecture.md, "Notification partitions"): the migration moves existing rows,
 * the retention job keeps months ahead and drops expired months whole, rows in DEFAULT are
 * moved or deleted, and the queries the API runs still use indexes and prune partitions.
 */

/** What a retention run reports (libs/notifications/src/workers/retention.job.ts). */
interface RetentionResult {
  partitionsCreated: string[];
  movedFromDefault: number;
  partitionsDropped: string[];
  partitionsPostponed: string[];
  deletedFromDefault: number;
  tombstonesDeleted: number;
}

/** `YYYY_MM` of a moment `daysAgo` days before now (UTC), as partitions are named. */
const monthOf = (daysAgo: number) => new Date(Date.now() - daysAgo * 86_400_000).toISOString().slice(0, 7).replace('-', '_');
const monthStart = (offsetMonths: number) => {
  const now = new Date();
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offsetMonths, 1)).toISOString().slice(0, 10);
};

async function partitionsOf(db: string, table: 'notifications' | 'deliveries'): Promise<string[]> {
  const rows = await query<{ name: string }>(
    db,
    `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      WHERE i.inhparent = $1::regclass ORDER BY 1`,
    [`notifications.${table}`],
  );
  return rows.map((r) => r.name);
}

/** A connection as the notifications module's own role (what the module's DataSource uses). */
async function asModuleRole(db: string): Promise<Client> {
  const client = new Client({ connectionString: testConfig(db).databases.notifications.url });
  await client.connect();
  return client;
}

const insertNotifications = (db: string, userId: string, daysAgo: number, n: number, kind: string) =>
  query(
    db,
    `INSERT INTO notifications.notifications (id, user_id, kind, title, body, source_event_id, created_at)
     SELECT gen_random_uuid(), $1, $2, 't', 'b', gen_random_uuid(), now() - make_interval(days => $3) - i * interval '1 second'
       FROM generate_series(1, $4) AS i`,
    [userId, kind, daysAgo, n],
  );
const insertDeliveries = (db: string, kind: string) =>
  query(
    db,
    `INSERT INTO notifications.deliveries (id, notification_id, notification_created_at, user_id, channel, status)
     SELECT gen_random_uuid(), id, created_at, user_id, 'webhook', 'sent' FROM notifications.notifications WHERE kind = $1`,
    [kind],
  );

describe('Notification partitions: the migration from the unpartitioned tables', () => {
  const database = `${runId()}_partmig_${randomUUID().slice(0, 8)}`;
  const url = adminUrl(database);
  const logger = pino({ level: 'silent' });

  beforeAll(async () => {
    await query(adminUrl(), `CREATE DATABASE "${database}"`);
  });
  afterAll(async () => {
    await query(adminUrl(), `DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
  });

  it('moves existing notifications and deliveries into month partitions, keeps every key, and can be undone', async () => {
    const config = testConfig(url);
    const migrations = notificationsDatabase.migrations as { name: string }[];
    // Later migrations exist: this test stops at the partitioning one and undoes it alone.
    const partitioning = migrations.findIndex((m) => m.name === 'PartitionNotificationsByMonth1764806400000');
    const throughPartitioning = { ...notificationsDatabase, migrations: migrations.slice(0, partitioning + 1) as never };
    // The schema as it was before partitioning, with rows in three months.
    await bootstrapDatabases(config, [{ ...notificationsDatabase, migrations: migrations.slice(0, partitioning) as never }], logger);
    const userId = randomUUID();
    await query(
      url,
      `INSERT INTO notifications.notifications (id, user_id, kind, title, body, source_event_id, created_at, read_at)
       SELECT gen_random_uuid(), $1, 'k' || d, 't', 'b', gen_random_uuid(), now() - make_interval(days => d), CASE WHEN d > 0 THEN now() END
         FROM unnest(ARRAY[0, 40, 70]) AS d`,
      [userId],
    );
    await query(
      url,
      `INSERT INTO notifications.deliveries (id, notification_id, user_id, channel) SELECT gen_random_uuid(), id, user_id, 'email' FROM notifications.notifications`,
    );
    const before = await query(url, `SELECT id, created_at, read_at, kind FROM notifications.notifications ORDER BY id`);
    const deliveriesBefore = await query(url, `SELECT id, notification_id FROM notifications.deliveries ORDER BY id`);

    await bootstrapDatabases(config, [throughPartitioning], logger);

    expect(await query(url, `SELECT relkind FROM pg_class WHERE oid = 'notifications.notifications'::regclass`)).toEqual([{ relkind: 'p' }]);
    expect(await query(url, `SELECT id, created_at, read_at, kind FROM notifications.notifications ORDER BY id`)).toEqual(before);
    expect(await query(url, `SELECT id, notification_id FROM notifications.deliveries ORDER BY id`)).toEqual(deliveriesBefore);
    // Each row in its month, none in DEFAULT; a delivery sits in its notification's month.
    // Every month from the oldest row's to the next one (the job adds the months further ahead).
    const oldest = new Date(Date.now() - 70 * 86_400_000);
    const months: string[] = [];
    for (let d = new Date(Date.UTC(oldest.getUTCFullYear(), oldest.getUTCMonth(), 1)); d.toISOString().slice(0, 10) <= monthStart(1); d.setUTCMonth(d.getUTCMonth() + 1)) {
      months.push(`notifications_p${d.toISOString().slice(0, 7).replace('-', '_')}`);
    }
    expect(await partitionsOf(url, 'notifications')).toEqual([...months, 'notifications_default'].sort());
    expect(await query(url, 'SELECT 1 FROM notifications.notifications_default UNION ALL SELECT 1 FROM notifications.deliveries_default')).toEqual([]);
    expect(
      await query(
        url,
        `SELECT replace(d.tableoid::regclass::text, 'deliveries', 'notifications') = n.tableoid::regclass::text AS same
           FROM notifications.deliveries d JOIN notifications.notifications n ON n.id = d.notification_id AND n.created_at = d.notification_created_at`,
      ),
    ).toEqual([{ same: true }, { same: true }, { same: true }]);
    // The keys of a partitioned table carry the partition key; the cascade still works.
    await expect(
      query(url, `INSERT INTO notifications.deliveries (id, notification_id, notification_created_at, user_id, channel) VALUES (gen_random_uuid(), gen_random_uuid(), now(), $1, 'email')`, [
        userId,
      ]),
    ).rejects.toMatchObject({ code: '23503' });
    // Undo (as the module role, like the bootstrap): the old tables with the same rows.
    const source = new DataSource(moduleDataSourceOptions(throughPartitioning, config.databases.notifications));
    await source.initialize();
    try {
      await source.undoLastMigration({ transaction: 'each' });
    } finally {
      await source.destroy();
    }
    expect(await query(url, `SELECT relkind FROM pg_class WHERE oid = 'notifications.notifications'::regclass`)).toEqual([{ relkind: 'r' }]);
    expect(await query(url, `SELECT id, created_at, read_at, kind FROM notifications.notifications ORDER BY id`)).toEqual(before);
    expect(await query(url, `SELECT id, notification_id FROM notifications.deliveries ORDER BY id`)).toEqual(deliveriesBefore);
    // ... and forward again.
    await bootstrapDatabases(config, [notificationsDatabase], logger);
    expect(await query(url, `SELECT id, created_at, read_at, kind FROM notifications.notifications ORDER BY id`)).toEqual(before);
  });
});

describe('Notification partitions: maintenance and retention (integration)', () => {
  let db: string;
  let api: RunningApi;
  const results: RetentionResult[] = [];
  const userId = randomUUID();
  let moduleRole: Client;
  let reader: Client;

  const kinds = async () =>
    (await query<{ kind: string; n: number }>(db, `SELECT kind, count(*)::int AS n FROM notifications.notifications WHERE user_id = $1 GROUP BY kind ORDER BY kind`, [userId])).map(
      (r) => `${r.kind}:${r.n}`,
    );

  beforeAll(async () => {
    db = await createTestDatabase();
    moduleRole = await asModuleRole(db);
    // Old months get partitions as the module role would have made them at the time.
    for (const daysAgo of [200, 130, 60, 10]) await moduleRole.query('SELECT notifications.ensure_month_partition($1::date)', [`${monthOf(daysAgo).replace('_', '-')}-01`]);
    // Next month missing: its rows land in DEFAULT until the job creates it and moves them.
    const next = monthStart(1).slice(0, 7).replace('-', '_');
    await moduleRole.query(`ALTER TABLE notifications.deliveries DETACH PARTITION notifications.deliveries_p${next}`);
    await moduleRole.query(`ALTER TABLE notifications.notifications DETACH PARTITION notifications.notifications_p${next}`);
    await moduleRole.query(`DROP TABLE notifications.deliveries_p${next}, notifications.notifications_p${next}`);

    await insertNotifications(db, userId, 200, 30, 'expired-200d'); // months long over: dropped
    await insertNotifications(db, userId, 130, 20, 'expired-130d');
    await insertNotifications(db, userId, 400, 5, 'stray-400d'); // no partition: DEFAULT, expired, deleted
    await insertNotifications(db, userId, 60, 10, 'kept-60d'); // read or not, inside the retention
    await insertNotifications(db, userId, 10, 10, 'kept-10d');
    await query(
      db,
      `INSERT INTO notifications.notifications (id, user_id, kind, title, body, source_event_id, created_at)
       VALUES (gen_random_uuid(), $1, 'next-month', 't', 'b', gen_random_uuid(), $2::date + interval '3 days')`,
      [userId, monthStart(1)],
    );
    for (const kind of ['expired-200d', 'stray-400d', 'kept-60d', 'next-month']) await insertDeliveries(db, kind);
    expect(await query(db, `SELECT count(*)::int AS n FROM notifications.notifications_default`)).toEqual([{ n: 6 }]);

    // A long read of one month (pruned to it: DEFAULT is not locked, so creating months
    // ahead goes on): dropping months must give up after its lock timeout, not queue requests.
    reader = new Client({ connectionString: db });
    await reader.connect();
    await reader.query('BEGIN');
    const [year, month] = monthOf(130).split('_').map(Number);
    const [from, to] = [new Date(Date.UTC(year, month - 1, 1)).toISOString(), new Date(Date.UTC(year, month, 1)).toISOString()];
    await reader.query(`SELECT count(*) FROM notifications.notifications WHERE created_at >= '${from}' AND created_at < '${to}'`);

    api = await startApi(db, {
      env: { NOTIFICATIONS_RETENTION_INTERVAL_MS: '700', NOTIFICATIONS_RETENTION_DAYS: '90', NOTIFICATIONS_PARTITIONS_AHEAD: '2', NOTIFICATIONS_RETENTION_BATCH_SIZE: '2' },
    });
    api.app
      .get(QueueFactory)
      .get('notifications.retention')
      .on('global:completed', (_jobId: string, result: string) => results.push(JSON.parse(result) as RetentionResult));
  });
  afterAll(async () => {
    await reader?.end().catch(() => undefined);
    await moduleRole?.end().catch(() => undefined);
    await api?.close();
  });

  it('keeps NOTIFICATIONS_PARTITIONS_AHEAD months ahead and moves the rows that waited in DEFAULT into their month', async () => {
    const ahead = [0, 1, 2].map((m) => `notifications_p${monthStart(m).slice(0, 7).replace('-', '_')}`);
    // Each month is its own transaction with a lock timeout: one that timed out (behind the
    // drop that waits for the long read below) is created at a later run.
    await eventually(async () => {
      const present = await partitionsOf(db, 'notifications');
      return ahead.every((name) => present.includes(name));
    }, 15_000);
    expect(await partitionsOf(db, 'notifications')).toEqual(expect.arrayContaining(ahead));
    expect(await partitionsOf(db, 'notifications')).not.toContain(`notifications_p${monthStart(3).slice(0, 7).replace('-', '_')}`);
    expect(await partitionsOf(db, 'deliveries')).toEqual((await partitionsOf(db, 'notifications')).map((p) => p.replace('notifications_', 'deliveries_')));
    const [moved] = await query<{ part: string }>(
      db,
      `SELECT n.tableoid::regclass::text AS part FROM notifications.notifications n WHERE user_id = $1 AND kind = 'next-month'`,
      [userId],
    );
    expect(moved.part).toBe(`notifications.notifications_p${monthStart(1).slice(0, 7).replace('-', '_')}`);
    const [delivery] = await query<{ part: string }>(
      db,
      `SELECT d.tableoid::regclass::text AS part FROM notifications.deliveries d JOIN notifications.notifications n ON n.id = d.notification_id
        WHERE n.kind = 'next-month'`,
    );
    expect(delivery.part).toBe(`notifications.deliveries_p${monthStart(1).slice(0, 7).replace('-', '_')}`);
  });

  it('gives up while a long query holds the tables (lock timeout), then drops expired months whole with their deliveries', async () => {
    const busy = await eventually(async () => results.find((r) => r.partitionsPostponed.length > 0), 15_000);
    expect(busy).toMatchObject({ partitionsDropped: [], partitionsPostponed: [`notifications_p${monthOf(200)}`], deletedFromDefault: 5 });
    expect(await kinds()).toEqual(['expired-130d:20', 'expired-200d:30', 'kept-10d:10', 'kept-60d:10', 'next-month:1']);

    // The reader is done: the next run drops both expired months.
    await reader.query('COMMIT');
    const done = await eventually(async () => results.find((r) => r.partitionsDropped.length > 0), 15_000);
    expect(done.partitionsDropped).toEqual([`notifications_p${monthOf(200)}`, `notifications_p${monthOf(130)}`]);
    expect(await kinds()).toEqual(['kept-10d:10', 'kept-60d:10', 'next-month:1']);
    for (const month of [monthOf(200), monthOf(130)]) {
      expect(await partitionsOf(db, 'notifications')).not.toContain(`notifications_p${month}`);
      expect(await partitionsOf(db, 'deliveries')).not.toContain(`deliveries_p${month}`);
      // Gone from the schema altogether, not only detached.
      expect(await query(db, `SELECT to_regclass($1) AS n, to_regclass($2) AS d`, [`notifications.notifications_p${month}`, `notifications.deliveries_p${month}`])).toEqual([
        { n: null, d: null },
      ]);
    }
    expect(await query(db, `SELECT 1 FROM notifications.deliveries d LEFT JOIN notifications.notifications n ON n.id = d.notification_id WHERE n.id IS NULL`)).toEqual([]);
    expect(await query(db, `SELECT count(*)::int AS n FROM notifications.deliveries WHERE user_id = $1`, [userId])).toEqual([{ n: 11 }]);
  });

  it("erases a user's notifications and deliveries in every month (users.user-deleted.v1)", async () => {
    const user = await signUpAndLogin(api.url, 'Erased');
    await eventually(async () => (await query(db, 'SELECT 1 FROM notifications.notifications WHERE user_id = $1', [user.id])).length === 1);
    await insertNotifications(db, user.id, 60, 3, 'erase-60d');
    await insertNotifications(db, user.id, 10, 3, 'erase-10d');
    expect(await query(db, `SELECT 1 FROM notifications.notifications_default WHERE user_id = $1`, [user.id])).toEqual([]);
    await insertDeliveries(db, 'erase-60d');
    // In two or three months (10 days ago may be this month).
    const [{ n: months }] = await query<{ n: number }>(db, `SELECT count(DISTINCT tableoid)::int AS n FROM notifications.notifications WHERE user_id = $1`, [user.id]);
    expect(months).toBeGreaterThanOrEqual(2);
    await request(api.url).delete('/v1/users/me').set({ Authorization: `Bearer ${user.accessToken}` }).expect(204);
    await eventually(
      async () =>
        (await query(db, 'SELECT 1 FROM notifications.notifications WHERE user_id = $1 UNION ALL SELECT 1 FROM notifications.deliveries WHERE user_id = $1', [user.id]))
          .length === 0,
      15_000,
    );
  });
});

describe('Notification partitions: the API queries use indexes and prune months', () => {
  let db: string;
  let moduleRole: Client;
  const userId = randomUUID();

  /** Relations the plan reads, and how. */
  type PlanNode = { 'Node Type': string; 'Relation Name'?: string; 'Index Name'?: string; Plans?: PlanNode[] };
  const scans = (node: PlanNode): { type: string; relation: string; index?: string }[] => [
    ...(node['Relation Name'] ? [{ type: node['Node Type'], relation: node['Relation Name'], index: node['Index Name'] }] : []),
    ...(node.Plans ?? []).flatMap(scans),
  ];
  const explain = async (sql: string, params: unknown[]) => {
    const [{ plan }] = (await moduleRole.query(`EXPLAIN (FORMAT JSON) ${sql}`, params)).rows.map((r: { 'QUERY PLAN': { Plan: PlanNode }[] }) => ({ plan: r['QUERY PLAN'][0].Plan }));
    return scans(plan);
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    moduleRole = await asModuleRole(db);
    for (const offset of [-3, -2, -1]) await moduleRole.query('SELECT notifications.ensure_month_partition($1::date)', [monthStart(offset)]);
    // 2 000 users × 4 months: what a page of one user is looked up among.
    await query(
      db,
      `INSERT INTO notifications.notifications (id, user_id, kind, title, body, source_event_id, created_at, read_at)
       SELECT gen_random_uuid(), CASE WHEN u = 0 THEN $1::uuid ELSE gen_random_uuid() END, 'k', 't', 'b', gen_random_uuid(),
              date_trunc('month', now()) - make_interval(months => m) + make_interval(days => 1 + i), CASE WHEN i % 2 = 0 THEN now() END
         FROM generate_series(0, 1999) AS u, generate_series(0, 3) AS m, generate_series(0, 4) AS i`,
      [userId],
    );
    await query(db, `INSERT INTO notifications.deliveries (id, notification_id, notification_created_at, user_id, channel) SELECT gen_random_uuid(), id, created_at, user_id, 'email' FROM notifications.notifications`);
    await query(db, 'ANALYZE notifications.notifications');
    await query(db, 'ANALYZE notifications.deliveries');
  });
  afterAll(async () => {
    await moduleRole?.end().catch(() => undefined);
  });

  const notificationScans = <T extends { relation: string }>(found: T[]) => found.filter((s) => s.relation.startsWith('notifications_'));
  /**
   * Partitions that hold rows are read through an index (bitmap scans are index scans too);
   * an empty one (DEFAULT, months ahead: 0 pages after ANALYZE) may be "scanned" for free.
   */
  const expectIndexAccess = async (found: { type: string; relation: string }[]) => {
    const filled = new Set(
      (await query<{ name: string }>(db, `SELECT relname AS name FROM pg_class WHERE relnamespace = 'notifications'::regnamespace AND relkind = 'r' AND relpages > 0`)).map(
        (r) => r.name,
      ),
    );
    const read = found.filter((scan) => filled.has(scan.relation));
    expect(read.length).toBeGreaterThan(0);
    for (const scan of read) expect(`${scan.relation}: ${scan.type}`).toMatch(/: (Index Scan|Index Only Scan|Bitmap Heap Scan)$/);
  };

  it('GET /v1/notifications, first page: an index scan per month, no sequential scan', async () => {
    const { sql, params } = notificationPageQuery(userId, { limit: 20 });
    const found = await explain(sql, params);
    expect(notificationScans(found).length).toBeGreaterThanOrEqual(4);
    await expectIndexAccess(found);
  });

  it('GET /v1/notifications with a cursor: months after the cursor are pruned', async () => {
    const [row] = await query<{ position: string; id: string }>(
      db,
      `SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS position, id::text
         FROM notifications.notifications WHERE user_id = $1 AND created_at < date_trunc('month', now()) - interval '1 month'
        ORDER BY created_at DESC LIMIT 1`,
      [userId],
    );
    const cursor = NotificationCursor.encode(row);
    const { sql, params } = notificationPageQuery(userId, { limit: 20, cursor, unread: true });
    const found = notificationScans(await explain(sql, params));
    const relations = found.map((s) => s.relation);
    // The cursor sits two months back: the current and the previous month are not read.
    expect(relations).not.toContain(`notifications_p${monthStart(0).slice(0, 7).replace('-', '_')}`);
    expect(relations).not.toContain(`notifications_p${monthStart(-1).slice(0, 7).replace('-', '_')}`);
    expect(relations).toContain(`notifications_p${monthStart(-2).slice(0, 7).replace('-', '_')}`);
    await expectIndexAccess(found);
  });

  it('a lookup by id alone (mark as read) probes each month by its primary key', async () => {
    const [{ id }] = await query<{ id: string }>(db, 'SELECT id FROM notifications.notifications WHERE user_id = $1 LIMIT 1', [userId]);
    const found = notificationScans(await explain('UPDATE notifications.notifications SET read_at = coalesce(read_at, now()) WHERE id = $1 AND user_id = $2', [id, userId]));
    expect(found.length).toBeGreaterThanOrEqual(4);
    await expectIndexAccess(found);
  });
});
