import { Injectable } from '@nestjs/common';
import { SessionRevocationStore, type InboxEventHandler, type IntegrationEvent } from '@app/platform';
import { UserEvents, type SessionRevokedV1 } from '../contracts';

/**
 * Makes a revocation reach Redis even when Redis was down at sign-out: the event waits
 * in the outbox, and this consumer (retrying with backoff) sets the shared key.
 */
@Injectable()
export class RevokeSessionOnSessionRevokedHandler implements InboxEventHandler<SessionRevokedV1> {
  readonly eventTypes = [UserEvents.sessionRevoked];

  constructor(private readonly revocations: SessionRevocationStore) {}

  async handle(event: IntegrationEvent<SessionRevokedV1>): Promise<void> {
    await this.revocations.revoke(event.payload.sessionId);
  }
}
