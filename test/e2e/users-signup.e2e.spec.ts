import request from 'supertest';
import { UserEvents } from '@app/users/contracts';
import { eventsSettled, inboxHas } from '../support/settled';
import { createTestDatabase, eventually, query, startApi, uniqueEmail, type RunningApi } from '../support/test-env';

/** The first vertical slice: sign-up → users.user-registered.v1 → welcome notification. */
describe('POST /v1/users → welcome notification (e2e)', () => {
  let db: string;
  let api: RunningApi;

  beforeAll(async () => {
    db = await createTestDatabase();
    api = await startApi(db);
  });
  afterAll(async () => {
    await api?.close();
  });

  const register = (body: unknown) => request(api.url).post('/v1/users').send(body as object);

  it('creates the user (201, no hash in the body) and the notifications module writes exactly one welcome row', async () => {
    const email = uniqueEmail('Slice');
    const response = await request(api.url)
      .post('/v1/users')
      .set('X-Request-Id', 'slice-request-1')
      .send({ email, password: 'correct horse battery', name: 'Ada' })
      .expect(201);

    expect(response.headers['x-request-id']).toBe('slice-request-1');
    expect(response.body).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      email,
      name: 'Ada',
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
    });
    expect(JSON.stringify(response.body)).not.toMatch(/argon2|hash|password/i);

    const [stored] = await query<{ password_hash: string }>(db, 'SELECT password_hash FROM users.users WHERE id = $1', [response.body.id]);
    expect(stored.password_hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);

    const rows = await eventually(async () => {
      const found = await query<{ kind: string; body: string }>(db, 'SELECT kind, body FROM notifications.notifications WHERE user_id = $1', [response.body.id]);
      return found.length ? found : undefined;
    });
    expect(rows).toEqual([{ kind: 'welcome', body: expect.stringContaining('Ada') }]);
    // The event was marked published once it was handed to Bull (the row stays for replay).
    await eventually(async () => (await query(db, 'SELECT 1 FROM users.outbox WHERE published_at IS NULL')).length === 0);
    // Before asserting "exactly one": the notifications inbox recorded the event, and nothing
    // is left that could still deliver it again (outboxes published, inbox queues idle).
    const [event] = await query<{ id: string }>(db, `SELECT id FROM users.outbox WHERE event_type = $1 AND payload->>'userId' = $2`, [
      UserEvents.registered,
      response.body.id,
    ]);
    await inboxHas(db, 'notifications', [event.id]);
    await eventsSettled(api.app, db);
    const count = await query<{ n: string }>(db, 'SELECT count(*) AS n FROM notifications.notifications WHERE user_id = $1', [response.body.id]);
    expect(count[0].n).toBe('1');
  });

  it('generates a request id when the client sends none', async () => {
    const response = await request(api.url).get('/health/live').expect(200);
    expect(response.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('answers 409 problem+json for an email taken in another letter case', async () => {
    const email = uniqueEmail('case');
    await register({ email, password: 'correct horse battery', name: 'One' }).expect(201);
    const response = await register({ email: email.toUpperCase(), password: 'another long password', name: 'Two' }).expect(409);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.body).toMatchObject({ status: 409, title: 'Conflict', type: '/problems/user/email-taken', code: 'USER.EMAIL_TAKEN' });
    const users = await query(db, 'SELECT 1 FROM users.users WHERE lower(email) = lower($1)', [email]);
    expect(users).toHaveLength(1);
  });

  describe('bad input is a 400/413 problem that names the field and writes nothing', () => {
    async function expectNothingWritten(email: string) {
      expect(await query(db, 'SELECT 1 FROM users.users WHERE lower(email) = lower($1)', [email])).toHaveLength(0);
    }

    it('rejects unknown body fields (no mass assignment)', async () => {
      const email = uniqueEmail();
      const response = await register({ email, password: 'correct horse battery', name: 'A', role: 'admin' }).expect(400);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.body.errors).toEqual([{ field: 'role', message: 'is not allowed' }]);
      await expectNothingWritten(email);
    });

    it('names each field with a wrong type or out-of-range value', async () => {
      const response = await register({ email: 'not-an-email', password: 'short', name: 42 }).expect(400);
      expect(response.body).toMatchObject({ status: 400, type: '/problems/request/validation-failed' });
      const fields = response.body.errors.map((e: { field: string }) => e.field).sort();
      expect(fields).toEqual(['email', 'name', 'password']);
    });

    it('reports missing fields', async () => {
      const response = await register({}).expect(400);
      expect(response.body.errors.map((e: { field: string }) => e.field).sort()).toEqual(['email', 'name', 'password']);
    });

    it('rejects a password under 10 characters', async () => {
      const email = uniqueEmail();
      const response = await register({ email, password: '123456789', name: 'A' }).expect(400);
      expect(response.body.errors).toEqual([{ field: 'password', message: expect.stringMatching(/fewer than 10/) }]);
      await expectNothingWritten(email);
    });

    it('answers 400 for malformed JSON', async () => {
      const response = await request(api.url).post('/v1/users').set('content-type', 'application/json').send('{"email": "a@b.c",').expect(400);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.body).toMatchObject({ status: 400, code: 'REQUEST.MALFORMED_JSON' });
    });

    it('answers 413 for a body over 1 MiB', async () => {
      const email = uniqueEmail();
      const response = await register({ email, password: 'correct horse battery', name: 'x'.repeat(1024 * 1024) }).expect(413);
      expect(response.body).toMatchObject({ status: 413, code: 'REQUEST.BODY_TOO_LARGE' });
      await expectNothingWritten(email);
    });

    it('answers 404 problem+json for an unknown route', async () => {
      const response = await request(api.url).get('/v1/nope').expect(404);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    });
  });
});
