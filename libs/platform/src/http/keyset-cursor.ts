import { ValidationFailedError } from '../errors/domain-error';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A page boundary: the last row's sort key (a timestamp as text) and its id (the tie-break). */
export interface KeysetPosition {
  key: string;
  id: string;
}

/**
 * Keyset pagination cursors, opaque to clients (base64url of `[key, id]`): a page never
 * repeats or skips a row however many rows arrive while a client pages, and the query
 * seeks by index instead of an OFFSET scan. Every list endpoint uses these (docs/api.md,
 * "Pagination").
 */
export const KeysetCursor = {
  encode(position: KeysetPosition): string {
    return Buffer.from(JSON.stringify([position.key, position.id])).toString('base64url');
  },

  /** A sort key that is a timestamp (ISO 8601 text). */
  isTimestamp: (key: string): boolean => /^\d{4}-\d{2}-\d{2}T/.test(key) && !Number.isNaN(Date.parse(key)),

  /** `isKey`: whether the sort key has the shape this endpoint writes. Unset → undefined. */
  decode(value: string | undefined, isKey: (key: string) => boolean): KeysetPosition | undefined {
    if (!value) return undefined;
    try {
      const [key, id] = JSON.parse(Buffer.from(value, 'base64url').toString('utf8')) as unknown[];
      if (typeof key === 'string' && isKey(key) && typeof id === 'string' && UUID.test(id)) return { key, id };
    } catch {
      // Falls through to the validation error.
    }
    throw new ValidationFailedError([{ field: 'cursor', message: 'is not a cursor returned by this endpoint' }]);
  },
};
