import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { ROOT } from '../support/processes';
import { createTestDatabase, startApi, type RunningApi } from '../support/test-env';

/**
 * The API document (/docs-json on the internal port) passes Redocly's `recommended` rules
 * (redocly.yaml) with no error and no warning: the same check as `npm run openapi:lint`,
 * which runs this file and keeps the document it wrote (OPENAPI_DOCUMENT_OUT).
 */
describe('The API document', () => {
  let api: RunningApi;
  let document: Record<string, unknown>;
  beforeAll(async () => {
    api = await startApi(await createTestDatabase());
    document = (await request(api.internalUrl).get('/docs-json').expect(200)).body as Record<string, unknown>;
  });
  afterAll(async () => api?.close());

  type Operation = { operationId?: string; summary?: string; security?: unknown[]; parameters?: { name: string; in: string }[]; responses: Record<string, Record<string, unknown>> };
  const operations = () =>
    Object.entries(document.paths as Record<string, Record<string, Operation>>).flatMap(([route, item]) =>
      Object.entries(item).map(([method, operation]) => ({ route, method, operation })),
    );

  it('is OpenAPI 3.1 with a server, and every operation has an operationId, a summary and its security', () => {
    expect(document.openapi).toBe('3.1.0');
    expect((document.servers as unknown[]).length).toBeGreaterThan(0);
    for (const { route, method, operation } of operations()) {
      expect({ route, method, operationId: typeof operation.operationId, summary: typeof operation.summary }).toEqual({ route, method, operationId: 'string', summary: 'string' });
      expect(Array.isArray(operation.security)).toBe(true);
    }
    const publicOperations = operations().filter(({ operation }) => operation.security!.length === 0).map(({ operation }) => operation.operationId);
    expect(publicOperations.sort()).toEqual(['getJwks', 'login', 'refreshTokens', 'registerUser']);
  });

  it("documents the products' ETag / If-Match, 412 and 428, and errors as problem+json", () => {
    const paths = document.paths as Record<string, Record<string, Operation>>;
    for (const [route, method, status] of [['/v1/products/{id}', 'get', '200'], ['/v1/products', 'post', '201'], ['/v1/products/{id}', 'patch', '200']]) {
      expect(paths[route][method].responses[status].headers).toHaveProperty('ETag');
    }
    const update = paths['/v1/products/{id}'].patch;
    expect(update.parameters).toContainEqual(expect.objectContaining({ name: 'If-Match', in: 'header' }));
    for (const status of ['412', '428']) expect(update.responses[status].content).toHaveProperty(['application/problem+json']);
    for (const { operation } of operations()) {
      for (const [status, response] of Object.entries(operation.responses)) {
        if (Number(status) >= 400 && !response.$ref) expect(response.content).toHaveProperty(['application/problem+json']);
      }
    }
  });

  it('lints clean under redocly recommended (no errors, no warnings)', () => {
    const dir = process.env.OPENAPI_DOCUMENT_OUT ? undefined : mkdtempSync(path.join(tmpdir(), 'openapi-'));
    const file = dir ? path.join(dir, 'openapi.json') : process.env.OPENAPI_DOCUMENT_OUT!;
    writeFileSync(file, JSON.stringify(document, null, 2) + '\n');
    const lint = spawnSync(process.execPath, [path.join(ROOT, 'scripts/openapi-lint.mjs'), file], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    if (dir) rmSync(dir, { recursive: true, force: true });
    // On failure the message is Redocly's own report (rule, location, code frame).
    if (lint.status !== 0) throw new Error(`redocly lint failed (exit ${lint.status}):\n${lint.stderr}${lint.stdout}`);
    expect(lint.stderr).toMatch(/: 0 error\(s\), 0 warning\(s\)/);
  });
});
