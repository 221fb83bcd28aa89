import { randomBytes, randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Client } from 'pg';
import request from 'supertest';
import { SMTPServer } from 'smtp-server';
import type { Job } from 'bull';
import { deadLettersOfSubjectSql, inboxQueueName, MessagingRegistry, QueueFactory, type IntegrationEvent } from '@app/platform';
import { UserEvents } from '@app/users/contracts';
import { signUpAndLogin } from '../support/auth-helpers';
import { eventsSettled, inboxHas } from '../support/settled';
import { createTestDatabase, eventually, query, startApi, uniqueEmail, type RunningApi } from '../support/test-env';

/**
 * Erasure completeness where timing decides (issue 12): a registration that meets the
 * erasure on its way (handled at the same time, or not yet published), failed delivery
 * jobs whose error quotes the address (after a rename too), and the indexes the erasure's
 * lookups by `payload->>'userId'` need. docs/architecture.md, "Erasure and retention".
 */

const auth = (token: string) => ({ Authorization: `Bearer ${token}` });
const uniqueName = (tag: string) => `${tag} ${randomBytes(5).toString('hex')}`;

function envelope(type: string, payload: Record<string, unknown>): IntegrationEvent {
  return { id: randomUUID(), type, producer: 'users', occurredAt: new Date().toISOString(), payload, metadata: {} };
}

/** Everything Bull keeps of a job that can hold personal data: its data, its error and stack. */
const jobText = (job: Job) => JSON.stringify({ data: job.data, reason: job.failedReason, stack: job.stacktrace });

/** An SMTP server that refuses every recipient, quoting the address, as real servers do. */
class RejectingSmtp {
  private server?: SMTPServer;
  port = 0;
  async start(): Promise<this> {
    this.server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      onRcptTo: (address, _session, callback) =>
        callback(Object.assign(new Error(`<${address.address}>: Recipient address rejected: mailbox unavailable`), { responseCode: 550 })),
    });
    this.server.on('error', () => undefined);
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', () => resolve()));
    this.port = (this.server.server.address() as AddressInfo).port;
    return this;
  }
  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}

