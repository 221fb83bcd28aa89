'use strict';
/**
 * What the repository's own lint rules need to know about a name (a queue, a data source):
 * the string(s) an expression evaluates to. From the file alone when it can be (literals,
 * templates, same-file consts and const objects, inboxQueueName('<module>')); otherwise
 * from TypeScript's type of the expression when the lint has type information (a
 * constant imported from another file, `as const` objects, unions of literals). Not a
 * rule: ESLint's --rulesdir loads only the top-level files of eslint-rules/.
 */

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

/**
 * Every string the expression may evaluate to, or undefined when unknown: the file-local
 * value first, then the literal type(s) TypeScript gives it (`'a' | 'b'` → both).
 */
function possibleStrings(node, context) {
  if (!node) return undefined;
  const sourceCode = context.sourceCode ?? context.getSourceCode();
  const local = staticString(node, sourceCode.getScope(node), sourceCode);
  if (local !== undefined) return [local];
  const services = sourceCode.parserServices;
  if (!hasTypes(context)) return undefined;
  const checker = services.program.getTypeChecker();
  const type = checker.getTypeAtLocation(services.esTreeNodeToTSNodeMap.get(node));
  const parts = type.isUnion() ? type.types : [type];
  if (parts.every((t) => t.isStringLiteral())) return parts.map((t) => t.value);
  return undefined;
}

/** Whether this lint run has TypeScript type information (parserOptions.project). */
function hasTypes(context) {
  const services = (context.sourceCode ?? context.getSourceCode()).parserServices;
  return Boolean(services?.program && services.esTreeNodeToTSNodeMap);
}

module.exports = { staticString, possibleStrings, hasTypes };
