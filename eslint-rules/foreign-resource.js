'use strict';
/**
 * [boundary/foreign-resource]: a domain module injects only its own database connection.
 * Every module's TypeORM data source is registered globally, so `@InjectDataSource('users')`
 * inside libs/orders would compile, boot and run with the users role: a walk around the
 * database isolation (docs/architecture.md, "Boundary rules"). This rule refuses it at
 * lint time; the platform's MessagingRegistry refuses it again at boot.
 *
 * Seen: @InjectDataSource(x), @InjectEntityManager(x), @InjectRepository(Entity, x),
 * getDataSourceToken(x), getEntityManagerToken(x), getRepositoryToken(Entity, x). `x` must
 * be the module's own name (the connection is named after the module); leaving it out
 * means TypeORM's default connection, which is no module's, so that is refused too. Names
 * are resolved like queue names (eslint-rules/support/static-strings.js). Queues are the
 * queue-ownership rule's business.
 */
const path = require('node:path');
const { possibleStrings, hasTypes } = require('./support/static-strings');

/** Callee → index of its connection-name argument. */
const CONNECTION_ARGUMENT = {
  InjectDataSource: 0,
  InjectEntityManager: 0,
  getDataSourceToken: 0,
  getEntityManagerToken: 0,
  InjectRepository: 1,
  getRepositoryToken: 1,
};

function calleeName(callee) {
  if (callee.type === 'Identifier') return callee.name;
  if (callee.type === 'MemberExpression' && !callee.computed) return callee.property.name;
  return undefined;
}

function libOf(context) {
  const filename = context.filename ?? context.getFilename();
  const cwd = context.cwd ?? context.getCwd();
  const relative = (path.isAbsolute(filename) ? path.relative(cwd, filename) : filename).split(path.sep).join('/');
  return /(?:^|\/)libs\/([^/]+)\/(?!.*\/libs\/)/.exec(relative)?.[1];
}

/** @type {import('eslint').Rule.RuleModule} */
module.exports = {
  meta: {
    type: 'problem',
    docs: { description: "A domain module injects only its own data source, entity manager and repositories" },
    schema: [
      {
        type: 'object',
        properties: { exempt: { type: 'array', items: { type: 'string' }, uniqueItems: true } },
        additionalProperties: false,
      },
    ],
    messages: {
      foreign: '[boundary/foreign-resource] libs/{{module}} uses {{callee}}("{{name}}"): the connection of module "{{name}}" (a module uses only its own, "{{module}}")',
      unnamed: '[boundary/foreign-resource] libs/{{module}} uses {{callee}}() without a connection name: that is the default connection, no module\'s (name "{{module}}")',
      unknown: '[boundary/foreign-resource] libs/{{module}} uses {{callee}}() with a connection name that is not a known string',
    },
  },

  create(context) {
    const module = libOf(context);
    const exempt = context.options[0]?.exempt ?? ['platform'];
    if (!module || exempt.includes(module)) return {};

    return {
      CallExpression(node) {
        const callee = calleeName(node.callee);
        if (!Object.hasOwn(CONNECTION_ARGUMENT, callee ?? '')) return;
        const argument = node.arguments[CONNECTION_ARGUMENT[callee]];
        if (!argument) return context.report({ node, messageId: 'unnamed', data: { module, callee } });
        const names = possibleStrings(argument, context);
        if (names === undefined) {
          if (hasTypes(context)) context.report({ node: argument, messageId: 'unknown', data: { module, callee } });
          return;
        }
        for (const name of names) {
          if (name !== module) context.report({ node: argument, messageId: 'foreign', data: { module, callee, name } });
        }
      },
    };
  },
};
