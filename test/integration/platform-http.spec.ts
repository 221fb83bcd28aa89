import 'reflect-metadata';
import { Controller, Get, Module, Post } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { NestFactory } from '@nestjs/core';
import { Type, type Static } from '@sinclair/typebox';
import pino from 'pino';
import request from 'supertest';
import {
  configureHttpApp,
  listenInternal,
  createHttpAdapter,
  KindedDomainError,
  PlatformModule,
  Public,
  UuidParam,
  ValidBody,
  ValidQuery,
} from '@app/platform';
import { createTestDatabase, deleteRedisPrefix, testConfig } from '../support/test-env';

const Body = Type.Object(
  { quantity: Type.Integer({ minimum: 1, maximum: 1000 }), items: Type.Array(Type.Object({ sku: Type.String() }, { additionalProperties: false })) },
  { additionalProperties: false },
);
const Query = Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }) }, { additionalProperties: false });

class WidgetGoneError extends KindedDomainError {
  readonly code = 'WIDGET.GONE';
  readonly kind = 'not-found' as const;
  constructor() {
    super('No such widget.', { widgetKind: 'sprocket' });
  }
}

@Public()
@Controller({ path: 'widgets', version: '1' })
class WidgetsController {
  @Get(':id')
  get(@UuidParam('id') id: string) {
    if (id === '00000000-0000-4000-8000-000000000000') throw new WidgetGoneError();
    return { id };
  }

  @Get()
  list(@ValidQuery(Query) query: Static<typeof Query>) {
    return { limit: query.limit };
  }

  @Post()
  create(@ValidBody(Body) body: Static<typeof Body>) {
    return body;
  }

  @Post('explode')
  explode() {
    throw new Error('duplicate key value violates unique constraint "users_pkey" at SELECT * FROM users.users');
  }
}

@Module({ controllers: [WidgetsController] })
class WidgetsModule {}

/** The HTTP plumbing every module relies on: validation, problem+json, request ids, docs. */
describe('Platform HTTP conventions', () => {
  let app: NestFastifyApplication;
  let prefix: string;
  let internalUrl: string;
  const logged: string[] = [];

  beforeAll(async () => {
    const config = testConfig(await createTestDatabase(), { env: { MODULES_ENABLED: 'users' } });
    prefix = config.env.REDIS_KEY_PREFIX;
    const logger = pino({ level: 'error' }, { write: (line: string) => void logged.push(line) });
    @Module({ imports: [PlatformModule.forRoot(config, logger, []), WidgetsModule] })
    class TestApp {}
    app = await NestFactory.create<NestFastifyApplication>(TestApp, createHttpAdapter(config), { logger: false });
    app.enableVersioning();
    configureHttpApp(app, config, logger, 'test');
    await app.init();
    await app.getHttpAdapter().getInstance().ready();
    internalUrl = `http://127.0.0.1:${await listenInternal(app, config, 0, '127.0.0.1')}`;
  });
  afterAll(async () => {
    await app?.close();
    await deleteRedisPrefix(process.env.TEST_REDIS_URL!, prefix);
  });

  const http = () => request(app.getHttpServer());

  it('answers 400 naming the parameter for an invalid UUID in the path (not 500)', async () => {
    const response = await http().get('/v1/widgets/not-a-uuid').expect(400);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.body.errors).toEqual([{ field: 'id', message: 'must be a UUID' }]);
  });

  it('maps a domain error by kind, with its code and safe details', async () => {
    const response = await http().get('/v1/widgets/00000000-0000-4000-8000-000000000000').expect(404);
    expect(response.body).toEqual({
      type: '/problems/widget/gone',
      title: 'Not Found',
      status: 404,
      detail: 'No such widget.',
      instance: '/v1/widgets/00000000-0000-4000-8000-000000000000',
      code: 'WIDGET.GONE',
      widgetKind: 'sprocket',
    });
  });

  it('names nested fields and array positions', async () => {
    const response = await http().post('/v1/widgets').send({ quantity: 0, items: [{ sku: 1 }, { sku: 'a', color: 'red' }] }).expect(400);
    expect(response.body.errors).toEqual(
      expect.arrayContaining([
        { field: 'quantity', message: 'must be >= 1' },
        { field: 'items[0].sku', message: 'must be string' },
        { field: 'items[1].color', message: 'is not allowed' },
      ]),
    );
  });

  it('coerces and bounds query parameters', async () => {
    expect((await http().get('/v1/widgets?limit=5').expect(200)).body).toEqual({ limit: 5 });
    expect((await http().get('/v1/widgets').expect(200)).body).toEqual({ limit: 20 });
    const tooMany = await http().get('/v1/widgets?limit=500').expect(400);
    expect(tooMany.body.errors).toEqual([{ field: 'limit', message: 'must be <= 100' }]);
  });

  it('turns an unexpected error into a bare 500: no stack, SQL or internal names; logged with the request id', async () => {
    const response = await http().post('/v1/widgets/explode').set('X-Request-Id', 'boom-1').expect(500);
    expect(response.body).toEqual({
      type: 'about:blank',
      title: 'Internal Server Error',
      status: 500,
      detail: expect.stringContaining('X-Request-Id'),
      instance: '/v1/widgets/explode',
    });
    expect(JSON.stringify(response.body)).not.toMatch(/users_pkey|SELECT|at |\.ts/);
    expect(response.headers['x-request-id']).toBe('boom-1');
    expect(logged.some((line) => line.includes('"requestId":"boom-1"') && line.includes('users_pkey'))).toBe(true);
  });

  it('replaces an unsafe client request id with a generated one', async () => {
    const response = await http().get('/health/live').set('X-Request-Id', 'bad id with spaces and {braces}').expect(200);
    expect(response.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('publishes an OpenAPI document built from the validation schemas (on the internal port)', async () => {
    const doc = (await request(internalUrl).get('/docs-json').expect(200)).body;
    const schema = doc.paths['/v1/widgets'].post.requestBody.content['application/json'].schema;
    expect(schema.properties.quantity).toMatchObject({ type: 'integer', minimum: 1, maximum: 1000 });
    expect(schema.additionalProperties).toBe(false);
    expect(doc.paths['/v1/widgets/{id}'].get.parameters).toEqual(
      expect.arrayContaining([expect.objectContaining({ name: 'id', in: 'path', schema: { type: 'string', format: 'uuid' } })]),
    );
    await request(internalUrl).get('/docs').expect(200);
    await http().get('/docs-json').expect(404);
  });
});
