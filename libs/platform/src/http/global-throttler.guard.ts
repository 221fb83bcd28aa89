import { Injectable, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { InjectThrottlerOptions, InjectThrottlerStorage, ThrottlerGuard, type ThrottlerModuleOptions, type ThrottlerStorage } from '@nestjs/throttler';
import { AuthGuard, startRevocationLookup } from '../auth/auth.guard';
import type { AuthenticatedRequest } from '../auth/auth.decorators';
import { SessionRevocationStore } from '../auth/session-revocation.store';
import { clientAddressKey } from './client-address';

/**
 * @nestjs/throttler's guard, configured once for one global limit per client: it
 * resolves route metadata (skip, per-route limits) on every request through six
 * reflector lookups and awaits; here that is read once per handler, and per-request
 * work is the counter round trip (RedisThrottlerStorage) and the headers. The client is
 * `request.ip` (X-Forwarded-For only as far as TRUST_PROXY allows), IPv6 per /64.
 */
@Injectable()
export class GlobalThrottlerGuard extends ThrottlerGuard {
  private readonly skipByHandler = new WeakMap<object, boolean>();
  private readonly authByHandler = new WeakMap<object, { isPublic: boolean }>();

  constructor(
    @InjectThrottlerOptions() options: ThrottlerModuleOptions,
    @InjectThrottlerStorage() storage: ThrottlerStorage,
    reflector: Reflector,
    private readonly revocations: SessionRevocationStore,
  ) {
    super(options, storage, reflector);
  }

  protected override getTracker(request: Record<string, unknown>): Promise<string> {
    return Promise.resolve(clientAddressKey(typeof request.ip === 'string' ? request.ip : undefined));
  }

  override async canActivate(context: ExecutionContext): Promise<boolean> {
    const handler = context.getHandler();
    let skip = this.skipByHandler.get(handler);
    if (skip === undefined) {
      skip = this.throttlers.every((throttler) =>
        this.reflector.getAllAndOverride<boolean>(`THROTTLER:SKIP${throttler.name}`, [handler, context.getClass()]) === true,
      );
      // Per-route limits are not used in this product; if a route ever sets one, fall back
      // to the library's full path for it.
      const custom = this.throttlers.some((throttler) =>
        ['THROTTLER:LIMIT', 'THROTTLER:TTL', 'THROTTLER:BLOCK_DURATION', 'THROTTLER:TRACKER', 'THROTTLER:KEY_GENERATOR'].some(
          (key) => this.reflector.getAllAndOverride(`${key}${throttler.name}`, [handler, context.getClass()]) !== undefined,
        ),
      );
      if (custom) return super.canActivate(context);
      this.skipByHandler.set(handler, skip);
    }
    // A route that needs a token: its revocation lookup leaves with the counter's round trip.
    if (!AuthGuard.routeAuth(this.reflector, this.authByHandler, context).isPublic) {
      startRevocationLookup(context.switchToHttp().getRequest<AuthenticatedRequest>(), this.revocations);
    }
    if (skip) return true;
    for (const throttler of this.throttlers) {
      await this.handleRequest({
        context,
        limit: throttler.limit as number,
        ttl: throttler.ttl as number,
        throttler,
        blockDuration: (throttler.blockDuration as number | undefined) ?? (throttler.ttl as number),
        getTracker: throttler.getTracker ?? this.commonOptions.getTracker!,
        generateKey: throttler.generateKey ?? this.commonOptions.generateKey!,
      });
    }
    return true;
  }
}
