import {
  ErrorCode,
  OpenFeatureEventEmitter,
  ProviderEvents,
  type EvaluationContext,
  type JsonValue,
  type Provider,
  type ResolutionDetails,
} from '@openfeature/server-sdk';
import { evaluateFlag } from './flag-rules';
import type { FlagDeclarations } from './flag-declarations';
import type { FlagStore } from './flag-store';

/**
 * OpenFeature provider over `platform.flags` (through this instance's FlagStore copy).
 * Boolean flags only: a flag is on, off, or on for a percentage of users (the evaluation
 * context's `targetingKey` is the user id) plus named users. An undeclared key resolves to
 * the caller's default with FLAG_NOT_FOUND.
 */
export class PostgresFlagProvider implements Provider {
  readonly metadata = { name: 'postgres-flags' } as const;
  readonly runsOn = 'server' as const;
  readonly events = new OpenFeatureEventEmitter();

  constructor(
    private readonly store: FlagStore,
    private readonly declarations: FlagDeclarations,
  ) {}

  /** Tells OpenFeature clients (and their handlers) which flags changed. */
  changed(keys: string[]): void {
    this.events.emit(ProviderEvents.ConfigurationChanged, { flagsChanged: keys });
  }

  async resolveBooleanEvaluation(key: string, defaultValue: boolean, context: EvaluationContext): Promise<ResolutionDetails<boolean>> {
    const declared = this.declarations.get(key);
    if (!declared) {
      return { value: defaultValue, reason: 'ERROR', errorCode: ErrorCode.FLAG_NOT_FOUND, errorMessage: `flag "${key}" is declared by no module manifest` };
    }
    const userId = typeof context.targetingKey === 'string' && context.targetingKey !== '' ? context.targetingKey : undefined;
    const { value, reason } = evaluateFlag(this.store.get(key), declared.default, userId);
    return { value, reason, variant: value ? 'on' : 'off' };
  }

  resolveStringEvaluation(key: string, defaultValue: string): Promise<ResolutionDetails<string>> {
    return Promise.resolve(typeMismatch(key, defaultValue));
  }

  resolveNumberEvaluation(key: string, defaultValue: number): Promise<ResolutionDetails<number>> {
    return Promise.resolve(typeMismatch(key, defaultValue));
  }

  resolveObjectEvaluation<T extends JsonValue>(key: string, defaultValue: T): Promise<ResolutionDetails<T>> {
    return Promise.resolve(typeMismatch(key, defaultValue));
  }
}

function typeMismatch<T>(key: string, value: T): ResolutionDetails<T> {
  return { value, reason: 'ERROR', errorCode: ErrorCode.TYPE_MISMATCH, errorMessage: `flag "${key}" is boolean` };
}
