/**
 * Base for every error the domain raises on purpose. The string `code` (e.g.
 * `USER.EMAIL_TAKEN`) is the contract: the HTTP layer maps codes to statuses in one
 * place (ProblemDetailsFilter), so domain code never knows about HTTP.
 */
export abstract class DomainError extends Error {
  abstract readonly code: string;
  /** Machine-readable extras that are safe to show a client (never internals). */
  readonly details?: Record<string, unknown>;

  constructor(message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = new.target.name;
    this.details = details;
  }
}

/** The kinds of failure a domain error can express; the filter maps each to a status. */
export type DomainErrorKind =
  | 'validation'
  | 'not-found'
  | 'conflict'
  | 'forbidden'
  | 'unauthorized'
  | 'unprocessable'
  | 'too-many-requests'
  // Conditional requests (If-Match): 412 when the precondition fails, 428 when one is required.
  | 'precondition-failed'
  | 'precondition-required';

export abstract class KindedDomainError extends DomainError {
  abstract readonly kind: DomainErrorKind;
}

export interface FieldError {
  field: string;
  message: string;
}

/** Request validation failed; carries one entry per offending field. */
export class ValidationFailedError extends KindedDomainError {
  readonly code = 'REQUEST.VALIDATION_FAILED';
  readonly kind = 'validation' as const;
  constructor(readonly errors: FieldError[], message = 'The request is not valid.') {
    super(message);
  }
}
