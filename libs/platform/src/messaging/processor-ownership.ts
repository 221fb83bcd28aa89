import type { Type } from '@nestjs/common';
import type { ModulesContainer } from '@nestjs/core';

/**
 * Injection token whose value is the domain module (`users`, `orders`, ...) a Nest module
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
