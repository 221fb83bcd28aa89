import { applyDecorators, createParamDecorator, SetMetadata, type ExecutionContext } from '@nestjs/common';
import { ApiExtension } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import type { AuthenticatedUser, Role } from './access-token';

export const IS_PUBLIC = 'auth:public';
export const REQUIRED_ROLES = 'auth:roles';

/*
 * The OpenAPI marks below are read (and removed) by openapi-document.ts, which derives each
 * operation's `security`, 401 and 403 from them: the document follows the guard.
 */
export const OPENAPI_PUBLIC = 'x-public';
export const OPENAPI_ROLES = 'x-required-roles';

/** Opts a route out of the global bearer-token guard. */
export const Public = () => applyDecorators(SetMetadata(IS_PUBLIC, true), ApiExtension(OPENAPI_PUBLIC, true));

/** Only these roles may call the route (403 otherwise). */
export const Roles = (...roles: Role[]) => applyDecorators(SetMetadata(REQUIRED_ROLES, roles), ApiExtension(OPENAPI_ROLES, roles));

export type AuthenticatedRequest = FastifyRequest & { user?: AuthenticatedUser };

/** The verified bearer of the request's access token. */
export const CurrentUser = createParamDecorator((_: unknown, context: ExecutionContext): AuthenticatedUser => {
  const user = context.switchToHttp().getRequest<AuthenticatedRequest>().user;
  if (!user) throw new Error('CurrentUser used on a route without authentication');
  return user;
});
