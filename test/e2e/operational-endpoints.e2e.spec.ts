import net from 'node:net';
import request from 'supertest';
import { createTestDatabase, startApi, type RunningApi } from '../support/test-env';

/**
 * README, "Operational endpoints": /metrics and /docs are served on the internal listener
 * (INTERNAL_PORT) only; the public port keeps the API and the health probes. Every
 * listener cuts a request that does not arrive within HTTP_REQUEST_TIMEOUT_MS.
 */
describe('Operational endpoints and the request timeout', () => {
  let api: RunningApi;
  beforeAll(async () => {
    api = await startApi(await createTestDatabase(), { env: { HTTP_REQUEST_TIMEOUT_MS: '1000' } });
  });
  afterAll(async () => api?.close());

  it.each(['/metrics', '/docs', '/docs/', '/docs-json', '/metrics?x=1'])('public port: %s is 404 problem+json', async (path) => {
    const response = await request(api.url).get(path).expect(404);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.body).toMatchObject({ status: 404, title: 'Not Found' });
    expect(response.text).not.toMatch(/http_requests_total|openapi|swagger/i);
  });

  it('internal port: /metrics, /docs and /docs-json answer 200', async () => {
    const metrics = await request(api.internalUrl).get('/metrics').expect(200);
    expect(metrics.headers['content-type']).toMatch(/^text\/plain/);
    expect(metrics.text).toMatch(/# TYPE http_requests_total counter/);
    expect((await request(api.internalUrl).get('/docs-json').expect(200)).body.openapi).toMatch(/^3\./);
    await request(api.internalUrl).get('/docs').expect(200);
  });

  it('internal port serves nothing else; the public port keeps the API and the health probes', async () => {
    await request(api.internalUrl).get('/v1/products').expect(404);
    await request(api.internalUrl).get('/health/live').expect(404);
    await request(api.url).get('/v1/products').expect(401); // the API, asking for a token
    await request(api.url).get('/health/live').expect(200);
    await request(api.url).get('/health/ready').expect(200);
  });

  /** Opens a raw connection, writes `text` and never more; resolves with what came back when the server closed it. */
  const stalled = (url: string, text: string) =>
    new Promise<{ received: string; closedByServer: boolean }>((resolve, reject) => {
      const { hostname, port } = new URL(url);
      const socket = net.connect({ host: hostname, port: Number(port) }, () => socket.write(text));
      let received = '';
      const giveUp = setTimeout(() => {
        socket.destroy();
        resolve({ received, closedByServer: false });
      }, 15_000);
      socket.on('data', (chunk) => (received += chunk.toString()));
      socket.on('error', reject);
      socket.on('close', () => {
        clearTimeout(giveUp);
        resolve({ received, closedByServer: true });
      });
    });

  it.each([
    ['headers that never finish', 'GET /v1/products HTTP/1.1\r\nHost: x\r\nX-Slow: '],
    ['a body that never finishes', 'POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"email":'],
  ])('cuts %s with 408 problem+json, while other requests are served', async (_, text) => {
    const slow = stalled(api.url, text);
    // Meanwhile the instance serves everyone else.
    for (let i = 0; i < 3; i++) await request(api.url).get('/health/ready').expect(200);
    const { received, closedByServer } = await slow;
    expect(closedByServer).toBe(true);
    expect(received).toMatch(/^HTTP\/1\.1 408 /);
    expect(received).toMatch(/content-type: application\/problem\+json/i);
    expect(received).toContain('"code":"REQUEST.TIMEOUT"');
    await request(api.url).get('/health/ready').expect(200);
  }, 20_000);

  it('cuts a stalled request on the internal port too', async () => {
    const { received, closedByServer } = await stalled(api.internalUrl, 'GET /metrics HTTP/1.1\r\nHost: x\r\n');
    expect(closedByServer).toBe(true);
    expect(received).toMatch(/^HTTP\/1\.1 408 /);
  }, 20_000);
});
