import { Body, ParseUUIDPipe, Param, Query, type PipeTransform } from '@nestjs/common';
import { ApiBody, ApiParam, ApiQuery } from '@nestjs/swagger';
import type { Static, TObject, TSchema } from '@sinclair/typebox';
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { ValidationFailedError, type FieldError } from '../errors/domain-error';

/*
 * Request validation: TypeBox schemas compiled once by Ajv into plain functions. The same
 * schema objects feed the OpenAPI document (through the decorators below), so the docs
 * and the validator cannot drift apart.
 */
const bodyAjv = addFormats(new Ajv({ allErrors: true, strict: false, coerceTypes: false, useDefaults: true }));
// Query strings are text; numbers and booleans are coerced before they are checked.
const queryAjv = addFormats(new Ajv({ allErrors: true, strict: false, coerceTypes: true, useDefaults: true }));

function fieldOf(error: ErrorObject, root: string): string {
  const path = error.instancePath
    .split('/')
    .filter(Boolean)
    .map((segment) => (/^\d+$/.test(segment) ? `[${segment}]` : `.${segment}`))
    .join('')
    .replace(/^\./, '');
  const join = (child: string) => (path ? `${path}.${child}` : child);
  if (error.keyword === 'required') return join((error.params as { missingProperty: string }).missingProperty);
  if (error.keyword === 'additionalProperties') return join((error.params as { additionalProperty: string }).additionalProperty);
  return path || root;
}

function messageOf(error: ErrorObject): string {
  switch (error.keyword) {
    case 'required':
      return 'is required';
    case 'additionalProperties':
      return 'is not allowed';
    case 'format':
      return `must be a valid ${(error.params as { format: string }).format}`;
    default:
      return error.message ?? 'is invalid';
  }
}

export function toFieldErrors(errors: ErrorObject[] | null | undefined, root: string): FieldError[] {
  const seen = new Set<string>();
  const result: FieldError[] = [];
  for (const error of errors ?? []) {
    const entry = { field: fieldOf(error, root), message: messageOf(error) };
    const key = `${entry.field}:${entry.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      result.push(entry);
    }
  }
  return result;
}

export class SchemaValidationPipe<T extends TSchema> implements PipeTransform<unknown, Static<T>> {
  /**
   * Compiled on the route's first request, then kept: the pipes are built when the
   * controllers' modules load, and compiling every route's schema there was ~100 ms of
   * each start (README, "Design notes", "Start-up time").
   */
  private compiled?: ValidateFunction;

  constructor(private readonly schema: T, private readonly root: 'body' | 'query') {}

  transform(value: unknown): Static<T> {
    const check = (this.compiled ??= (this.root === 'query' ? queryAjv : bodyAjv).compile(this.schema));
    // A missing body reaches us as undefined; validate it as an empty object so the
    // client learns which fields are required rather than "body must be object".
    const input = value === undefined || value === null ? {} : value;
    if (check(input)) return input as Static<T>;
    throw new ValidationFailedError(toFieldErrors(check.errors, this.root));
  }
}

/** Validates the JSON body against `schema` and documents it in OpenAPI. */
export function ValidBody(schema: TSchema): ParameterDecorator {
  return (target, key, index) => {
    if (key === undefined) throw new Error('ValidBody is a method parameter decorator');
    ApiBody({ schema: schema as never })(target, key, Object.getOwnPropertyDescriptor(target, key)!);
    Body(new SchemaValidationPipe(schema, 'body'))(target, key, index);
  };
}

/** Validates (and coerces) the query string against `schema` and documents each field. */
export function ValidQuery(schema: TObject): ParameterDecorator {
  return (target, key, index) => {
    if (key === undefined) throw new Error('ValidQuery is a method parameter decorator');
    const descriptor = Object.getOwnPropertyDescriptor(target, key)!;
    for (const [name, property] of Object.entries(schema.properties)) {
      // A field with a default is filled in (useDefaults), so a client may leave it out.
      const required = (schema.required ?? []).includes(name) && (property as TSchema).default === undefined;
      ApiQuery({ name, required, schema: property as never })(target, key, descriptor);
    }
    Query(new SchemaValidationPipe(schema, 'query'))(target, key, index);
  };
}

/** A UUID path parameter; anything else is a 400 naming the parameter, never a 500. */
export function UuidParam(name: string): ParameterDecorator {
  return (target, key, index) => {
    if (key === undefined) throw new Error('UuidParam is a method parameter decorator');
    ApiParam({ name, schema: { type: 'string', format: 'uuid' } })(target, key, Object.getOwnPropertyDescriptor(target, key)!);
    Param(
      name,
      new ParseUUIDPipe({
        exceptionFactory: () => new ValidationFailedError([{ field: name, message: 'must be a UUID' }]),
      }),
    )(target, key, index);
  };
}
