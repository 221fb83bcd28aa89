import { Controller, HttpCode, Post, Req } from '@nestjs/common';
import { ApiBearerAuth, ApiNoContentResponse, ApiOkResponse, ApiTags, ApiTooManyRequestsResponse, ApiUnauthorizedResponse, ApiOperation } from '@nestjs/swagger';
import { CurrentUser, Public, ShedPriority, ValidBody, type AuthenticatedUser } from '@app/platform';
import type { FastifyRequest } from 'fastify';
import { SessionsService, type TokenPair } from '../application/sessions.service';
import { LoginRequest, RefreshRequest, TokenPairResponse } from './user.schemas';

@ApiTags('auth')
@Controller({ path: 'auth', version: '1' })
export class AuthController {
  constructor(private readonly sessions: SessionsService) {}

  @Public()
  @Post('login')
  @HttpCode(200)
  @ApiOkResponse({ schema: TokenPairResponse as never })
  @ApiUnauthorizedResponse({ description: 'Same body for an unknown email and a wrong password' })
  @ApiTooManyRequestsResponse({ description: 'Too many failed attempts for this account or address; see Retry-After' })
  @ApiOperation({ operationId: 'login', summary: 'Sign in', description: 'Returns an access token (Bearer) and a refresh token for a new session.' })
  login(@ValidBody(LoginRequest) body: LoginRequest, @Req() request: FastifyRequest): Promise<TokenPair> {
    return this.sessions.login(body.email, body.password, request.ip);
  }

  @Public()
  @Post('refresh')
  @ShedPriority('critical') // shedding it would sign users out
  @HttpCode(200)
  @ApiOkResponse({ schema: TokenPairResponse as never })
  @ApiUnauthorizedResponse({ description: 'Unknown, expired or reused token; reuse ends the whole session' })
  @ApiOperation({ operationId: 'refreshTokens', summary: 'Exchange a refresh token for a new pair', description: 'Each refresh token works once; using one twice ends the whole session.' })
  refresh(@ValidBody(RefreshRequest) body: RefreshRequest): Promise<TokenPair> {
    return this.sessions.refresh(body.refreshToken);
  }

  @Post('logout')
  @HttpCode(204)
  @ApiBearerAuth()
  @ApiNoContentResponse({ description: "The session's refresh and access tokens stop working at once, on every instance" })
  @ApiOperation({ operationId: 'logout', summary: 'Sign out of this session' })
  logout(@CurrentUser() caller: AuthenticatedUser): Promise<void> {
    return this.sessions.logout(caller.sessionId, caller.userId);
  }
}
