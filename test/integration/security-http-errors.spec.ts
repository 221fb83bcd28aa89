import { connect } from 'node:net';
import request, { type Response } from 'supertest';
import { createTestDatabase, startApi, type RunningApi } from '../support/test-env';

/** What a raw HTTP/1.1 exchange answered: for requests supertest cannot even send. */
interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Writes `raw` on a new connection and reads until the server closes it. */
function rawExchange(url: string, raw: string): Promise<RawResponse> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(raw));
    const chunks: Buffer[] = [];
    socket.setTimeout(5000, () => socket.destroy(new Error('no answer within 5 s')));
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const [head, ...rest] = text.split('\r\n\r\n');
      const [statusLine, ...lines] = head.split('\r\n');
      const headers = Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body: rest.join('\r\n\r\n') });
    });
  });
}

/**
 * Issue 12: every answer is problem+json with X-Request-Id, also the ones Fastify and
 * Node's HTTP parser give before any route runs (router limits, body parsing, protocol
 * errors, unknown routes, wrong methods).
 */
describe('Security: errors raised by Fastify and Node are problem+json with a request id', () => {
  let api: RunningApi;

  beforeAll(async () => {
    api = await startApi(await createTestDatabase());
  });
  afterAll(async () => {
    await api?.close();
  });

  function expectProblem(response: Pick<Response, 'status' | 'headers'> & { body: unknown }, status: number, code?: string): Record<string, unknown> {
    expect(response.status).toBe(status);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.headers['x-request-id']).toMatch(/^[A-Za-z0-9._:-]{1,128}$/);
    const body = (typeof response.body === 'string' ? JSON.parse(response.body) : response.body) as Record<string, unknown>;
    expect(body).toMatchObject({ status, title: expect.any(String), detail: expect.any(String), type: expect.any(String) });
    if (code) expect(body.code).toBe(code);
    // Nothing of Fastify's own wording or codes leaks.
    expect(JSON.stringify(body)).not.toMatch(/FST_|statusCode/);
    return body;
  }

  it('414 for a path parameter over the length limit (the client request id is kept)', async () => {
    const response = await request(api.url).get(`/v1/users/${'a'.repeat(200)}`).set('X-Request-Id', 'long-param-1');
    expectProblem(response, 414, 'REQUEST.URI_TOO_LONG');
    expect(response.headers['x-request-id']).toBe('long-param-1');
    expect(response.body.instance).toBe(`/v1/users/${'a'.repeat(200)}`);
  });

  it('400 for a path that is not a valid URL (broken percent-encoding)', async () => {
    expectProblem(await request(api.url).get('/v1/users/%E0%A4%A'), 400, 'REQUEST.BAD_URL');
  });

  it('400 for a malformed Content-Length, answered before any route runs', async () => {
    const response = await rawExchange(
      api.url,
      'POST /v1/users HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 12abc\r\n\r\n{}',
    );
    expectProblem(response, 400, 'REQUEST.INVALID_CONTENT_LENGTH');
  });

  it('400 for a malformed header line', async () => {
    const response = await rawExchange(api.url, 'GET /health/live HTTP/1.1\r\nHost: localhost\r\nthis is not a header\r\n\r\n');
    expectProblem(response, 400, 'REQUEST.MALFORMED');
  });

  it('431 for headers over the size limit', async () => {
    const response = await rawExchange(api.url, `GET /health/live HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'x'.repeat(20_000)}\r\n\r\n`);
    expectProblem(response, 431, 'REQUEST.HEADERS_TOO_LARGE');
  });

  it('400 for malformed and empty JSON bodies', async () => {
    const malformed = await request(api.url).post('/v1/users').set('content-type', 'application/json').set('X-Request-Id', 'bad-json-1').send('{"email": ');
    expectProblem(malformed, 400, 'REQUEST.MALFORMED_JSON');
    expect(malformed.headers['x-request-id']).toBe('bad-json-1');
    expectProblem(await request(api.url).post('/v1/users').set('content-type', 'application/json').send(''), 400, 'REQUEST.EMPTY_BODY');
  });

  it('415 for a text/plain or form body', async () => {
    expectProblem(await request(api.url).post('/v1/users').set('content-type', 'text/plain').send('{"email":"a@b.c"}'), 415, 'REQUEST.UNSUPPORTED_MEDIA_TYPE');
    expectProblem(await request(api.url).post('/v1/auth/login').type('form').send('email=a@b.c&password=x'), 415, 'REQUEST.UNSUPPORTED_MEDIA_TYPE');
  });

  it('413 for a body over the limit', async () => {
    expectProblem(await request(api.url).post('/v1/users').send({ name: 'x'.repeat(1024 * 1024 + 1) }), 413, 'REQUEST.BODY_TOO_LARGE');
  });

  it('404 for an unknown route', async () => {
    const body = expectProblem(await request(api.url).get('/v1/nowhere').set('X-Request-Id', 'nowhere-1'), 404);
    expect(body).toMatchObject({ type: 'about:blank', instance: '/v1/nowhere' });
    expectProblem(await request(api.url).get('/v2/users/me'), 404);
  });

  it('405 with Allow for a method the path does not have', async () => {
    const response = await request(api.url).delete('/v1/auth/login');
    const body = expectProblem(response, 405);
    expect(body).toMatchObject({ type: 'about:blank', title: 'Method Not Allowed', instance: '/v1/auth/login' });
    expect(response.headers.allow).toBe('POST');
    // `/v1/users/me` is GET, PATCH and DELETE (and `/v1/users/:id` GET).
    const me = await request(api.url).put('/v1/users/me');
    expectProblem(me, 405);
    expect(me.headers.allow).toBe('DELETE, GET, HEAD, PATCH');
    // The method check comes before authentication: nothing is revealed beyond the route table.
    expect((await request(api.url).put('/v1/users/00000000-0000-4000-8000-000000000000')).headers.allow).toBe('GET, HEAD');
  });

  it('every answer above and a success carry X-Request-Id; a health probe too', async () => {
    const ok = await request(api.url).get('/health/live').expect(200);
    expect(ok.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });
});
