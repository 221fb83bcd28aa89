import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { runCli } from '../support/cli';
import { ROOT } from '../support/processes';
import { createTestDatabase, eventually, runId, startApi, type RunningApi } from '../support/test-env';
import { runReadmeJourney } from './openapi-client/readme-journey';

/**
 * A client generated from the served document runs the README's walk-through (docs/api.md,
 * "The API document"). The generated types are committed (test/e2e/openapi-client/api.d.ts):
 * a change to the API shows up as a diff of them in review, and `tsc` checks the client
 * against them without a running API. This file regenerates them from /docs-json, fails
 * when the committed ones are stale (`npm run openapi:types` rewrites them), and type-checks
 * the client with tsc, so a document that drifts from the client breaks here.
 */
const CLIENT_DIR = path.join(ROOT, 'test/e2e/openapi-client');
const TYPES = path.join(CLIENT_DIR, 'api.d.ts');

describe('A client generated from the API document', () => {
  let api: RunningApi;
  let databaseUrl: string;
  beforeAll(async () => {
    databaseUrl = await createTestDatabase();
    api = await startApi(databaseUrl);
  });
  afterAll(async () => api?.close());

  it('has up-to-date committed types (openapi-typescript over /docs-json)', async () => {
    const document = (await request(api.internalUrl).get('/docs-json').expect(200)).body as unknown;
    const dir = mkdtempSync(path.join(tmpdir(), 'openapi-types-'));
    writeFileSync(path.join(dir, 'openapi.json'), JSON.stringify(document));
    // Its CLI, as a user of the document would run it (the package is ESM-only; jest here is CommonJS).
    const generate = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/openapi-typescript/bin/cli.js'), path.join(dir, 'openapi.json'), '-o', path.join(dir, 'api.d.ts')], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    });
    if (generate.status !== 0) throw new Error(`openapi-typescript failed:\n${generate.stdout}${generate.stderr}`);
    const fresh = readFileSync(path.join(dir, 'api.d.ts'), 'utf8');
    if (process.env.OPENAPI_TYPES_UPDATE === '1') writeFileSync(TYPES, fresh);
    const committed = readFileSync(TYPES, 'utf8');
    if (committed !== fresh) {
      throw new Error(`${path.relative(ROOT, TYPES)} is stale: the API document changed. Run \`npm run openapi:types\` and commit the result (fresh types: ${path.join(dir, 'api.d.ts')})`);
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('type-checks the client code against those types (tsc)', () => {
    const tsc = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', path.join(CLIENT_DIR, 'tsconfig.json')], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 120_000,
    });
    if (tsc.status !== 0) throw new Error(`tsc found the client and the document disagree:\n${tsc.stdout}${tsc.stderr}`);
  }, 150_000);

  it("runs the README's walk-through unchanged", async () => {
    const cliEnv = {
      DATABASE_URL: databaseUrl,
      DB_ROLE_PREFIX: runId(),
      REDIS_URL: api.config.env.REDIS_URL,
      REDIS_KEY_PREFIX: api.config.env.REDIS_KEY_PREFIX,
      LOG_LEVEL: 'silent',
    };
    const journey = await runReadmeJourney(api.url, {
      promoteAndSeed: async (email) => {
        for (const args of [['users:promote', email], ['catalogue:seed']]) {
          const cli = await runCli(args, cliEnv);
          if (cli.code !== 0) throw new Error(`npm run cli -- ${args.join(' ')} exited ${cli.code}: ${cli.stderr}`);
        }
      },
      eventually: (probe) => eventually(probe, 20_000, 200),
    });

    expect(journey.registered).toEqual({ id: expect.any(String), email: 'ada@example.com', name: 'Ada', createdAt: expect.any(String) });
    expect(journey.emailTaken.status).toBe(409);
    expect(journey.emailTaken.contentType).toMatch(/^application\/problem\+json/);
    expect(journey.emailTaken.problem.type).toBe('/problems/user/email-taken');
    expect(journey.firstOrder.status).toBe(201);
    expect(journey.firstOrder.order).toMatchObject({ status: 'pending', items: [expect.objectContaining({ productId: journey.productId, quantity: 2 })] });
    expect(journey.repeatedOrder).toEqual({ status: 201, order: journey.firstOrder.order, replayed: 'true' });
    expect(journey.notifications.map((n) => n.kind)).toEqual(expect.arrayContaining(['welcome', 'order-placed']));
    expect(journey.stream).toEqual({ status: 200, contentType: expect.stringMatching(/^text\/event-stream/) });
    expect(journey.adminProduct.etag).toMatch(/^"\d+"$/);
    expect(journey.adminProduct.updatedStock).toBe(10);
    expect(journey.adminProduct.staleStatus).toBe(412);
    expect(journey.adminProduct.stale.status).toBe(412);
  }, 90_000);
});
