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
    const route = this.routeAuth(context);
    if (route.isPublic) return true;

    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer ([A-Za-z0-9_.-]+)$/.exec(header) : null;
    if (!match) throw new UnauthenticatedError();
    try {
      request.user = this.tokens.verify(match[1]);
    } catch (error) {
      if (error instanceof InvalidAccessTokenError) throw new UnauthenticatedError('The access token is invalid or expired.');
      throw error;
    }
    if (await this.revocations.isRevoked(request.user.sessionId)) {
      throw new UnauthenticatedError('The session has ended; sign in again.');
    }
    if (route.roles && !route.roles.includes(request.user.role)) throw new ForbiddenRoleError();
    return true;
  }

  private routeAuth(context: ExecutionContext): RouteAuth {
    const handler = context.getHandler();
    let route = this.routes.get(handler);
    if (!route) {
      const targets = [handler, context.getClass()];
      route = {
        isPublic: this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, targets) === true,
        roles: this.reflector.getAllAndOverride<Role[] | undefined>(REQUIRED_ROLES, targets),
      };
      this.routes.set(handler, route);
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
