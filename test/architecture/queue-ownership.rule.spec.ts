import path from 'node:path';
import { RuleTester } from 'eslint';
import * as tsParser from '@typescript-eslint/parser';
import queueOwnership from '../../eslint-rules/queue-ownership';

/**
 * The custom rule behind [boundary/queue-ownership] (eslint-rules/queue-ownership.js): only
 * the module that owns a queue (`<module>.<purpose>`) registers, injects, opens or consumes
 * it; the platform may touch any queue. RuleTester registers one jest test per case.
 */
const tester = new RuleTester({
  languageOptions: { parser: tsParser, ecmaVersion: 2022, sourceType: 'module' },
});

const ordersFile = 'libs/orders/src/consumers/email.processor.ts';
const message = (verb: string, queue: string, owner: string, module = 'orders') =>
  `[boundary/queue-ownership] libs/${module} ${verb} queue "${queue}", owned by ${owner}`;

tester.run('queue-ownership', queueOwnership, {
  valid: [
    {
      name: 'the owner registers a processor for its own queue',
      filename: ordersFile,
      code: `@Processor('orders.fulfilment') export class FulfilmentProcessor {}`,
    },
    {
      name: 'the owner uses the options form and a const queue name',
      filename: ordersFile,
      code: `const QUEUE = 'orders.fulfilment';
        @Processor({ name: QUEUE }) export class FulfilmentProcessor {}
        export const queues = BullModule.registerQueue({ name: QUEUE });`,
    },
    {
      name: 'the owner injects its queue through a const object of queue names',
      filename: ordersFile,
      code: `const QUEUES = { fulfilment: 'orders.fulfilment' } as const;
        export class Scheduler { constructor(@InjectQueue(QUEUES.fulfilment) readonly queue: unknown) {} }`,
    },
    {
      name: 'the owner opens its own inbox through the platform helper',
      filename: ordersFile,
      code: `export const open = (queues: Factory) => queues.get(inboxQueueName('orders'));`,
    },
    {
      name: 'the platform produces into any module inbox',
      filename: 'libs/platform/src/messaging/outbox.relay.ts',
      code: `export const open = (queues: Factory) => queues.get('notifications.inbox');`,
    },
    {
      name: 'the exempt list comes from the rule options',
      filename: 'libs/relay/src/relay.ts',
      options: [{ exempt: ['relay'] }],
      code: `export const open = (queueFactory: Factory) => queueFactory.get('orders.inbox');`,
    },
    {
      name: 'files outside libs/ are not module code',
      filename: 'test/integration/outbox-inbox.spec.ts',
      code: `@Processor('notifications.email') class TestProcessor {}`,
    },
    {
      name: 'a queue name only known at run time is left to the boot-time check',
      filename: ordersFile,
      code: `import { EMAIL_QUEUE } from './queues'; @Processor(EMAIL_QUEUE) export class P {}`,
    },
    {
      name: 'a .get() on something that is not a queue factory is not a queue',
      filename: ordersFile,
      code: `export const read = (config: Map<string, string>) => config.get('notifications.email');`,
    },
    {
      name: '@Process names a job, not a queue',
      filename: ordersFile,
      code: `@Processor('orders.fulfilment') export class P { @Process('notifications.email') handle() {} }`,
    },
  ],
  invalid: [
    {
      name: 'a module registers a processor for a queue another module owns',
      filename: ordersFile,
      code: `@Processor('notifications.email') export class EmailProcessor {}`,
      errors: [{ message: message('registers a consumer for', 'notifications.email', 'notifications') }],
    },
    {
      name: 'the options form of @Processor, with a const name',
      filename: ordersFile,
      code: `const EMAIL = 'notifications.email'; @Processor({ name: EMAIL }) export class EmailProcessor {}`,
      errors: [{ message: message('registers a consumer for', 'notifications.email', 'notifications') }],
    },
    {
      name: 'a module injects a queue another module owns',
      filename: 'libs/users/src/application/register-user.service.ts',
      code: `export class RegisterUser { constructor(@InjectQueue('notifications.email') readonly q: unknown) {} }`,
      errors: [{ message: message('injects', 'notifications.email', 'notifications', 'users') }],
    },
    {
      name: 'a module injects by token a queue another module owns',
      filename: ordersFile,
      code: `export class P { constructor(@Inject(getQueueToken('users.cleanup')) readonly q: unknown) {} }`,
      errors: [{ message: message('injects', 'users.cleanup', 'users') }],
    },
    {
      name: 'a module registers with Bull, among its own, a queue another module owns',
      filename: 'libs/orders/src/orders.module.ts',
      code: `const QUEUES = { own: 'orders.fulfilment', foreign: 'users.cleanup' };
        export const imports = [BullModule.registerQueue({ name: QUEUES.own }, { name: QUEUES.foreign })];`,
      errors: [{ message: message('registers', 'users.cleanup', 'users') }],
    },
    {
      name: 'a module opens another module inbox through the queue factory',
      filename: 'libs/notifications/src/consumers/replay.ts',
      code: `export const replay = (queues: Factory) => queues.get(inboxQueueName('orders'));`,
      errors: [{ message: message('opens', 'orders.inbox', 'orders', 'notifications') }],
    },
    {
      name: 'a module opens a Bull queue by hand, named by a template literal',
      filename: ordersFile,
      code: 'const MODULE = `users`; export const q = new Bull(`${MODULE}.cleanup`);',
      errors: [{ message: message('opens', 'users.cleanup', 'users') }],
    },
    {
      name: 'an absolute file name is read relative to the working directory',
      filename: `${process.cwd()}/libs/orders/src/consumers/email.processor.ts`,
      code: `@Processor('notifications.email') export class EmailProcessor {}`,
      errors: [{ message: message('registers a consumer for', 'notifications.email', 'notifications') }],
    },
    {
      name: 'a queue not named <module>.<purpose> has no owner at all',
      filename: ordersFile,
      code: `@Processor('email') export class EmailProcessor {}`,
      errors: [{ message: '[boundary/queue-ownership] libs/orders registers a consumer for queue "email", which is not named <module>.<purpose>' }],
    },
  ],
});

