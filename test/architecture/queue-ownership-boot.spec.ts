import 'reflect-metadata';
import { Injectable, Module, type DynamicModule, type Type } from '@nestjs/common';
import { BullModule, InjectQueue, Process, Processor } from '@nestjs/bull';
import { InjectDataSource } from '@nestjs/typeorm';
import type { Queue } from 'bull';
import type { DataSource } from 'typeorm';
import { Test, type TestingModule } from '@nestjs/testing';
import pino from 'pino';
import { MessagingRegistry, moduleDatabaseImports, moduleMessagingProviders, PlatformModule, type ModuleManifest } from '@app/platform';
import { notificationsDatabase } from '@app/notifications';
import { ordersDatabase } from '@app/orders';
import { usersDatabase } from '@app/users';
import { MODULE_MANIFESTS } from '@app/manifests';
import { DOMAIN_MODULE_CATALOGUE } from '../../apps/api/src/modules';
import { createTestDatabase, deleteRedisPrefix, runId, testConfig } from '../support/test-env';

/**
 * Queue ownership at boot (docs/architecture.md, "Queues"): every Bull queue has one owning
 * module, `<module>.<purpose>`, and only the owner consumes it. The MessagingRegistry
 * claims each inbox consumer's queue and each @nestjs/bull @Processor's queue for the
 * domain module that declares it, and a second or foreign claim stops the boot with a
 * message that names both modules and the queue. The lint rule [boundary/queue-ownership]
 * catches the literal cases earlier; this catches whatever reaches run time.
 */

@Processor('orders.fulfilment')
class FulfilmentProcessor {
  @Process()
  handle(): void {}
}

@Processor('orders.fulfilment')
class NotifyOnFulfilmentProcessor {
  @Process()
  handle(): void {}
}

@Processor('notifications.email')
class EmailProcessor {
  @Process()
  handle(): void {}
}

/** Walks around database isolation: the users connection carries the users role. */
@Injectable()
class CustomerLookup {
  constructor(@InjectDataSource('users') readonly users: DataSource) {}
}

@Injectable()
class SneakyMailer {
  constructor(@InjectQueue('notifications.email') readonly queue: Queue) {}
}

/** Manifests of this test: `orders` declares `orders.fulfilment`, `notifications` its email queue. */
const manifest = (name: string, queues: string[]): ModuleManifest => ({ name, schema: name, mayUse: [], queues, events: { publishes: [], consumes: [] } });
const MANIFESTS = [manifest('users', []), manifest('orders', ['orders.fulfilment']), manifest('notifications', ['notifications.email'])];

/** A Nest module of domain module `module` that runs the given processors. */
function domainModule(name: string, definition: typeof ordersDatabase, processors: Type[], queues: string[]): DynamicModule {
  @Module({})
  class TestDomainModule {}
  Object.defineProperty(TestDomainModule, 'name', { value: name });
  return {
    module: TestDomainModule,
    imports: [...moduleDatabaseImports(definition), BullModule.registerQueue(...queues.map((queue) => ({ name: queue })))],
    providers: [...moduleMessagingProviders({ manifest: MANIFESTS.find((m) => m.name === definition.module)! }), ...processors],
  };
}

