'use strict';
/**
 * [boundary/foreign-resource]: a domain module injects only its own database connection.
 * Every module's TypeORM data source is registered globally, so `@InjectDataSource('users')`
 * inside libs/orders would compile, boot and run with the users role: a walk around the
 * database isolation (docs/architecture.md, "Boundary rules"). This rule refuses it at
 * lint time; the platform's MessagingRegistry refuses it again at boot.
 *
 * Seen: @InjectDataSource(x), @InjectEntityManager(x), @InjectReplicaReader(x), @InjectRepository(Entity, x),
 * getDataSourceToken(x), getEntityManagerToken(x), replicaReaderToken(x), getRepositoryToken(Entity, x). `x` must
 * be the module's own name (the connection is named after the module); leaving it out
 * means TypeORM's default connection, which is no module's, so that is refused too. Names
 * are resolved like queue names (eslint-rules/support/static-strings.js). Queues are the
 * queue-ownership rule's business.
 */
const { libOf, nameOf, EXEMPT_OPTION_SCHEMA } = require('./support/rule-context');
const { possibleStrings, hasTypes } = require('./support/static-strings');

/** Callee → index of its connection-name argument. */
const CONNECTION_ARGUMENT = {
  InjectDataSource: 0,
  InjectEntityManager: 0,
  getDataSourceToken: 0,
  getEntityManagerToken: 0,
  InjectReplicaReader: 0,
  replicaReaderToken: 0,
  InjectRepository: 1,
  getRepositoryToken: 1,
};

/** @type {import('eslint').Rule.RuleModule} */
module.exports = {
  meta: {
    type: 'problem',
    docs: { description: "A domain module injects only its own data source, entity manager and repositories" },
    schema: EXEMPT_OPTION_SCHEMA,
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
        const callee = nameOf(node.callee);
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
