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

/** The webhook's host resolves to an address webhooks may not reach (SSRF protection). */
export class DestinationNotAllowedError extends PermanentDeliveryError {
  override name = 'DestinationNotAllowedError';
}
