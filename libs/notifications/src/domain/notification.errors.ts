import { KindedDomainError } from '@app/platform';

/** Unknown id, or another user's notification: the same 404 either way. */
export class NotificationNotFoundError extends KindedDomainError {
  readonly code = 'NOTIFICATION.NOT_FOUND';
  readonly kind = 'not-found' as const;
  constructor() {
    super('No such notification.');
  }
}

/** A delivery that no retry can fix (refused address, channel switched off): straight to `dead`. */
export class PermanentDeliveryError extends Error {
  override name = 'PermanentDeliveryError';
}

/**
 * The webhook's host has no address webhooks may reach at this attempt (SSRF protection):
 * it does not resolve, or it resolves to an internal address. One error, one message for
 * both, so the delivery record cannot tell a user which internal names exist; `reason`
 * (for the operator's logs only) says which it was. Retried like any failed attempt: DNS
 * may answer differently next time.
 */
export class DestinationRefusedError extends Error {
  override name = 'DestinationRefusedError';
  constructor(host: string, readonly reason: string) {
    super(`destination refused: ${host} has no address webhooks may reach`);
  }
}
