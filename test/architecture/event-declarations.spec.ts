import { MODULE_MANIFESTS } from '@app/manifests';
import { EventRouting, manifestProblems, type ModuleManifest } from '@app/platform';

/**
 * Event routing is declared in the module manifests (docs/architecture.md, "Events and
 * routing"). A declaration error is found here, before it ships: an event type nobody
 * consumes would otherwise sit unrouted in its producer's outbox.
 */
describe('Event declarations in the module manifests', () => {
  const manifest = (name: string, events: ModuleManifest['events'], mayUse: string[] = []): ModuleManifest =>
    ({ name, schema: name, mayUse, queues: [], events });

  it('Manifests_HaveNoDeclarationErrors (every published type has a consumer or is external)', () => {
    expect(manifestProblems(MODULE_MANIFESTS)).toEqual([]);
  });

  it('Routing_SendsEveryOrderAndUserEvent_ToTheInboxesThatDeclareIt', () => {
    const routing = new EventRouting(MODULE_MANIFESTS);
    expect(routing.queuesFor('users.user-deleted.v1')).toEqual(['notifications.inbox', 'orders.inbox']);
    expect(routing.queuesFor('users.user-registered.v1')).toEqual(['notifications.inbox']);
    expect(routing.queuesFor('orders.order-placed.v1')).toEqual(['notifications.inbox']);
    expect(routing.queuesFor('users.session-revoked.v1')).toEqual(['users.inbox']);
    expect(routing.routableTypes('notifications')).toEqual([]);
  });

  it('AnEventTypeWithNoConsumer_FailsNamingTheTypeAndItsProducer', () => {
    const manifests = [
      manifest('users', { publishes: [{ type: 'users.user-registered.v1' }, { type: 'users.user-renamed.v1' }], consumes: [] }),
      manifest('notifications', { publishes: [], consumes: ['users.user-registered.v1'] }, ['users']),
    ];
    expect(manifestProblems(manifests)).toEqual([
      expect.stringContaining('event type "users.user-renamed.v1" published by module "users" has no declared consumer'),
    ]);
    // And at run time it is not routable: the relay leaves such rows in the outbox.
    expect(new EventRouting(manifests).routableTypes('users')).toEqual(['users.user-registered.v1']);
  });

  it('AnEventMarkedExternal_NeedsNoConsumerHere_AndGoesToTheProducersExternalQueue', () => {
    const manifests = [manifest('users', { publishes: [{ type: 'users.user-renamed.v1', external: true }], consumes: [] })];
    expect(manifestProblems(manifests)).toEqual([]);
    expect(new EventRouting(manifests).queuesFor('users.user-renamed.v1')).toEqual(['users.external']);
  });

  it('AConsumedTypeNobodyPublishes_Fails (a renamed or retired version)', () => {
    const manifests = [
      manifest('users', { publishes: [{ type: 'users.user-registered.v2' }], consumes: [] }),
      manifest('notifications', { publishes: [], consumes: ['users.user-registered.v1', 'users.user-registered.v2'] }, ['users']),
    ];
    expect(manifestProblems(manifests)).toEqual([
      'event type "users.user-registered.v1" consumed by module "notifications" is published by no module',
    ]);
  });

  it('AQueueNotNamedAfterItsModule_Fails (so no two modules can declare one queue)', () => {
    const manifests = [{ ...manifest('orders', { publishes: [], consumes: [] }), queues: ['notifications.email'] }];
    expect(manifestProblems(manifests)).toEqual(['queue "notifications.email" declared by module "orders" must be named "orders.<purpose>"']);
  });

  it('ConsumingFromAModuleNotInMayUse_Fails', () => {
    const manifests = [
      manifest('orders', { publishes: [{ type: 'orders.order-placed.v1' }], consumes: [] }),
      manifest('users', { publishes: [], consumes: ['orders.order-placed.v1'] }),
    ];
    expect(manifestProblems(manifests)).toEqual([
      'module "users" consumes "orders.order-placed.v1" but may not use module "orders" (add it to mayUse)',
    ]);
  });

  it('ATypeNotNamedAfterItsProducerOrWithoutAVersion_Fails', () => {
    const manifests = [
      manifest('users', { publishes: [{ type: 'orders.order-placed.v1', external: true }, { type: 'users.user-registered', external: true }], consumes: [] }),
    ];
    expect(manifestProblems(manifests)).toEqual([
      expect.stringContaining('"orders.order-placed.v1" published by module "users" must be named "users.<event-name>.v<N>"'),
      expect.stringContaining('"users.user-registered" published by module "users" must be named'),
    ]);
  });

  it('EveryModuleManifest_DeclaresTheQueuesItsCodeOpens (its inbox is implied)', () => {
    const routing = new EventRouting(MODULE_MANIFESTS);
    const queues = routing.allQueues().map((q) => q.queue);
    expect(queues).toEqual(expect.arrayContaining([
      'notifications.email', 'notifications.inbox', 'notifications.retention', 'notifications.webhook',
      'orders.expiry', 'orders.inbox', 'users.inbox',
    ]));
    // Every module has its inbox, and each queue is named after its owner.
    for (const { queue, module } of routing.allQueues()) expect(queue.startsWith(`${module}.`)).toBe(true);
    expect(new Set(queues).size).toBe(queues.length);
    for (const manifest of MODULE_MANIFESTS) expect(queues).toContain(`${manifest.name}.inbox`);
  });
});
