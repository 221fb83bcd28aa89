import { readFileSync } from 'node:fs';
import path from 'node:path';
import { load } from 'js-yaml';
import request from 'supertest';
import { baseMetric, metricsIn } from '../support/promql';
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
    expect(text).toMatch(/outbox_published_events_total\{module="users"\} [1-9]/);
    expect(text).toMatch(/cache_requests_total\{cache="users:profile:v1",outcome="hits"\} 1/);
    expect(text).toMatch(/cache_requests_total\{cache="users:profile:v1",outcome="misses"\} 1/);
    expect(text).toMatch(/queue_job_duration_seconds_count\{queue="notifications.inbox",outcome="completed"\} [1-9]/);
    expect(text).toMatch(/db_pool_connections\{module="orders",state="total"\} \d+/);
    expect(text).toMatch(/process_cpu_seconds_total/);
  });

  it('names every counter *_total and never lets one go back between scrapes', async () => {
    const user = await signUpAndLogin(api.url, 'Counted');
    await request(api.url).get(`/v1/users/${user.id}`).set('Authorization', `Bearer ${user.accessToken}`).expect(200);
    const first = await scrape();
    const counters = [...first.matchAll(/^# TYPE (\S+) counter$/gm)].map((m) => m[1]);
    expect(counters).toEqual(expect.arrayContaining(['http_requests_total', 'outbox_published_events_total', 'cache_requests_total', 'circuit_breaker_rejected_calls_total']));
    expect(counters.filter((name) => !name.endsWith('_total'))).toEqual([]);

    await request(api.url).get(`/v1/users/${user.id}`).set('Authorization', `Bearer ${user.accessToken}`).expect(200);
    const second = await scrape();
    // Counters only: a gauge may end in _total too (prom-client's nodejs_active_resources_total) and go down.
    const samples = (text: string) =>
      new Map(
        [...text.matchAll(/^((\w+_total)(?:\{[^}]*\})?) (\S+)$/gm)].filter((m) => counters.includes(m[2])).map((m) => [m[1], Number(m[3])] as const),
      );
    const before = samples(first);
    const after = samples(second);
    const wentBack = [...before].filter(([series, value]) => (after.get(series) ?? value) < value);
    expect(wentBack).toEqual([]);
    expect(after.get('cache_requests_total{cache="users:profile:v1",outcome="hits"}')).toBeGreaterThan(before.get('cache_requests_total{cache="users:profile:v1",outcome="hits"}') ?? 0);
  });

  /**
   * The alert rules and the dashboard in deploy/ read only metrics this API exposes: a
   * renamed metric would leave an alert that never fires, so a rename fails here.
   */
  it('every metric the alert rules and the dashboard use is exposed', async () => {
    const exposed = new Set([...(await scrape()).matchAll(/^# TYPE (\S+) \w+$/gm)].map((m) => m[1]));
    const root = path.join(__dirname, '../..');
    const rules = (load(readFileSync(path.join(root, 'deploy/prometheus/alerts.yaml'), 'utf8')) as {
      groups: { name: string; rules: { alert: string; expr: string; for: string; labels: { severity: string }; annotations: { summary: string; runbook: string } }[] }[];
    }).groups.flatMap((group) => group.rules);
    const dashboard = JSON.parse(readFileSync(path.join(root, 'deploy/grafana/dashboard.json'), 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[] };
    const uses = [
      ...rules.map((rule) => ({ where: `alert ${rule.alert}`, expr: rule.expr })),
      ...dashboard.panels.flatMap((panel) => panel.targets.map((target) => ({ where: `panel "${panel.title}"`, expr: target.expr }))),
    ];

    // What the issue asks the rules to watch is there.
    expect(rules.map((rule) => rule.alert)).toEqual(expect.arrayContaining(['OutboxLagHigh', 'DeadLettersPresent', 'HighErrorRate', 'HighLatencyP99']));
    for (const rule of rules) {
      expect({ alert: rule.alert, severity: rule.labels?.severity, for: rule.for, runbook: Boolean(rule.annotations?.runbook) }).toEqual({
        alert: rule.alert,
        severity: expect.stringMatching(/^(page|ticket)$/),
        for: expect.stringMatching(/^\d+[smh]$/),
        runbook: true,
      });
    }
    const missing = uses.flatMap(({ where, expr }) => metricsIn(expr).filter((name) => !exposed.has(baseMetric(name))).map((name) => `${where}: ${name}`));
    expect(missing).toEqual([]);
    // The extraction is not vacuous: it finds the metrics the rules are about.
    expect(new Set(uses.flatMap(({ expr }) => metricsIn(expr).map(baseMetric)))).toEqual(
      new Set(['outbox_lag_seconds', 'dead_letter_events', 'outbox_unrouted_events', 'queue_jobs_processed_total', 'http_requests_total', 'http_request_duration_seconds', 'dependency_up', 'circuit_breaker_open_circuits', 'outbox_published_events_total', 'queue_job_duration_seconds', 'queue_jobs', 'cache_requests_total', 'db_pool_connections', 'db_replica_usable']),
    );
  });
});