describe('Security: erasure races, delivery jobs and lookup indexes (e2e)', () => {
  let db: string;
  let api: RunningApi;
  let smtp: RejectingSmtp;

  beforeAll(async () => {
    db = await createTestDatabase();
    smtp = await new RejectingSmtp().start();
    // One attempt per inbox job: a failing event is a dead letter at once. The race test holds
    // a row the erasure needs while it looks around: a statement timeout that outlasts it.
    api = await startApi(db, {
      env: { INBOX_MAX_ATTEMPTS: '1', SMTP_URL: `smtp://127.0.0.1:${smtp.port}`, NOTIFICATIONS_DB_STATEMENT_TIMEOUT_MS: '30000' },
    });
  });
  afterAll(async () => {
    await api?.close();
    await smtp?.stop();
  });

  const inboxQueue = () => api.app.get(QueueFactory).get(inboxQueueName('notifications'));
  const rowsOf = async (userId: string) => ({
    recipients: await query(db, 'SELECT email, name FROM notifications.recipients WHERE user_id = $1', [userId]),
    notifications: await query(db, 'SELECT kind FROM notifications.notifications WHERE user_id = $1', [userId]),
  });

  it('a registration handled while the erasure is in flight writes nothing for the erased user', async () => {
    const userId = randomUUID();
    const user = { userId, email: uniqueEmail('race'), name: uniqueName('Race') };
    // A dead letter about the user: the erasure deletes it after the user's rows.
    const failing = envelope('users.user-profile-imported.v1', user);
    await inboxQueue().add(failing.type, failing, { jobId: failing.id, attempts: 1 });
    await eventually(async () => (await query(db, 'SELECT 1 FROM notifications.dead_letters WHERE event_id = $1', [failing.id])).length === 1);

    // Hold that dead letter: the erasure stops right there, its tombstone and deletes written, not committed.
    const holder = new Client({ connectionString: db });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM notifications.dead_letters WHERE event_id = $1 FOR UPDATE', [failing.id]);
      const deleted = envelope(UserEvents.deleted, { userId, deletedAt: new Date().toISOString() });
      await inboxQueue().add(deleted.type, deleted, { jobId: deleted.id });
      // (Looked at from another connection: a transaction sees pg_stat_activity as of its first look.)
      await eventually(
        async () =>
          (
            await query(
              db,
              `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event <> 'advisory' AND query LIKE '%dead_letters%'`,
            )
          ).length === 1,
      );

      // The registration now (a retry, a late relay, a replay): handled in parallel (INBOX_CONCURRENCY).
      const registered = envelope(UserEvents.registered, { ...user, registeredAt: new Date().toISOString() });
      await inboxQueue().add(registered.type, registered, { jobId: registered.id });
      // Either it is done (it did not wait for the erasure) or it waits for the user's erasure lock.
      await eventually(async () => {
        const [{ handled, waiting }] = await query<{ handled: boolean; waiting: boolean }>(
          db,
          `SELECT EXISTS (SELECT 1 FROM notifications.inbox WHERE event_id = $1) AS handled,
                  EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'advisory') AS waiting`,
          [registered.id],
        );
        return handled || waiting;
      });
      await holder.query('COMMIT');
      await inboxHas(db, 'notifications', [deleted.id, registered.id]);
    } finally {
      await holder.end();
    }
    await eventsSettled(api.app, db);
    expect(await rowsOf(userId)).toEqual({ recipients: [], notifications: [] });
    expect(await query(db, 'SELECT 1 FROM notifications.erased_users WHERE user_id = $1', [userId])).toHaveLength(1);
  });

  it('a registration still unpublished when the account is erased never leaves the users module', async () => {
    const relay = api.app.get(MessagingRegistry).relays.get('users')!;
    await relay.stop();
    let user;
    let registrationId: string;
    try {
      user = await signUpAndLogin(api.url, uniqueName('Unpublished'));
      [{ id: registrationId }] = await query<{ id: string }>(
        db,
        `SELECT id FROM users.outbox WHERE event_type = $1 AND payload->>'userId' = $2 AND published_at IS NULL`,
        [UserEvents.registered, user.id],
      );
      await request(api.url).delete('/v1/users/me').set(auth(user.accessToken)).expect(204);
      expect(await query(db, 'SELECT event_type FROM users.outbox WHERE id = $1', [registrationId])).toEqual([]);
    } finally {
      relay.start();
    }
    const [{ id: deletedId }] = await eventually(async () => {
      const rows = await query<{ id: string }>(db, `SELECT id FROM users.outbox WHERE event_type = $1 AND payload->>'userId' = $2 AND published_at IS NOT NULL`, [
        UserEvents.deleted,
        user.id,
      ]);
      return rows.length ? rows : undefined;
    });
    await inboxHas(db, 'notifications', [deletedId]);
    await eventsSettled(api.app, db);
    // The registration (email, name) never reached the consumer; nothing was created and erased again.
    expect(await query(db, 'SELECT 1 FROM notifications.inbox WHERE event_id = $1', [registrationId])).toEqual([]);
    expect(await rowsOf(user.id)).toEqual({ recipients: [], notifications: [] });
  });

  it('failed delivery jobs, whose error quotes the address, go with the user (after a rename too)', async () => {
    const name = uniqueName('Mailer');
    const user = await signUpAndLogin(api.url, name);
    const renamed = uniqueName('Mailer Renamed');
    await request(api.url).patch('/v1/users/me').set(auth(user.accessToken)).send({ name: renamed }).expect(200);
    const emailQueue = api.app.get(QueueFactory).get('notifications.email');
    const mentioning = async (needle: string) =>
      (await emailQueue.getJobs(['failed', 'delayed', 'waiting', 'paused'])).filter((job) => job && jobText(job).includes(needle));
    // The welcome email was refused for good: a dead delivery, its job in the failed set with the SMTP answer.
    await eventually(async () => (await mentioning(user.email)).length === 1);
    expect(await query(db, `SELECT status FROM notifications.deliveries WHERE user_id = $1`, [user.id])).toEqual([{ status: 'dead' }]);

    await request(api.url).delete('/v1/users/me').set(auth(user.accessToken)).expect(204);
    await eventually(async () => (await query(db, 'SELECT 1 FROM notifications.erased_users WHERE user_id = $1', [user.id])).length === 1);
    await eventually(async () => (await mentioning(user.email)).length === 0 && (await mentioning(user.id)).length === 0);
    await eventually(async () => (await query(db, 'SELECT 1 FROM notifications.erasure_work')).length === 0);
    expect(await rowsOf(user.id)).toEqual({ recipients: [], notifications: [] });
    for (const needle of [user.email, name, renamed]) {
      expect(await query(db, `SELECT 1 FROM notifications.deliveries d WHERE strpos(d::text, $1) > 0`, [needle])).toEqual([]);
    }
  });

  it('the erasure finds outbox rows and dead letters by payload userId through an index (EXPLAIN)', async () => {
    const client = new Client({ connectionString: db });
    await client.connect();
    try {
      await client.query('BEGIN');
      // A week of kept events and a pile of dead letters about other users, with statistics.
      await client.query(
        `INSERT INTO users.outbox (id, event_type, payload, published_at)
         SELECT gen_random_uuid(), 'users.user-registered.v1',
                jsonb_build_object('userId', gen_random_uuid(), 'email', 'x' || i || '@example.com', 'name', 'X'), now()
           FROM generate_series(1, 20000) AS i`,
      );
      for (const schema of ['notifications', 'orders']) {
        await client.query(
          `INSERT INTO "${schema}".dead_letters (event_id, event_type, envelope, error, attempts)
           SELECT id, 'users.user-registered.v1', jsonb_build_object('id', id, 'payload', jsonb_build_object('userId', gen_random_uuid())), 'boom', 1
             FROM (SELECT gen_random_uuid() AS id FROM generate_series(1, 20000)) AS g`,
        );
        await client.query(`ANALYZE "${schema}".dead_letters`);
      }
      await client.query('ANALYZE users.outbox');
      const plan = async (sql: string, params: unknown[]) =>
        JSON.stringify((await client.query(`EXPLAIN (FORMAT JSON) ${sql}`, params)).rows[0]['QUERY PLAN']);
      const userId = randomUUID();

      // users: ProfilesService.erase's delete of the user's kept and unpublished-registration events.
      const outbox = await plan(
        `DELETE FROM users.outbox
          WHERE payload->>'userId' = $1 AND event_type <> $2 AND (published_at IS NOT NULL OR event_type = $3)`,
        [userId, UserEvents.deleted, UserEvents.registered],
      );
      expect(outbox).toContain('"Index Name":"outbox_subject_idx"');
      expect(outbox).not.toContain('Seq Scan');
      // Consumers: eraseFromEventPath's delete of the module's dead letters about the user.
      for (const schema of ['notifications', 'orders']) {
        const deadLetters = await plan(deadLettersOfSubjectSql(schema, 'userId'), [userId, randomUUID()]);
        expect(deadLetters).toContain('"Index Name":"dead_letters_subject_idx"');
        expect(deadLetters).not.toContain('Seq Scan');
      }
    } finally {
      await client.query('ROLLBACK').catch(() => undefined);
      await client.end();
    }
  });
});
