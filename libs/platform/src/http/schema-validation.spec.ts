import { Type } from '@sinclair/typebox';
import { ValidationFailedError } from '../errors/domain-error';
import { SchemaValidationPipe } from './schema-validation';
import { problemTypeFor } from './problem-details.filter';

describe('SchemaValidationPipe', () => {
  const pipe = new SchemaValidationPipe(
    Type.Object({ email: Type.String({ format: 'email' }), age: Type.Optional(Type.Integer({ minimum: 0 })) }, { additionalProperties: false }),
    'body',
  );

  it('passes a valid body through unchanged', () => {
    expect(pipe.transform({ email: 'a@b.co', age: 3 })).toEqual({ email: 'a@b.co', age: 3 });
  });

  it('does not coerce body types (a string is not a number)', () => {
    expect(() => pipe.transform({ email: 'a@b.co', age: '3' })).toThrow(ValidationFailedError);
  });

  it('reports every field at once', () => {
    try {
      pipe.transform({ email: 'nope', age: -1, admin: true });
      throw new Error('expected a validation error');
    } catch (error) {
      expect((error as ValidationFailedError).errors).toEqual([
        { field: 'admin', message: 'is not allowed' },
        { field: 'email', message: 'must be a valid email' },
        { field: 'age', message: 'must be >= 0' },
      ]);
    }
  });

  it('treats a missing body as an empty object', () => {
    expect(() => pipe.transform(undefined)).toThrow(expect.objectContaining({ errors: [{ field: 'email', message: 'is required' }] }));
  });
});

describe('problemTypeFor', () => {
  it('turns a code into a type URI that ends in the kebab-cased name', () => {
    expect(problemTypeFor('ORDER.INSUFFICIENT_STOCK')).toBe('/problems/order/insufficient-stock');
  });
});
