/**
 * @app/orders/contracts: versioned order event payloads and the public facade of
 * `orders`. Filled in by the orders issue; empty contracts are still the only door.
 */
export const OrderEvents = {} as const;
