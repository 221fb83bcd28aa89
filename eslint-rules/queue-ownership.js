'use strict';
/**
 * [boundary/queue-ownership]: every Bull queue is named `<module>.<purpose>` and only the
 * module under libs/<module>/ registers, injects or opens it (docs/architecture.md, "Queues").
 * The platform is exempt: its outbox relay produces into every module's inbox.
 *
 * Seen by this rule: @Processor('q') / @Processor({ name: 'q' }), @InjectQueue('q'),
 * getQueueToken('q'), BullModule.registerQueue({ name: 'q' }, ...) (and ...Async),
 * new Bull('q') / new Queue('q'), and <something named like a queue factory>.get('q').
 * A queue name may be a string literal, a template literal, a `const` declared in the same
 * file (also a property of a const object, `as const` or not) or inboxQueueName('<module>').
 * A name imported from another file cannot be resolved without type information and is
 * left to the boot-time check in the platform's MessagingRegistry.
 *
 * Loaded with `eslint --rulesdir eslint-rules` (legacy eslintrc mode); options:
 * `{ exempt: ['platform'] }`, the libs whose files may touch any queue.
 */
const path = require('node:path');

const VERBS = {
  consumer: 'registers a consumer for',
  inject: 'injects',
  register: 'registers',
  open: 'opens',
};
const QUEUE_FACTORY = /queue/i;

/** The string a node evaluates to, when it can be known from this file alone. */
function staticString(node, scope, sourceCode, depth = 0) {
  if (!node || depth > 8) return undefined;
  switch (node.type) {
    case 'Literal':
      return typeof node.value === 'string' ? node.value : undefined;
    case 'TemplateLiteral': {
      let out = node.quasis[0].value.cooked;
      for (let i = 0; i < node.expressions.length; i++) {
        const part = staticString(node.expressions[i], scope, sourceCode, depth + 1);
        if (part === undefined) return undefined;
        out += part + node.quasis[i + 1].value.cooked;
      }
      return out;
    }
    case 'TSAsExpression':
    case 'TSSatisfiesExpression':
    case 'TSNonNullExpression':
    case 'TSTypeAssertion':
      return staticString(node.expression, scope, sourceCode, depth + 1);
    case 'Identifier':
      return staticString(constInit(node.name, scope), scope, sourceCode, depth + 1);
    case 'MemberExpression': {
      const object = unwrap(node.object.type === 'Identifier' ? constInit(node.object.name, scope) : node.object);
      if (!object || object.type !== 'ObjectExpression') return undefined;
      const key = node.computed ? staticString(node.property, scope, sourceCode, depth + 1) : node.property.name;
      const property = object.properties.find(
        (p) => p.type === 'Property' && !p.computed && (p.key.name ?? p.key.value) === key,
      );
      return property ? staticString(property.value, scope, sourceCode, depth + 1) : undefined;
    }
    case 'CallExpression':
      // The platform's helper for inbox queues: inboxQueueName('orders') === 'orders.inbox'.
      if (node.callee.type === 'Identifier' && node.callee.name === 'inboxQueueName' && node.arguments.length === 1) {
        const module = staticString(node.arguments[0], scope, sourceCode, depth + 1);
        return module === undefined ? undefined : `${module}.inbox`;
      }
      return undefined;
    default:
      return undefined;
  }
}

function unwrap(node) {
  while (node && ['TSAsExpression', 'TSSatisfiesExpression', 'TSNonNullExpression', 'TSTypeAssertion'].includes(node.type)) {
    node = node.expression;
  }
  return node;
}

/** The initialiser of the `const` that `name` refers to from `scope`, if any. */
function constInit(name, scope) {
  for (let s = scope; s; s = s.upper) {
    const variable = s.set.get(name);
    if (!variable) continue;
    const def = variable.defs[0];
    if (def && def.type === 'Variable' && def.parent.kind === 'const' && def.node.id.type === 'Identifier') {
      return def.node.init;
    }
    return undefined;
  }
  return undefined;
}

function calleeName(callee) {
  if (callee.type === 'Identifier') return callee.name;
  if (callee.type === 'MemberExpression' && !callee.computed) return callee.property.name;
  return undefined;
}

function objectName(node) {
  if (node.type === 'Identifier') return node.name;
  if (node.type === 'MemberExpression' && !node.computed) return node.property.name;
  return undefined;
}

/** `libs/<module>` for a file inside a lib, relative to the lint's working directory. */
function libOf(context) {
  const filename = context.filename ?? context.getFilename();
  const cwd = context.cwd ?? context.getCwd();
  const relative = (path.isAbsolute(filename) ? path.relative(cwd, filename) : filename).split(path.sep).join('/');
  return /^libs\/([^/]+)\//.exec(relative)?.[1];
}

/** @type {import('eslint').Rule.RuleModule} */
module.exports = {
  meta: {
    type: 'problem',
    docs: { description: 'A Bull queue is registered, injected, opened or consumed only by the module that owns it' },
    schema: [
      {
        type: 'object',
        properties: { exempt: { type: 'array', items: { type: 'string' }, uniqueItems: true } },
        additionalProperties: false,
      },
    ],
    messages: {
      foreign: '[boundary/queue-ownership] libs/{{module}} {{verb}} queue "{{queue}}", owned by {{owner}}',
      unnamed: '[boundary/queue-ownership] libs/{{module}} {{verb}} queue "{{queue}}", which is not named <module>.<purpose>',
    },
  },

  create(context) {
    const module = libOf(context);
    const exempt = context.options[0]?.exempt ?? ['platform'];
    if (!module || exempt.includes(module)) return {};
    const sourceCode = context.sourceCode ?? context.getSourceCode();

    function check(node, kind) {
      const queue = staticString(node, sourceCode.getScope(node), sourceCode);
      if (queue === undefined) return;
      const owner = /^([a-z0-9-]+)\.[^.]/.exec(queue)?.[1];
      if (owner === module) return;
      context.report({
        node,
        messageId: owner ? 'foreign' : 'unnamed',
        data: { module, verb: VERBS[kind], queue, owner },
      });
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
        const name = calleeName(node.callee);
        const [first] = node.arguments;
        if (name === 'Processor' && node.parent.type === 'Decorator') {
          checkNameOrOptions(first, 'consumer');
        } else if (name === 'InjectQueue' || name === 'getQueueToken') {
          check(first, 'inject');
        } else if (
          (name === 'registerQueue' || name === 'registerQueueAsync') &&
          node.callee.type === 'MemberExpression' &&
          objectName(node.callee.object) === 'BullModule'
        ) {
          for (const arg of node.arguments) checkNameOrOptions(arg, 'register');
        } else if (
          name === 'get' &&
          node.callee.type === 'MemberExpression' &&
          QUEUE_FACTORY.test(objectName(node.callee.object) ?? '')
        ) {
          check(first, 'open');
        }
      },
      NewExpression(node) {
        const name = calleeName(node.callee);
        if (name === 'Bull' || name === 'Queue') check(node.arguments[0], 'open');
      },
    };
  },
};
