'use strict';
/**
 * What the repository's module rules share: which lib a linted file belongs to, the name
 * a call is made by, and the `exempt` option schema. Not a rule (see static-strings.js).
 */
const path = require('node:path');

/** `libs/<module>` for a file inside a lib, relative to the lint's working directory. */
function libOf(context) {
  const filename = context.filename ?? context.getFilename();
  const cwd = context.cwd ?? context.getCwd();
  const relative = (path.isAbsolute(filename) ? path.relative(cwd, filename) : filename).split(path.sep).join('/');
  // The last libs/<module>/ segment: the repository's own files, and fixture trees that
  // mirror the layout (test/architecture/fixtures/typed/libs/<module>/...).
  return /(?:^|\/)libs\/([^/]+)\/(?!.*\/libs\/)/.exec(relative)?.[1];
}

/** `f` for `f(...)`, `g` for `x.g(...)`; also the name of an object expression. */
function nameOf(node) {
  if (node.type === 'Identifier') return node.name;
  if (node.type === 'MemberExpression' && !node.computed) return node.property.name;
  return undefined;
}

/** `{ exempt: ['platform'] }`: the libs whose files the rule does not apply to. */
const EXEMPT_OPTION_SCHEMA = [
  {
    type: 'object',
    properties: { exempt: { type: 'array', items: { type: 'string' }, uniqueItems: true } },
    additionalProperties: false,
  },
];

module.exports = { libOf, nameOf, EXEMPT_OPTION_SCHEMA };
