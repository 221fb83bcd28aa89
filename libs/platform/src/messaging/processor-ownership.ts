import type { Type } from '@nestjs/common';
import type { ModulesContainer } from '@nestjs/core';

/**
 * Injection token whose value is the domain module (its manifest's name) a Nest module
 * belongs to. moduleMessagingProviders() provides it, so every domain module carries it.
 */
export const OWNING_DOMAIN_MODULE = Symbol('OWNING_DOMAIN_MODULE');

// Where @nestjs/bull's @Processor() keeps its options (not exported by the package).
const BULL_PROCESSOR_METADATA = 'bull:module_queue';
const DEFAULT_QUEUE = 'default';

export interface ProcessorClaim {
  queue: string;
  processor: string;
  /** The Nest module that declares the processor. */
  host: string;
  /** Its domain module, or undefined when it belongs to none. */
  module?: string;
}

/**
 * Every @Processor class of the application with the queue it consumes and the domain
 * module that declares it, for the MessagingRegistry to claim at boot: a module-owned
 * @nestjs/bull processor is held to the same queue ownership as an inbox consumer.
 */
export function findProcessorClaims(modules: ModulesContainer): ProcessorClaim[] {
  const claims: ProcessorClaim[] = [];
  for (const host of modules.values()) {
    const owner = host.providers.get(OWNING_DOMAIN_MODULE)?.instance as string | undefined;
    for (const wrapper of host.providers.values()) {
      // As @nestjs/bull's explorer does: value and factory providers carry no metatype.
      const type = (!wrapper.metatype || wrapper.inject ? (wrapper.instance as object | undefined)?.constructor : wrapper.metatype) as
        | Type
        | undefined;
      const options = type ? (Reflect.getMetadata(BULL_PROCESSOR_METADATA, type) as { name?: string } | undefined) : undefined;
      if (!options) continue;
      claims.push({ queue: options.name ?? DEFAULT_QUEUE, processor: type!.name, host: host.metatype.name, module: owner });
    }
  }
  return claims;
}

export interface InjectionClaim {
  /** What is injected: a DataSource, EntityManager, repository or queue token. */
  token: string;
  /** The class (or factory provider) that injects it. */
  consumer: string;
  host: string;
  module: string;
}

/**
 * Every string injection token that classes and factories of domain modules ask for
 * (constructor parameters, properties, factory `inject` lists), for the MessagingRegistry
 * to hold against the module's own resources: every module's connection is registered
 * globally, so nothing else stops `@InjectDataSource('<other module>')` inside a module.
 */
export function findInjectionClaims(modules: ModulesContainer): InjectionClaim[] {
  const claims: InjectionClaim[] = [];
  for (const host of modules.values()) {
    const owner = host.providers.get(OWNING_DOMAIN_MODULE)?.instance as string | undefined;
    if (!owner) continue;
    for (const wrapper of [...host.providers.values(), ...host.controllers.values()]) {
      const tokens: unknown[] = [];
      if (wrapper.inject) {
        tokens.push(...wrapper.inject.map((entry) => (typeof entry === 'object' && entry && 'token' in entry ? entry.token : entry)));
      } else if (wrapper.metatype) {
        const params = (Reflect.getMetadata('self:paramtypes', wrapper.metatype) ?? []) as { param: unknown }[];
        const properties = (Reflect.getMetadata('self:properties_metadata', wrapper.metatype) ?? []) as { type: unknown }[];
        tokens.push(...params.map((p) => p.param), ...properties.map((p) => p.type));
      }
      const consumer = wrapper.metatype?.name || String(wrapper.token);
      for (const token of tokens) {
        if (typeof token === 'string') claims.push({ token, consumer, host: host.metatype.name, module: owner });
      }
    }
  }
  return claims;
}
