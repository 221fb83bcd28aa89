import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { APP_CONFIG } from '../config/config.module';
import type { AppConfig } from '../config/app-config';
import { AccessTokenSigner, AccessTokenVerifier, InvalidAccessTokenError, type AccessTokenSettings, type Role } from './access-token';
import { parseSigningKey } from './token-keys';
import { IS_PUBLIC, REQUIRED_ROLES, type AuthenticatedRequest } from './auth.decorators';
import { ForbiddenRoleError, UnauthenticatedError } from './auth.errors';
import { SessionRevocationStore } from './session-revocation.store';

/**
 * Global guard: every route needs a valid bearer access token unless marked @Public().
 * Verifies the JWT locally with the public keys only, then checks that its session was not revoked (shared
 * state), then the route's @Roles.
 */
interface RouteAuth {
  isPublic: boolean;
  roles?: Role[];
}

const BEARER = /^Bearer ([A-Za-z0-9_.-]+)$/;
const EARLY_REVOCATION = Symbol('early revocation lookup');

type RequestWithLookahead = AuthenticatedRequest & { [EARLY_REVOCATION]?: { sessionId: string; revoked: Promise<boolean> } };

/**
 * Starts the revocation lookup of the request's bearer token before the token is verified,
 * so its Redis round trip travels with the rate limit's (the shared client pipelines
 * commands issued together) instead of after it. The session id comes from the
 * unverified payload: AuthGuard uses the answer only when it is about the session the
 * verified token names, and looks up again otherwise. Called by the rate-limit guard for
 * routes that need a token.
 */
export function startRevocationLookup(request: AuthenticatedRequest, revocations: SessionRevocationStore): void {
  const header = request.headers.authorization;
  const token = typeof header === 'string' ? BEARER.exec(header)?.[1] : undefined;
  const sessionId = token ? unverifiedSessionId(token) : undefined;
  if (!sessionId) return;
  const revoked = revocations.isRevoked(sessionId);
  // A request refused by the rate limit never reads the answer: its failure is nobody's.
  revoked.catch(() => undefined);
  (request as RequestWithLookahead)[EARLY_REVOCATION] = { sessionId, revoked };
}

/** `sid` of a JWT's payload, without checking anything (a lookup key, never a decision). */
function unverifiedSessionId(token: string): string | undefined {
  const payload = token.split('.')[1];
  if (!payload || payload.length > 4096) return undefined;
  try {
    const sid = (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { sid?: unknown }).sid;
    return typeof sid === 'string' && sid.length <= 64 ? sid : undefined;
  } catch {
    return undefined;
  }
}

@Injectable()
export class AuthGuard implements CanActivate {
  private readonly tokens: AccessTokenVerifier;
  /** Route metadata never changes after boot: read it once per handler, not per request. */
  private readonly routes = new WeakMap<object, RouteAuth>();

  constructor(
    private readonly reflector: Reflector,
    private readonly revocations: SessionRevocationStore,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.tokens = accessTokenVerifierFor(config);
  }

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (context.getType() !== 'http') return true;
    const route = AuthGuard.routeAuth(this.reflector, this.routes, context);
    if (route.isPublic) return true;

    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? BEARER.exec(header) : null;
    if (!match) throw new UnauthenticatedError();
    try {
      request.user = this.tokens.verify(match[1]);
    } catch (error) {
      if (error instanceof InvalidAccessTokenError) throw new UnauthenticatedError('The access token is invalid or expired.');
      throw error;
    }
    const early = (request as RequestWithLookahead)[EARLY_REVOCATION];
    const revoked = early?.sessionId === request.user.sessionId ? early.revoked : this.revocations.isRevoked(request.user.sessionId);
    if (await revoked) {
      throw new UnauthenticatedError('The session has ended; sign in again.');
    }
    if (route.roles && !route.roles.includes(request.user.role)) throw new ForbiddenRoleError();
    return true;
  }

  /** The route's @Public/@Roles, read once per handler into `cache` (shared with the rate-limit guard's lookahead). */
  static routeAuth(reflector: Reflector, cache: WeakMap<object, RouteAuth>, context: ExecutionContext): RouteAuth {
    const handler = context.getHandler();
    let route = cache.get(handler);
    if (!route) {
      const targets = [handler, context.getClass()];
      route = {
        isPublic: reflector.getAllAndOverride<boolean>(IS_PUBLIC, targets) === true,
        roles: reflector.getAllAndOverride<Role[] | undefined>(REQUIRED_ROLES, targets),
      };
      cache.set(handler, route);
    }
    return route;
  }
}

export function accessTokenSettings(config: AppConfig): AccessTokenSettings {
  return { issuer: config.env.JWT_ISSUER, audience: config.env.JWT_AUDIENCE, ttlSeconds: config.env.ACCESS_TOKEN_TTL_S };
}

/** Every process verifies with the platform's public key set (AUTH_PUBLIC_KEYS). */
export function accessTokenVerifierFor(config: AppConfig): AccessTokenVerifier {
  return new AccessTokenVerifier(config.auth.publicKeys, accessTokenSettings(config));
}

/**
 * For the one module that owns sessions: a signer from its own signing-key variable
 * (already validated, or generated for this start, by loadConfig).
 */
export function accessTokenSignerFor(config: AppConfig, signingKey: string | undefined): AccessTokenSigner {
  if (signingKey === undefined) throw new Error('No access-token signing key: is the module that signs tokens enabled in this process?');
  return new AccessTokenSigner(parseSigningKey(signingKey), accessTokenSettings(config));
}
