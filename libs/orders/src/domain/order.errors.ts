import { KindedDomainError } from '@app/platform';

export class ProductNotFoundError extends KindedDomainError {
  readonly code = 'ORDER.PRODUCT_NOT_FOUND';
  readonly kind = 'not-found' as const;
  constructor(productId: string) {
    super(`Product ${productId} does not exist.`, { productId });
  }
}

export class InsufficientStockError extends KindedDomainError {
  readonly code = 'ORDER.INSUFFICIENT_STOCK';
  readonly kind = 'conflict' as const;
  constructor(productId: string, sku: string, requested: number) {
    super(`Not enough stock for product ${sku} (${productId}): ${requested} requested.`, { productId, sku, requested });
  }
}

export class MixedCurrencyError extends KindedDomainError {
  readonly code = 'ORDER.MIXED_CURRENCY';
  readonly kind = 'unprocessable' as const;
  constructor() {
    super('All products of one order must be priced in the same currency.');
  }
}

export class OrderNotFoundError extends KindedDomainError {
  readonly code = 'ORDER.NOT_FOUND';
  readonly kind = 'not-found' as const;
  constructor() {
    super('No such order.');
  }
}

export class IllegalTransitionError extends KindedDomainError {
  readonly code = 'ORDER.ILLEGAL_TRANSITION';
  readonly kind = 'conflict' as const;
  constructor(status: string, action: string) {
    const done: Record<string, string> = { confirm: 'confirmed', ship: 'shipped', deliver: 'delivered', cancel: 'cancelled', expire: 'expired' };
    super(`An order that is ${status} cannot be ${done[action] ?? action}.`, { currentStatus: status, action });
  }
}

export class DuplicateSkuError extends KindedDomainError {
  readonly code = 'PRODUCT.DUPLICATE_SKU';
  readonly kind = 'conflict' as const;
  constructor(sku: string) {
    super(`A product with SKU ${sku} already exists.`, { sku });
  }
}

export class CatalogueProductNotFoundError extends KindedDomainError {
  readonly code = 'PRODUCT.NOT_FOUND';
  readonly kind = 'not-found' as const;
  constructor() {
    super('No such product.');
  }
}

export class IdempotencyKeyReusedError extends KindedDomainError {
  readonly code = 'IDEMPOTENCY.KEY_REUSED';
  readonly kind = 'unprocessable' as const;
  constructor() {
    super('This Idempotency-Key was already used with a different request body.');
  }
}

export class IdempotencyRequestInProgressError extends KindedDomainError {
  readonly code = 'IDEMPOTENCY.REQUEST_IN_PROGRESS';
  readonly kind = 'conflict' as const;
  constructor() {
    super('A request with this Idempotency-Key is still being processed; retry shortly.');
  }
}

/** The claim's request ran past the takeover window and a repeat took the key over. */
export class IdempotencyClaimTakenOverError extends KindedDomainError {
  readonly code = 'IDEMPOTENCY.CLAIM_TAKEN_OVER';
  readonly kind = 'conflict' as const;
  constructor() {
    super('This request took too long and a repeat with the same Idempotency-Key took over; this one did nothing. Repeat it to get the outcome.');
  }
}

/** `If-Match` names no current version of the product (docs/api.md, "PATCH /v1/products/:id"). */
export class ProductVersionMismatchError extends KindedDomainError {
  readonly code = 'PRODUCT.VERSION_MISMATCH';
  readonly kind = 'precondition-failed' as const;
  constructor(currentVersion: number) {
    super(`The product changed since you read it (it is now version ${currentVersion}); read it again and reapply your change.`, { currentVersion });
  }
}

/** An absolute stock level without `If-Match` could overwrite reservations made meanwhile. */
export class ProductIfMatchRequiredError extends KindedDomainError {
  readonly code = 'PRODUCT.IF_MATCH_REQUIRED';
  readonly kind = 'precondition-required' as const;
  constructor() {
    super('Setting `stock` needs If-Match with the product\'s ETag; or send `stockDelta` to adjust the stock relatively.');
  }
}

/** The stock level a product may have (also the bound of `stock` in requests). */
export const MAX_STOCK = 1_000_000_000;

export class StockOutOfRangeError extends KindedDomainError {
  readonly code = 'PRODUCT.STOCK_OUT_OF_RANGE';
  readonly kind = 'conflict' as const;
  constructor(stock: number, stockDelta: number) {
    super(`Stock is ${stock}: adjusting it by ${stockDelta} would take it outside 0-${MAX_STOCK}. Nothing was changed.`, { stock, stockDelta });
  }
}
