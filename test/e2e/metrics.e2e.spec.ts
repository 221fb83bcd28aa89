import request from 'supertest';
import { createTestDatabase, eventually, startApi, type RunningApi } from '../support/test-env';
import { signUpAndLogin } from '../support/auth-helpers';

describe('GET /metrics (Prometheus)', () => {
  let api: RunningApi;
  beforeAll(async () => {
    api = await startApi(await createTestDatabase());
  });
  afterAll(async () => api?.close());

  const scrape = async () => (await request(api.internalUrl).get('/metrics').expect(200).expect('content-type', /text\/plain/)).text;

  it('exposes HTTP, queue, outbox, cache and pool metrics with route patterns as labels', async () => {
    const user = await signUpAndLogin(api.url, 'Metered');
    await request(api.url).get(`/v1/users/${user.id}`).set('Authorization', `Bearer ${user.accessToken}`).expect(200);
    await request(api.url).get(`/v1/users/${user.id}`).set('Authorization', `Bearer ${user.accessToken}`).expect(200);
    await request(api.url).get('/v1/users/not-a-uuid').set('Authorization', `Bearer ${user.accessToken}`).expect(400);

    const text = await eventually(async () => {
      const body = await scrape();
      return /queue_jobs_processed_total\{queue="notifications.inbox",outcome="completed"\} [1-9]/.test(body) ? body : undefined;
    });
    expect(text).toMatch(/http_requests_total\{method="POST",route="\/v1\/users",status="201"\} 1/);
    expect(text).toMatch(/http_requests_total\{method="GET",route="\/v1\/users\/:id",status="200"\} 2/);
    expect(text).toMatch(/http_requests_total\{method="GET",route="\/v1\/users\/:id",status="400"\} 1/);
    expect(text).not.toContain(user.id);
    expect(text).toMatch(/http_request_duration_seconds_bucket\{le="0.1",method="GET",route="\/v1\/users\/:id",status_class="2xx"\}/);
    expect(text).toMatch(/queue_jobs\{queue="notifications.inbox",state="waiting"\} \d+/);
    expect(text).toMatch(/outbox_lag_seconds\{module="users"\} [\d.]+/);
    expect(text).toMatch(/outbox_published_events\{module="users"\} [1-9]/);
    expect(text).toMatch(/cache_requests\{cache="users:profile:v1",outcome="hits"\} 1/);
    expect(text).toMatch(/cache_requests\{cache="users:profile:v1",outcome="misses"\} 1/);
    expect(text).toMatch(/db_pool_connections\{module="orders",state="total"\} \d+/);
    expect(text).toMatch(/process_cpu_seconds_total/);
  });
});
