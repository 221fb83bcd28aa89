import type { ModuleManifest } from '@app/platform';
import { UserEvents } from './contracts';

/**
 * The users module's declarations: read by the event routing of every deployable and by
 * the boundary checks (docs/architecture.md, "Module manifests").
 */
export const usersManifest = {
  name: 'users',
  schema: 'users',
  mayUse: [],
  queues: [],
  events: {
    publishes: [{ type: UserEvents.registered }, { type: UserEvents.deleted }, { type: UserEvents.sessionRevoked }],
    // Its own: every instance pushes a revocation to Redis for the auth guard.
    consumes: [UserEvents.sessionRevoked],
  },
} as const satisfies ModuleManifest;