describe('Queue ownership at boot', () => {
  let db: string;
  const redisPrefix = `${runId()}:queue-boot`;
  const config = () => testConfig(db, { redisPrefix, env: { MODULES_ENABLED: 'users,orders,notifications' } });

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await deleteRedisPrefix(process.env.TEST_REDIS_URL!, redisPrefix);
  });

  /** Builds the application and runs its start-up; always closes what it opened. */
  async function boot(modules: (DynamicModule | Type)[], inspect?: (app: TestingModule) => void, manifests: readonly ModuleManifest[] = MANIFESTS): Promise<void> {
    const app = await Test.createTestingModule({
      imports: [PlatformModule.forRoot(config(), pino({ level: 'silent' }), manifests), ...modules],
    }).compile();
    try {
      await app.init();
    } catch (error) {
      // Nest's close() re-awaits a failed init and rethrows before releasing anything; the
      // process would exit here, a test must still close its connections and queues.
      Object.assign(app, { initializationPromise: Promise.resolve() });
      await app.close();
      throw error;
    }
    try {
      inspect?.(app);
    } finally {
      await app.close();
    }
  }

  it('Boot_Fails_WhenAModuleConsumesAQueueAnotherModuleOwns', async () => {
    const orders = domainModule('OrdersModule', ordersDatabase, [EmailProcessor], ['notifications.email']);
    await expect(boot([orders])).rejects.toThrow(
      'Queue ownership violated: module "orders" registers a consumer for queue "notifications.email", which is owned by module "notifications"',
    );
  });

  it('Boot_Fails_WhenTwoModulesRegisterConsumersOnOneQueue', async () => {
    const orders = domainModule('OrdersModule', ordersDatabase, [FulfilmentProcessor], ['orders.fulfilment']);
    const notifications = domainModule('NotificationsModule', notificationsDatabase, [NotifyOnFulfilmentProcessor], ['orders.fulfilment']);
    await expect(boot([orders, notifications])).rejects.toThrow(
      'Queue ownership violated: module "notifications" registers a consumer for queue "orders.fulfilment", which is owned by module "orders"',
    );
  });

  it('Boot_Fails_WhenAProcessorBelongsToNoDomainModule', async () => {
    @Module({ imports: [BullModule.registerQueue({ name: 'orders.fulfilment' })], providers: [FulfilmentProcessor] })
    class LooseWorkersModule {}
    await expect(boot([LooseWorkersModule])).rejects.toThrow(
      'Queue ownership unknown: processor FulfilmentProcessor for queue "orders.fulfilment" is declared in LooseWorkersModule, which is no domain module',
    );
  });

  it('Boot_Fails_WhenAModuleConsumesAQueueItsManifestDoesNotDeclare', async () => {
    const orders = domainModule('OrdersModule', ordersDatabase, [FulfilmentProcessor], ['orders.fulfilment']);
    const undeclared = [manifest('users', []), manifest('orders', []), manifest('notifications', [])];
    await expect(boot([orders], undefined, undeclared)).rejects.toThrow(
      'Queue ownership undeclared: module "orders" registers a consumer for queue "orders.fulfilment", which its manifest does not list under queues',
    );
  });

  it('Boot_Fails_WhenAModuleInjectsAnotherModulesDataSource', async () => {
    // Both connections exist (every module's data source is global in Nest): only the check stops it.
    const users = domainModule('UsersModule', usersDatabase, [], []);
    const orders = domainModule('OrdersModule', ordersDatabase, [CustomerLookup], []);
    await expect(boot([users, orders])).rejects.toThrow(
      'Resource ownership violated: CustomerLookup in module "orders" injects "usersDataSource", the database connection of module "users" (a module uses only its own)',
    );
  });

  it('Boot_Fails_WhenAModuleInjectsAnotherModulesQueue', async () => {
    const orders = domainModule('OrdersModule', ordersDatabase, [SneakyMailer], ['notifications.email']);
    await expect(boot([orders])).rejects.toThrow(
      'Queue ownership violated: SneakyMailer in module "orders" injects queue "notifications.email", which is owned by module "notifications"',
    );
  });

  it('Boot_Succeeds_WhenTheOwnerConsumesItsQueue', async () => {
    const orders = domainModule('OrdersModule', ordersDatabase, [FulfilmentProcessor], ['orders.fulfilment']);
    await boot([orders], (app) => {
      expect(app.get(MessagingRegistry).queueOwners.get('orders.fulfilment')).toBe('orders');
    });
  });

  it('Api_Boots_WithEveryQueueConsumedByItsOwner (the modules apps/api composes)', async () => {
    const modules = Object.values(DOMAIN_MODULE_CATALOGUE).map((entry) => entry.module);
    await boot(modules, (app) => {
      const owners = [...app.get(MessagingRegistry).queueOwners];
      expect(owners.length).toBeGreaterThan(0);
      expect(owners.filter(([queue, module]) => !queue.startsWith(`${module}.`))).toEqual([]);
      expect(owners).toEqual(expect.arrayContaining([['notifications.inbox', 'notifications']]));
    }, MODULE_MANIFESTS);
  });
});
