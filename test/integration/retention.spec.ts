import { createHash, randomUUID } from 'node:crypto';
import request from 'supertest';
import { signUpAndLogin } from '../support/auth-helpers';
import { createTestDatabase, eventually, query, startApi, type RunningApi } from '../support/test-env';

/**
 * Tables that grow with traffic stay bounded by their retention rules
 * (libs/platform/src/maintenance/retention.ts; docs/architecture.md "Retention"): every
 * module's published outbox rows, inbox and dead letters, the orders module's expired
 * idempotency keys, the users module's ended sessions and expired refresh tokens. Rows are aged by SQL; the sweeper runs on
 * its own timer, batch after batch, and keeps everything still inside its retention.
 */
describe('Retention of outbox, inbox, dead letters, idempotency keys and sessions (integration)', () => {
  let db: string;
  let api: RunningApi;

  beforeAll(async () => {
    db = await createTestDatabase();
    api = await startApi(db, {
      env: {
        OUTBOX_RETENTION: '1d',
        INBOX_RETENTION: '2d',
        DEAD_LETTER_RETENTION: '3d',
        ENDED_SESSION_RETENTION: '1d',
        SESSION_MAX_LIFETIME_S: String(30 * 86400),
        RETENTION_INTERVAL_MS: '300',
      },
    });
  });
  afterAll(async () => {
    await api?.close();
  });

  const ids = async (sql: string, params: unknown[] = []) => (await query<{ id: string }>(db, sql, params)).map((r) => r.id).sort();

  it('deletes inbox rows past INBOX_RETENTION in batches, and only those', async () => {
    // 2 500 old rows: more than one batch (1 000) in a run.
    await query(
      db,
      `INSERT INTO users.inbox (event_id, event_type, handled_at)
       SELECT gen_random_uuid(), 'users.session-revoked.v1', now() - interval '3 days' FROM generate_series(1, 2500)`,
    );
    const recent = randomUUID();
    await query(db, `INSERT INTO users.inbox (event_id, event_type, handled_at) VALUES ($1, 'users.session-revoked.v1', now() - interval '1 day')`, [recent]);

    await eventually(async () => (await ids(`SELECT event_id AS id FROM users.inbox WHERE handled_at < now() - interval '2 days'`)).length === 0, 20_000, 100);
    expect(await ids(`SELECT event_id AS id FROM users.inbox WHERE event_id = $1`, [recent])).toEqual([recent]);

    const metrics = await request(api.internalUrl).get('/metrics').expect(200);
    expect(metrics.text).toMatch(/^retention_deleted_rows_total\{module="users",table="inbox"\} 2500$/m);
  });

  it('deletes outbox rows published longer ago than OUTBOX_RETENTION, keeps recent and unpublished ones', async () => {
    // 1 200 rows published 2 days ago (more than one batch), one published an hour ago,
    // one never published (a type nobody routes: never claimed, never deleted).
    const aged = await ids(
      `INSERT INTO users.outbox (id, event_type, payload, occurred_at, published_at)
       SELECT gen_random_uuid(), 'users.session-revoked.v1', '{}', now() - interval '2 days', now() - interval '2 days' FROM generate_series(1, 1200)
       RETURNING id`,
    );
    const [recent] = await ids(
      `INSERT INTO users.outbox (id, event_type, payload, occurred_at, published_at)
       VALUES (gen_random_uuid(), 'users.session-revoked.v1', '{}', now() - interval '1 hour', now() - interval '1 hour') RETURNING id`,
    );
    const [unpublished] = await ids(
      `INSERT INTO users.outbox (id, event_type, payload, occurred_at) VALUES (gen_random_uuid(), 'users.nobody-listens.v1', '{}', now() - interval '9 days') RETURNING id`,
    );

    await eventually(async () => (await ids('SELECT id FROM users.outbox WHERE id = ANY($1)', [aged])).length === 0, 20_000, 100);
    expect(await ids('SELECT id FROM users.outbox WHERE id = ANY($1)', [[recent, unpublished]])).toEqual([recent, unpublished].sort());

    const metrics = await request(api.internalUrl).get('/metrics').expect(200);
    expect(metrics.text).toMatch(/^retention_deleted_rows_total\{module="users",table="outbox"\} 1200$/m);
  });

  it('deletes dead letters past DEAD_LETTER_RETENTION, keeps younger ones', async () => {
    const [old, young] = [randomUUID(), randomUUID()];
    await query(
      db,
      `INSERT INTO orders.dead_letters (event_id, event_type, envelope, error, attempts, failed_at)
       VALUES ($1, 'users.user-deleted.v1', '{}', 'Error: boom', 8, now() - interval '4 days'),
              ($2, 'users.user-deleted.v1', '{}', 'Error: boom', 8, now() - interval '2 days')`,
      [old, young],
    );
    await eventually(async () => (await ids('SELECT event_id AS id FROM orders.dead_letters WHERE event_id = $1', [old])).length === 0, 20_000, 100);
    expect(await ids('SELECT event_id AS id FROM orders.dead_letters WHERE event_id = ANY($1)', [[old, young]])).toEqual([young]);
  });

  it('deletes expired idempotency keys, keeps live ones', async () => {
    const user = randomUUID();
    await query(
      db,
      `INSERT INTO orders.idempotency_keys (user_id, key, request_hash, state, claim_id, expires_at)
       VALUES ($1, 'expired', 'h', 'completed', gen_random_uuid(), now() - interval '1 minute'),
              ($1, 'live', 'h', 'completed', gen_random_uuid(), now() + interval '1 hour')`,
      [user],
    );
    await eventually(async () => (await query(db, `SELECT 1 FROM orders.idempotency_keys WHERE user_id = $1 AND key = 'expired'`, [user])).length === 0, 20_000, 100);
    expect(await query(db, 'SELECT key FROM orders.idempotency_keys WHERE user_id = $1', [user])).toEqual([{ key: 'live' }]);
  });

  it('deletes sessions ended longer ago than ENDED_SESSION_RETENTION (revoked, or past their lifetime) and expired refresh tokens', async () => {
    const user = await signUpAndLogin(api.url, 'Aging');
    // Sessions are written young and aged in one statement after their tokens, so the
    // sweeper (every 300 ms) cannot delete a session before its token is written.
    const ages = new Map<string, [string, string | null]>();
    const session = async (createdAgo: string, revokedAgo: string | null) => {
      const [row] = await query<{ id: string }>(db, 'INSERT INTO users.sessions (id, user_id) VALUES (gen_random_uuid(), $1) RETURNING id', [user.id]);
      ages.set(row.id, [createdAgo, revokedAgo]);
      return row.id;
    };
    const revokedLongAgo = await session('5 days', '2 days');
    const revokedRecently = await session('5 days', '1 hour');
    const pastLifetime = await session('32 days', null); // 30 d lifetime + 1 d retention ended
    const withinLifetime = await session('29 days', null);
    const token = (sessionId: string, expiresIn: string) =>
      query(db, `INSERT INTO users.refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, now() + $3::interval)`, [
        createHash('sha256').update(randomUUID()).digest(),
        sessionId,
        expiresIn,
      ]);
    await token(withinLifetime, '-2 days'); // expired 2 days ago: goes
    await token(withinLifetime, '-1 hour'); // expired, but within the retention: stays
    await token(revokedLongAgo, '10 days'); // goes with its session
    await query(
      db,
      `UPDATE users.sessions s SET created_at = now() - a.created_ago::interval,
              revoked_at = now() - a.revoked_ago::interval, revoked_reason = CASE WHEN a.revoked_ago IS NULL THEN NULL ELSE 'logout' END
         FROM jsonb_to_recordset($1::jsonb) AS a(id uuid, created_ago text, revoked_ago text)
        WHERE s.id = a.id`,
      [JSON.stringify([...ages].map(([id, [created_ago, revoked_ago]]) => ({ id, created_ago, revoked_ago })))],
    );

    await eventually(async () => (await ids('SELECT id FROM users.sessions WHERE id = ANY($1)', [[revokedLongAgo, pastLifetime]])).length === 0, 20_000, 100);
    await eventually(async () => (await query(db, `SELECT 1 FROM users.refresh_tokens WHERE expires_at < now() - interval '1 day'`)).length === 0, 20_000, 100);
    expect(await ids('SELECT id FROM users.sessions WHERE id = ANY($1)', [[revokedLongAgo, revokedRecently, pastLifetime, withinLifetime]])).toEqual(
      [revokedRecently, withinLifetime].sort(),
    );
    expect(await query(db, 'SELECT session_id FROM users.refresh_tokens WHERE session_id = ANY($1)', [[withinLifetime, revokedLongAgo]])).toEqual([
      { session_id: withinLifetime },
    ]);
    // The user's own live session (from signing in) is untouched.
    await request(api.url).get('/v1/users/me').set({ Authorization: `Bearer ${user.accessToken}` }).expect(200);
  });
});
