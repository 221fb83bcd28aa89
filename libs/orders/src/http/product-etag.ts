import { ValidationFailedError } from '@app/platform';
import type { VersionPrecondition } from '../application/catalogue.service';

/** A product's ETag: its version, quoted (strong: it changes with every change, stock included). */
export const productEtag = (version: number): string => `"${version}"`;

// RFC 9110 §8.8.3: entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE.
const ENTITY_TAG = /^(W\/)?"([\x21\x23-\x7e\x80-\xff]*)"$/;

/**
 * `If-Match` (RFC 9110 §13.1.1): `*`, or a list of entity tags compared strongly, so weak
 * tags (`W/"3"`) and tags that are not ours never match (412), while a malformed header is
 * a 400 on the header. Absent: no precondition.
 */
export function parseIfMatch(header: string | undefined): VersionPrecondition | undefined {
  if (header === undefined) return undefined;
  const value = header.trim();
  if (value === '*') return { any: true };
  const tags = value.split(',').map((t) => t.trim());
  const versions: number[] = [];
  for (const tag of tags) {
    const match = ENTITY_TAG.exec(tag);
    if (!match) throw new ValidationFailedError([{ field: 'If-Match', message: 'must be * or a list of quoted entity tags, e.g. "3"' }]);
    if (!match[1] && /^[1-9][0-9]{0,15}$/.test(match[2])) versions.push(Number(match[2]));
  }
  return { versions };
}
