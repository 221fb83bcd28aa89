import { STATUS_CODES } from 'node:http';
import type { OpenAPIObject } from '@nestjs/swagger';
import { OPENAPI_PUBLIC, OPENAPI_ROLES } from '../auth/auth.decorators';

/*
 * What @nestjs/swagger builds, finished into a valid OpenAPI 3.1 document (docs/api.md,
 * "The API document"). 3.1 because the schemas are TypeBox's, i.e. JSON Schema 2020-12
 * (`const`, `type: 'null'`, `$id`), which 3.1 takes as they are and 3.0 does not. The
 * answers every route can give whatever its controller says (400, 401, 403, 429, 503, all
 * problem+json) are added here, once, rather than repeated on every handler.
 */

type Json = Record<string, unknown>;
type Operation = Json & { responses: Record<string, Json>; parameters?: Json[]; requestBody?: unknown; security?: unknown };

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;
const PROBLEM_JSON = 'application/problem+json';
const ref = (kind: 'schemas' | 'responses' | 'headers', name: string) => ({ $ref: `#/components/${kind}/${name}` });
const problemContent = () => ({ [PROBLEM_JSON]: { schema: ref('schemas', 'Problem') } });

/** RFC 9457 problem details as problem-details.filter.ts writes them. */
const PROBLEM_SCHEMA = {
  type: 'object',
  description: 'RFC 9457 problem details. `code` is the stable machine-readable name; `type` is derived from it.',
  required: ['type', 'title', 'status', 'detail'],
  properties: {
    type: { type: 'string', description: 'e.g. `/problems/order/insufficient-stock`', examples: ['/problems/user/email-taken'] },
    title: { type: 'string', description: "The status's reason phrase" },
    status: { type: 'integer', minimum: 400, maximum: 599 },
    detail: { type: 'string' },
    instance: { type: 'string', description: 'The request path' },
    code: { type: 'string', examples: ['ORDER.INSUFFICIENT_STOCK'] },
    errors: {
      type: 'array',
      description: 'Validation failures (400), one per field',
      items: { type: 'object', required: ['field', 'message'], properties: { field: { type: 'string' }, message: { type: 'string' } } },
    },
  },
  additionalProperties: true,
};

const RETRY_AFTER = { description: 'Seconds to wait before trying again', schema: { type: 'integer', minimum: 0 } };

/** Answers any route may give, whatever its handler (README, "Security" and "What is shed first"). */
const SHARED_RESPONSES: Record<string, { status: string; response: Json }> = {
  BadRequest: { status: '400', response: { description: 'Invalid parameters, headers or body: `errors` names each field', content: problemContent() } },
  Unauthorized: { status: '401', response: { description: 'No, an invalid, an expired or a revoked access token', content: problemContent() } },
  Forbidden: { status: '403', response: { description: 'The caller lacks the required role', content: problemContent() } },
  ContentTooLarge: { status: '413', response: { description: 'The body is larger than BODY_LIMIT_BYTES', content: problemContent() } },
  UnsupportedMediaType: { status: '415', response: { description: 'The body is not application/json', content: problemContent() } },
  TooManyRequests: {
    status: '429',
    response: { description: 'Rate limit (per client address, every instance counted)', headers: { 'Retry-After': ref('headers', 'RetryAfter') }, content: problemContent() },
  },
  ServiceUnavailable: {
    status: '503',
    response: { description: 'Shed under overload: try again after Retry-After', headers: { 'Retry-After': ref('headers', 'RetryAfter') }, content: problemContent() },
  },
};

export interface OpenApiDocumentOptions {
  /** The public listener's port, for the `servers` entry. */
  port: number;
}

export function finishOpenApiDocument(document: OpenAPIObject, options: OpenApiDocumentOptions): OpenAPIObject {
  const schemas: Record<string, unknown> = {};
  const paths = hoistSchemaIds(document.paths, schemas) as OpenAPIObject['paths'];
  for (const item of Object.values(paths)) {
    for (const method of METHODS) {
      const operation = (item as Record<string, Operation | undefined>)[method];
      if (operation) finishOperation(operation);
    }
  }
  const finished = {
    ...document,
    openapi: '3.1.0',
    info: { ...document.info, license: { name: 'Proprietary (package.json: UNLICENSED)', identifier: 'LicenseRef-Proprietary' } },
    // The public address depends on the deployment (a proxy, TLS), so it is a template whose
    // defaults reach this instance directly; Swagger UI lets the reader edit each part.
    servers: [
      {
        url: '{scheme}://{host}:{port}',
        description: "An instance's public listener (PORT). This document itself is served on the internal one (INTERNAL_PORT).",
        variables: {
          scheme: { default: 'http', enum: ['http', 'https'] },
          host: { default: 'localhost', description: 'The public host name, or a proxy in front of the instances' },
          port: { default: String(options.port || 3000) },
        },
      },
    ],
    paths,
    components: {
      ...document.components,
      schemas: { ...document.components?.schemas, ...schemas, Problem: PROBLEM_SCHEMA },
      responses: Object.fromEntries(Object.entries(SHARED_RESPONSES).map(([name, { response }]) => [name, response])),
      headers: { RetryAfter: RETRY_AFTER },
    },
  };
  // @nestjs/swagger's types describe 3.0 (no license `identifier`); SwaggerModule serves any JSON.
  return finished as unknown as OpenAPIObject;
}

function finishOperation(operation: Operation): void {
  const isPublic = operation[OPENAPI_PUBLIC] === true;
  const roles = operation[OPENAPI_ROLES] as string[] | undefined;
  delete operation[OPENAPI_PUBLIC];
  delete operation[OPENAPI_ROLES];
  // Public routes say so (`[]`); every other one takes the bearer token the guard checks.
  operation.security = isPublic ? [] : [{ bearer: [] }];

  const responses = operation.responses;
  for (const [status, response] of Object.entries(responses)) {
    if (Number(status) >= 400 && !response.content && !response.$ref) response.content = problemContent();
    if (response.description === '') response.description = STATUS_CODES[Number(status)] ?? 'Answer';
  }
  const add = (name: keyof typeof SHARED_RESPONSES) => {
    const { status } = SHARED_RESPONSES[name];
    responses[status] ??= ref('responses', name);
  };
  if (operation.requestBody || (operation.parameters ?? []).length > 0) add('BadRequest');
  if (operation.requestBody) {
    add('ContentTooLarge');
    add('UnsupportedMediaType');
  }
  if (!isPublic) add('Unauthorized');
  if (roles?.length) {
    add('Forbidden');
    operation.description = [operation.description, `Requires the role ${roles.join(' or ')}.`].filter(Boolean).join(' ');
  }
  add('TooManyRequests');
  add('ServiceUnavailable');
}

/**
 * TypeBox schemas with an `$id` become named components (`#/components/schemas/<id>`), so
 * a schema used by several operations is written once and clients get one named type.
 */
function hoistSchemaIds(value: unknown, schemas: Record<string, unknown>): unknown {
  if (Array.isArray(value)) return value.map((entry) => hoistSchemaIds(entry, schemas));
  if (value === null || typeof value !== 'object') return value;
  const entries = Object.entries(value as Json).map(([key, entry]) => [key, hoistSchemaIds(entry, schemas)] as const);
  const object = Object.fromEntries(entries) as Json;
  const id = object.$id;
  if (typeof id !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(id)) return object;
  delete object.$id;
  const known = schemas[id];
  if (known !== undefined && JSON.stringify(known) !== JSON.stringify(object)) {
    throw new Error(`OpenAPI: two different schemas share the $id ${id}`);
  }
  schemas[id] = object;
  return ref('schemas', id);
}
