import { Controller, Get, Header, Inject } from '@nestjs/common';
import { ApiOkResponse, ApiTags, ApiOperation } from '@nestjs/swagger';
import { APP_CONFIG, Public, publicJwk, type AppConfig } from '@app/platform';

/**
 * The public keys access tokens are verified with (RFC 7517 JWK Set), served by the
 * module that signs them: what an operator copies into AUTH_PUBLIC_KEYS of an extracted
 * service, and what a development start without configured keys publishes. Public keys
 * only: nothing here can mint a token.
 */
@ApiTags('auth')
@Public()
@Controller('.well-known')
export class JwksController {
  private readonly body: { keys: ReturnType<typeof publicJwk>[] };

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    this.body = { keys: config.auth.publicKeys.map(publicJwk) };
  }

  @Get('jwks.json')
  @Header('cache-control', 'public, max-age=300')
  @ApiOkResponse({ description: 'JWK Set: `kid` is the RFC 7638 thumbprint, `alg` EdDSA (Ed25519) or ES256' })
  @ApiOperation({ operationId: 'getJwks', summary: 'Public keys that verify access tokens (JWK Set)' })
  jwks(): { keys: ReturnType<typeof publicJwk>[] } {
    return this.body;
  }
}
