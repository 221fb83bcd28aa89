import { KindedDomainError } from '@app/platform';

export class EmailTakenError extends KindedDomainError {
  readonly code = 'USER.EMAIL_TAKEN';
  readonly kind = 'conflict' as const;
  constructor() {
    super('An account with this email already exists.');
  }
}

/** Same code and text for an unknown email and a wrong password: nothing to enumerate. */
export class InvalidCredentialsError extends KindedDomainError {
  readonly code = 'AUTH.INVALID_CREDENTIALS';
  readonly kind = 'unauthorized' as const;
  constructor() {
    super('The email or password is incorrect.');
  }
}

export class InvalidRefreshTokenError extends KindedDomainError {
  readonly code = 'AUTH.INVALID_REFRESH_TOKEN';
  readonly kind = 'unauthorized' as const;
  constructor() {
    super('The refresh token is invalid, expired or already used.');
  }
}

export class UserNotFoundError extends KindedDomainError {
  readonly code = 'USER.NOT_FOUND';
  readonly kind = 'not-found' as const;
  constructor() {
    super('No such user.');
  }
}
