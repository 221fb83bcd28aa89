import { ValidationFailedError } from '@app/platform';

export interface KeysetCursor {
  createdAt: string;
  id: string;
}

/** Opaque to clients: base64url of the last row's sort key. */
export function encodeCursor(cursor: KeysetCursor): string {
  return Buffer.from(JSON.stringify([cursor.createdAt, cursor.id])).toString('base64url');
}

export function decodeCursor(value: string | undefined): KeysetCursor | undefined {
  if (!value) return undefined;
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(value, 'base64url').toString('utf8')) as [string, string];
    if (Number.isNaN(Date.parse(createdAt)) || !/^[0-9a-f-]{36}$/i.test(id)) throw new Error('bad cursor');
    return { createdAt, id };
  } catch {
    throw new ValidationFailedError([{ field: 'cursor', message: 'is not a cursor returned by this API' }]);
  }
}