/**
 * With type information (as `npm run lint` runs), a queue name imported from another file
 * is checked too: its literal type says which queue it is. A name typed plain `string`
 * would escape the rule, so it is a finding of its own. The typed fixture tree mirrors the
 * repository's layout (fixtures/typed/libs/<module>/...).
 */
const TYPED = path.join(__dirname, 'fixtures/typed');
const typedTester = new RuleTester({
  languageOptions: {
    parser: tsParser,
    ecmaVersion: 2022,
    sourceType: 'module',
    parserOptions: {
      project: './tsconfig.json',
      tsconfigRootDir: TYPED,
      // With CI=true typescript-eslint infers a "single run" and builds its program once from
      // the files on disk, so the inline code of each case would be typed as the stand-in
      // file's text. The cases differ from the disk, so keep the program in step with them.
      disallowAutomaticSingleRunInference: true,
    },
  },
});
const usersFile = path.join(TYPED, 'libs/users/src/welcome-mail.ts');
const imports = `import { NOTIFICATIONS_QUEUES, LOOSE_QUEUE_NAME, QueueFactory, type NotificationsQueue } from '../../notifications/src/notifications.queues';
  declare function InjectQueue(name: string): ParameterDecorator;`;

typedTester.run('queue-ownership (typed: imported names)', queueOwnership, {
  valid: [
    {
      name: 'a Map named like a queue is not a queue factory once types are known',
      filename: usersFile,
      code: `${imports}
        const byQueue = new Map<string, number>(); export const n = byQueue.get(LOOSE_QUEUE_NAME);`,
    },
  ],
  invalid: [
    {
      name: 'a foreign queue injected through an imported const object',
      filename: usersFile,
      code: `${imports}
        export class WelcomeMail { constructor(@InjectQueue(NOTIFICATIONS_QUEUES.email) readonly queue: unknown) {} }`,
      errors: [{ message: message('injects', 'notifications.email', 'notifications', 'users') }],
    },
    {
      name: 'a foreign queue opened through the queue factory with a union of imported names',
      filename: usersFile,
      code: `${imports}
        export const open = (queues: QueueFactory, name: NotificationsQueue) => queues.get(name);`,
      errors: [
        { message: message('opens', 'notifications.email', 'notifications', 'users') },
        { message: message('opens', 'notifications.webhook', 'notifications', 'users') },
      ],
    },
    {
      name: 'a queue name typed plain string cannot be checked, so it is refused',
      filename: usersFile,
      code: `${imports}
        export class WelcomeMail { constructor(@InjectQueue(LOOSE_QUEUE_NAME) readonly queue: unknown) {} }`,
      errors: [{ message: '[boundary/queue-ownership] libs/users injects a queue whose name is not a known string (type it as a literal, e.g. with `as const`)' }],
    },
  ],
});
