import { KindedDomainError } from '../errors/domain-error';

export class UnauthenticatedError extends KindedDomainError {
  readonly code = 'AUTH.UNAUTHENTICATED';
  readonly kind = 'unauthorized' as const;
  constructor(message = 'A valid bearer access token is required.') {
    super(message);
  }
}

export class ForbiddenRoleError extends KindedDomainError {
  readonly code = 'AUTH.FORBIDDEN';
  readonly kind = 'forbidden' as const;
  constructor() {
    super('Your role does not allow this operation.');
  }
}

/** 429; `retryAfterSeconds` becomes the Retry-After header. */
export class TooManyRequestsError extends KindedDomainError {
  readonly code: string;
  readonly kind = 'too-many-requests' as const;
  constructor(readonly retryAfterSeconds: number, code = 'RATE_LIMIT.EXCEEDED', message = 'Too many requests; retry later.') {
    super(message);
    this.code = code;
  }
}
