import { Type } from '@sinclair/typebox';
import type { ModuleManifest } from '@app/platform';
import { UserEvents } from './contracts';
import { USERS_FLAGS } from './users.flags';

/** An integer variable with its default and bounds. */
const Int = (def: number, min: number, max: number) => Type.Integer({ default: def, minimum: min, maximum: max });

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
  config: Type.Object({
    /** Lifetime of a refresh token (rotated on each use). */
    REFRESH_TOKEN_TTL_S: Int(30 * 86400, 60, 365 * 86400),
    /**
     * Absolute lifetime of a session from its login: no refresh extends it, and no access
     * token of the session expires after it. Then the user signs in again.
     */
    SESSION_MAX_LIFETIME_S: Int(30 * 86400, 1, 365 * 86400),
    /**
     * How long ended sessions (signed out, revoked, or past SESSION_MAX_LIFETIME_S) and
     * expired refresh tokens are kept before retention deletes them: 30d, 36h.
     */
    ENDED_SESSION_RETENTION: Type.String({ pattern: '^[1-9][0-9]*(ms|s|m|h|d)$', default: '30d' }),
    /**
     * The private key (Ed25519 or P-256; PEM or JWK) access tokens are signed with. Only
     * the process that runs this module loads it; its public key goes in AUTH_PUBLIC_KEYS
     * of every process. Required in production; generated per start elsewhere. The
     * marker is the platform's TOKEN_SIGNING_KEY (a manifest imports no platform values).
     */
    USERS_TOKEN_SIGNING_KEY: Type.Optional(Type.String({ minLength: 1, 'x-access-token-signing-key': true })),
    LOGIN_MAX_FAILURES_PER_ACCOUNT: Int(5, 1, 1000),
    LOGIN_MAX_FAILURES_PER_IP: Int(20, 1, 100000),
    LOGIN_FAILURE_WINDOW_S: Int(900, 1, 86400),
    USERS_PROFILE_CACHE_ENABLED: Type.Boolean({ default: true }),
    USERS_PROFILE_CACHE_TTL_S: Int(300, 1, 86400),
  }),
  flags: {
    [USERS_FLAGS.profileCache]: { default: true, description: 'public profile cache (off: every read goes to Postgres; per profile id in a rollout)' },
  },
} as const satisfies ModuleManifest;
