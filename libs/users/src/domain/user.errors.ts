import { KindedDomainError } from '@app/platform';

export class EmailTakenError extends KindedDomainError {
  readonly code = 'USER.EMAIL_TAKEN';
  readonly kind = 'conflict' as const;
  constructor() {
    super('An account with this email already exists.');
  }
}
