import { Pool } from 'pg';
import request from 'supertest';
import { DataSource, QueryFailedError } from 'typeorm';
import { getDataSourceToken } from '@nestjs/typeorm';
import { isDependencyUnavailable } from '@app/platform';
import { signUpAndLogin } from '../support/auth-helpers';
import { createTestDatabase, startApi, type RunningApi } from '../support/test-env';

/**
 * A database that is out of reach or out of capacity for now is answered 503 with
 * Retry-After, not 500 (README, "Design notes", Errors): the bench saw pool waits answered
 * 500 at 300 orders/s. The errors below are the real ones pg, pg-pool and TypeORM raise.
 */
describe('Database unavailable for now: 503 with Retry-After, never a bare 500', () => {
  let db: string;
  let api: RunningApi;

  beforeAll(async () => {
    db = await createTestDatabase();
    // One connection in the users pool, and a short wait for it.
    api = await startApi(db, { env: { USERS_DB_POOL_MAX: '1', USERS_DB_CONNECT_TIMEOUT_MS: '300' } });
  });
  afterAll(async () => {
    await api?.close();
  });

  it('answers 503 SERVICE.UNAVAILABLE while the module pool has no free connection, and 200 once it has', async () => {
    const user = await signUpAndLogin(api.url, 'Pool Waiter');
    const auth = { Authorization: `Bearer ${user.accessToken}` };
    const users = api.app.get<DataSource>(getDataSourceToken('users'));
    const held = users.createQueryRunner();
    await held.connect(); // the pool's only connection
    try {
      const response = await request(api.url).get('/v1/users/me').set(auth).set('X-Request-Id', 'pool-wait-1');
      expect(response.status).toBe(503);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.headers['x-request-id']).toBe('pool-wait-1');
      expect(Number(response.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(Number(response.headers['retry-after'])).toBeLessThanOrEqual(3);
      expect(response.body).toMatchObject({ status: 503, code: 'SERVICE.UNAVAILABLE', type: '/problems/service/unavailable', instance: '/v1/users/me' });
      // Nothing of the driver's wording leaks.
      expect(JSON.stringify(response.body)).not.toMatch(/timeout exceeded|pg-pool/);
    } finally {
      await held.release();
    }
    await request(api.url).get('/v1/users/me').set(auth).expect(200);
  });

  it('recognises the real transient errors of pg, pg-pool and TypeORM, and no programming or data error', async () => {
    // pg-pool: no connection free in time.
    const pool = new Pool({ connectionString: db, max: 1, connectionTimeoutMillis: 100 });
    const client = await pool.connect();
    const poolWait = await pool.connect().catch((error: unknown) => error);
    client.release();
    // Postgres: statement_timeout (57014), through TypeORM (QueryFailedError wraps the driver's error).
    const ds = await new DataSource({ type: 'postgres', url: db, extra: { max: 1 } }).initialize();
    const statementTimeout = await ds
      .transaction(async (manager) => {
        await manager.query('SET LOCAL statement_timeout = 50');
        await manager.query('SELECT pg_sleep(2)');
      })
      .catch((error: unknown) => error);
    const syntax = await ds.query('SELEC 1').catch((error: unknown) => error);
    const divisionByZero = await ds.query('SELECT 1 FROM (VALUES (1), (1)) v(x) GROUP BY x HAVING 1/0 = 1').catch((error: unknown) => error);
    await ds.destroy();
    await pool.end();
    // Nothing listens on port 1: connection refused.
    const refused = await new Pool({ host: '127.0.0.1', port: 1, connectionTimeoutMillis: 1000 }).query('SELECT 1').catch((error: unknown) => error);

    expect(poolWait).toBeInstanceOf(Error);
    expect(statementTimeout).toBeInstanceOf(QueryFailedError);
    expect((statementTimeout as QueryFailedError & { driverError: { code: string } }).driverError.code).toBe('57014');
    expect([isDependencyUnavailable(poolWait), isDependencyUnavailable(statementTimeout), isDependencyUnavailable(refused)]).toEqual([true, true, true]);
    // A syntax error (42601) and a division by zero (22012) are bugs or bad data: they stay 500s.
    expect(syntax).toBeInstanceOf(QueryFailedError);
    expect(divisionByZero).toBeInstanceOf(QueryFailedError);
    expect([isDependencyUnavailable(syntax), isDependencyUnavailable(divisionByZero), isDependencyUnavailable(new Error('boom')), isDependencyUnavailable(undefined)]).toEqual([
      false,
      false,
      false,
      false,
    ]);
  });
});
