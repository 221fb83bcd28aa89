import { createHash } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { domainErrorProblem, KindedDomainError } from '@app/platform';
import type { DataSource } from 'typeorm';
import { IdempotencyKeyReusedError, IdempotencyRequestInProgressError } from '../domain/order.errors';
import { PlaceOrderService, type OrderLineRequest } from './place-order.service';
import { toOrderResponse } from './order-response';

export interface StoredResponse {
  status: number;
  body: unknown;
  replayed: boolean;
}

/** An in-progress claim older than this is taken over (its request died mid-flight). */
const ABANDONED_AFTER_S = 60;
const KEY_TTL_HOURS = 24;

/** Canonical JSON: the same body with keys in another order hashes the same. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * `Idempotency-Key` for POST /v1/orders (Stripe / IETF draft semantics). Keys are scoped
 * to the user and kept 24 h in Postgres (every instance sees them; they survive
 * restarts). The first request claims the key; its outcome (201, or a 404/409/422
 * domain error) is stored in the same transaction as the order, so a repeat with the same
 * body replays it exactly. A different body is 422; a repeat while the first still runs
 * is 409. Validation failures never reach this point, so they are not stored; a 5xx
 * releases the key so the client can retry.
 */
@Injectable()
export class IdempotentOrderPlacement {
  constructor(
    @InjectDataSource('orders') private readonly dataSource: DataSource,
    private readonly placeOrder: PlaceOrderService,
  ) {}

  async place(userId: string, key: string, body: unknown, lines: OrderLineRequest[]): Promise<StoredResponse> {
    const hash = createHash('sha256').update(canonical(body)).digest('hex');
    const replay = await this.claim(userId, key, hash);
    if (replay) return replay;
    try {
      const order = await this.dataSource.transaction(async (manager) => {
        const placed = await this.placeOrder.placeIn(manager, userId, lines);
        await manager.query(
          `UPDATE orders.idempotency_keys SET state = 'completed', response_status = 201, response_body = $3 WHERE user_id = $1 AND key = $2`,
          [userId, key, JSON.stringify(toOrderResponse(placed))],
        );
        return placed;
      });
      await this.placeOrder.afterCommit(order);
      return { status: 201, body: toOrderResponse(order), replayed: false };
    } catch (error) {
      if (error instanceof KindedDomainError) {
        const problem = domainErrorProblem(error, '/v1/orders');
        await this.dataSource.query(
          `UPDATE orders.idempotency_keys SET state = 'completed', response_status = $3, response_body = $4 WHERE user_id = $1 AND key = $2`,
          [userId, key, problem.status, JSON.stringify(problem)],
        );
      } else {
        await this.dataSource.query('DELETE FROM orders.idempotency_keys WHERE user_id = $1 AND key = $2', [userId, key]).catch(() => undefined);
      }
      throw error;
    }
  }

  /** Returns a stored response to replay, or undefined when this request now owns the key. */
  private async claim(userId: string, key: string, hash: string): Promise<StoredResponse | undefined> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const claimed = await this.dataSource.query<unknown[]>(
        `WITH i AS (
           INSERT INTO orders.idempotency_keys (user_id, key, request_hash, state, expires_at)
           VALUES ($1, $2, $3, 'in-progress', now() + make_interval(hours => $4))
           ON CONFLICT (user_id, key) DO NOTHING RETURNING 1)
         SELECT * FROM i`,
        [userId, key, hash, KEY_TTL_HOURS],
      );
      if (claimed.length) return undefined;
      const [existing] = await this.dataSource.query<
        { request_hash: string; state: string; response_status: number; response_body: unknown; expired: boolean; abandoned: boolean; locked_at: Date }[]
      >(
        `SELECT request_hash, state, response_status, response_body, locked_at,
                expires_at <= now() AS expired,
                locked_at <= now() - make_interval(secs => $3) AS abandoned
           FROM orders.idempotency_keys WHERE user_id = $1 AND key = $2`,
        [userId, key, ABANDONED_AFTER_S],
      );
      if (!existing) continue;
      if (existing.expired) {
        await this.dataSource.query('DELETE FROM orders.idempotency_keys WHERE user_id = $1 AND key = $2 AND expires_at <= now()', [userId, key]);
        continue;
      }
      if (existing.request_hash !== hash) throw new IdempotencyKeyReusedError();
      if (existing.state === 'completed') return { status: existing.response_status, body: existing.response_body, replayed: true };
      if (existing.abandoned) {
        const taken = await this.dataSource.query<unknown[]>(
          `WITH u AS (UPDATE orders.idempotency_keys SET locked_at = now() WHERE user_id = $1 AND key = $2 AND state = 'in-progress' AND locked_at = $3 RETURNING 1) SELECT * FROM u`,
          [userId, key, existing.locked_at],
        );
        if (taken.length) return undefined;
      }
      throw new IdempotencyRequestInProgressError();
    }
    throw new IdempotencyRequestInProgressError();
  }
}
