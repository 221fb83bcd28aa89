import type { Rule } from 'eslint';

declare const queueOwnership: Rule.RuleModule;
export = queueOwnership;
