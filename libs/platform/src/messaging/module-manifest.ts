import type { TObject } from '@sinclair/typebox';
import { inboxQueueName } from './integration-event';
import { flagProblems, type FlagDeclaration } from '../flags/flag-declarations';

/** An event type a module writes to its outbox. */
export interface PublishedEvent {
  /** `<module>.<event-name>.v<N>`: the version is part of the type. */
  type: string;
  /**
   * Published for consumers outside this repository too. Only such a type may have no
   * declared consumer here; every other type without one is a declaration error.
   */
  external?: boolean;
}

/**
 * What a domain module declares about itself, once, beside its entry point
 * (`libs/<module>/src/module.manifest.ts`, public as `@app/<module>/manifest`). Every
 * deployable compiles in every module's manifest (`@app/manifests`), so the outbox relay
 * routes an event to its consumers' inbox queues whether or not they run in this process:
 * routing is code, never state in Redis (docs/architecture.md, "Events and routing").
 */
export interface ModuleManifest {
  name: string;
  /** Postgres schema (and role suffix) the module owns. */
  schema: string;
  /** Modules whose contracts this one may import (the boundary rulebook reads the same). */
  mayUse: readonly string[];
  /** Bull queues the module owns and alone consumes; its inbox queue is implied. */
  queues: readonly string[];
  events: {
    publishes: readonly PublishedEvent[];
    /** Every event type (with its version) this module's inbox consumer handles. */
    consumes: readonly string[];
  };
  /**
   * The module's own environment variables (TypeBox, with defaults), validated at boot by
   * loadConfig and read with `moduleConfig(config, manifest)`. Names must not clash with
   * the platform's or another module's.
   */
  config?: TObject;
  /**
   * Runtime flags the module reads (`Flags.isEnabled`), keyed `<module>.<purpose>`: the
   * only keys `npm run cli -- flags:set` accepts (docs/architecture.md, "Feature flags").
   */
  flags?: Readonly<Record<string, FlagDeclaration>>;
}

/**
 * Queue that receives a module's events marked `external`: consumers outside this
 * repository read it. Owned by the producer; nothing here consumes it.
 */
export function externalQueueName(module: string): string {
  return `${module}.external`;
}

/** Every queue a module owns: its inbox first, then the ones it declares. */
export function ownedQueues(manifest: ModuleManifest): string[] {
  const external = manifest.events.publishes.some((e) => e.external) ? [externalQueueName(manifest.name)] : [];
  return [inboxQueueName(manifest.name), ...external, ...manifest.queues];
}

/**
 * Declaration errors across all manifests, as sentences naming the event type and the
 * module: a test fails on any of them (test/architecture/event-declarations.spec.ts) and
 * every process logs them at boot.
 */
export function manifestProblems(manifests: readonly ModuleManifest[]): string[] {
  const problems: string[] = [];
  const producers = new Map<string, string>();
  const names = new Set(manifests.map((m) => m.name));
  for (const manifest of manifests) {
    for (const { type } of manifest.events.publishes) {
      if (!type.startsWith(`${manifest.name}.`) || !/\.v[1-9][0-9]*$/.test(type)) {
        problems.push(`event type "${type}" published by module "${manifest.name}" must be named "${manifest.name}.<event-name>.v<N>"`);
      }
      const other = producers.get(type);
      if (other) problems.push(`event type "${type}" is published by both "${other}" and "${manifest.name}"`);
      producers.set(type, manifest.name);
    }
    for (const queue of manifest.queues) {
      if (!queue.startsWith(`${manifest.name}.`)) problems.push(`queue "${queue}" declared by module "${manifest.name}" must be named "${manifest.name}.<purpose>"`);
    }
    problems.push(...flagProblems(manifest));
    for (const used of manifest.mayUse) {
      if (!names.has(used)) problems.push(`module "${manifest.name}" may use "${used}", which has no manifest`);
    }
  }
  const consumed = new Set<string>();
  for (const manifest of manifests) {
    for (const type of manifest.events.consumes) {
      consumed.add(type);
      const producer = producers.get(type);
      if (!producer) {
        problems.push(`event type "${type}" consumed by module "${manifest.name}" is published by no module`);
      } else if (producer !== manifest.name && !manifest.mayUse.includes(producer)) {
        problems.push(`module "${manifest.name}" consumes "${type}" but may not use module "${producer}" (add it to mayUse)`);
      }
    }
  }
  for (const manifest of manifests) {
    for (const { type, external } of manifest.events.publishes) {
      if (!consumed.has(type) && !external) {
        problems.push(
          `event type "${type}" published by module "${manifest.name}" has no declared consumer: declare one, or mark it { external: true } if it is published for consumers outside this repository`,
        );
      }
    }
  }
  return problems;
}

/**
 * Where each event type goes: the inbox queue of every module that declares it consumes
 * the type, plus the producer's external queue for types marked `external`. Built from
 * the manifests alone, so it is the same in every process.
 */
export class EventRouting {
  private readonly routes = new Map<string, string[]>();
  private readonly published = new Map<string, Set<string>>();
  /** Queue → owning module, from every manifest. */
  private readonly owners = new Map<string, string>();
  readonly manifests: readonly ModuleManifest[];

  constructor(manifests: readonly ModuleManifest[]) {
    this.manifests = manifests;
    for (const manifest of manifests) {
      this.published.set(manifest.name, new Set(manifest.events.publishes.map((e) => e.type)));
      for (const { type, external } of manifest.events.publishes) {
        if (external) this.routes.set(type, [...(this.routes.get(type) ?? []), externalQueueName(manifest.name)]);
      }
      for (const type of manifest.events.consumes) {
        this.routes.set(type, [...(this.routes.get(type) ?? []), inboxQueueName(manifest.name)]);
      }
    }
    for (const [type, queues] of this.routes) this.routes.set(type, [...new Set(queues)].sort());
    for (const manifest of manifests) for (const queue of ownedQueues(manifest)) this.owners.set(queue, manifest.name);
  }

  manifest(module: string): ModuleManifest {
    const found = this.manifests.find((m) => m.name === module);
    if (!found) throw new Error(`No manifest for module "${module}"`);
    return found;
  }

  /** The inbox queues an event of this type goes to (empty: unroutable). */
  queuesFor(type: string): readonly string[] {
    return this.routes.get(type) ?? [];
  }

  /** The types a producer declares that have at least one consumer: what its relay claims. */
  routableTypes(producer: string): string[] {
    return [...(this.published.get(producer) ?? [])].filter((type) => this.queuesFor(type).length > 0).sort();
  }

  isPublishedBy(producer: string, type: string): boolean {
    return this.published.get(producer)?.has(type) ?? false;
  }

  /** Every queue of every module, with its owner (Bull Board, queue metrics, ownership). */
  allQueues(): { queue: string; module: string }[] {
    return [...this.owners].map(([queue, module]) => ({ queue, module }));
  }

  /** The module whose manifest declares `queue` (its inbox included), if any. */
  ownerOf(queue: string): string | undefined {
    return this.owners.get(queue);
  }
}
