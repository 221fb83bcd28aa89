'use strict';
/**
 * [boundary/queue-ownership]: every Bull queue is named `<module>.<purpose>` and only the
 * module under libs/<module>/ registers, injects or opens it (docs/architecture.md, "Queues").
 * The platform is exempt: its outbox relay produces into every module's inbox.
 *
 * Seen by this rule: @Processor('q') / @Processor({ name: 'q' }), @InjectQueue('q'),
 * getQueueToken('q'), BullModule.registerQueue({ name: 'q' }, ...) (and ...Async),
 * new Bull('q') / new Queue('q'), and <QueueFactory>.get('q') (with type information; without
 * it, any object named like a queue factory).
 * A queue name may be a string literal, a template literal, a `const` declared in the same
 * file (also a property of a const object, `as const` or not) or inboxQueueName('<module>');
 * with type information (as in `npm run lint`) also a constant imported from anywhere,
 * whose type is a string literal or a union of them. With type information, a name whose
 * value cannot be known (typed plain `string`) is itself a finding: it would escape this
 * rule. The boot-time check in the platform's MessagingRegistry covers run time.
 *
 * Loaded with `eslint --rulesdir eslint-rules` (legacy eslintrc mode); options:
 * `{ exempt: ['platform'] }`, the libs whose files may touch any queue.
 */
const { libOf, nameOf, EXEMPT_OPTION_SCHEMA } = require('./support/rule-context');
const { possibleStrings, hasTypes } = require('./support/static-strings');

const VERBS = {
  consumer: 'registers a consumer for',
  inject: 'injects',
  register: 'registers',
  open: 'opens',
};
const QUEUE_FACTORY = /queue/i;

/** @type {import('eslint').Rule.RuleModule} */
module.exports = {
  meta: {
    type: 'problem',
    docs: { description: 'A Bull queue is registered, injected, opened or consumed only by the module that owns it' },
    schema: EXEMPT_OPTION_SCHEMA,
    messages: {
      foreign: '[boundary/queue-ownership] libs/{{module}} {{verb}} queue "{{queue}}", owned by {{owner}}',
      unnamed: '[boundary/queue-ownership] libs/{{module}} {{verb}} queue "{{queue}}", which is not named <module>.<purpose>',
      unknown: '[boundary/queue-ownership] libs/{{module}} {{verb}} a queue whose name is not a known string (type it as a literal, e.g. with `as const`)',
    },
  },

  create(context) {
    const module = libOf(context);
    const exempt = context.options[0]?.exempt ?? ['platform'];
    if (!module || exempt.includes(module)) return {};

    /** With types: an instance of the platform's QueueFactory; without: a name like one. */
    function isQueueFactory(object) {
      if (!hasTypes(context)) return QUEUE_FACTORY.test(nameOf(object) ?? '');
      const services = (context.sourceCode ?? context.getSourceCode()).parserServices;
      const type = services.program.getTypeChecker().getTypeAtLocation(services.esTreeNodeToTSNodeMap.get(object));
      return type.getSymbol()?.getName() === 'QueueFactory';
    }

    function check(node, kind) {
      if (!node) return;
      const queues = possibleStrings(node, context);
      if (queues === undefined) {
        if (hasTypes(context)) context.report({ node, messageId: 'unknown', data: { module, verb: VERBS[kind] } });
        return;
      }
      for (const queue of queues) {
        const owner = /^([a-z0-9-]+)\.[^.]/.exec(queue)?.[1];
        if (owner === module) continue;
        context.report({
          node,
          messageId: owner ? 'foreign' : 'unnamed',
          data: { module, verb: VERBS[kind], queue, owner },
        });
      }
    }

    /** @Processor({ name }) and registerQueue({ name }) take an options object. */
    function checkNameOrOptions(arg, kind) {
      if (!arg) return;
      if (arg.type === 'ObjectExpression') {
        const name = arg.properties.find((p) => p.type === 'Property' && !p.computed && (p.key.name ?? p.key.value) === 'name');
        if (name) check(name.value, kind);
        return;
      }
      check(arg, kind);
    }

    return {
      CallExpression(node) {
        const name = nameOf(node.callee);
        const [first] = node.arguments;
        if (name === 'Processor' && node.parent.type === 'Decorator') {
          checkNameOrOptions(first, 'consumer');
        } else if (name === 'InjectQueue' || name === 'getQueueToken') {
          check(first, 'inject');
        } else if (
          (name === 'registerQueue' || name === 'registerQueueAsync') &&
          node.callee.type === 'MemberExpression' &&
          nameOf(node.callee.object) === 'BullModule'
        ) {
          for (const arg of node.arguments) checkNameOrOptions(arg, 'register');
        } else if (name === 'get' && node.callee.type === 'MemberExpression' && isQueueFactory(node.callee.object)) {
          check(first, 'open');
        }
      },
      NewExpression(node) {
        const name = nameOf(node.callee);
        if (name === 'Bull' || name === 'Queue') check(node.arguments[0], 'open');
      },
    };
  },
};
