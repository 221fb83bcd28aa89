import { createHash, randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { domainErrorProblem, execute, KindedDomainError } from '@app/platform';
import type { DataSource, EntityManager } from 'typeorm';
import { IdempotencyClaimTakenOverError, IdempotencyKeyReusedError, IdempotencyRequestInProgressError } from '../domain/order.errors';
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
 * `Idempotency-Key` for POST /v1/orders (Stripe / IETF draft semantics; docs/api.md,
 * "Idempotency"). Keys are scoped to the user and kept 24 h in Postgres (every instance
 * sees them; they survive restarts). The first request claims the key; its outcome (201,
 * or a 404/409/422 domain error) is stored, the 201 in the same transaction as the order,
 * so a repeat with the same body replays it exactly. A different body is 422; a repeat
 * while the first still runs is 409. Validation failures never reach this point, so they
 * are not stored; a 5xx releases the key so the client can retry.
 *
 * A claim is fenced: each holder gets its own `claim_id`, and every write that ends a claim
 * (the outcome, the release) names it. A claim left in progress for 60 s is taken over
 * under a new id, so if its first holder was only slow, not dead, its outcome write finds
 * another id, writes nothing, and its transaction rolls back with the order it placed
 * (409 IDEMPOTENCY.CLAIM_TAKEN_OVER): one key, one order.
 */
@Injectable()
export class IdempotentOrderPlacement {
  constructor(
    @InjectDataSource('orders') private readonly dataSource: DataSource,
    private readonly placeOrder: PlaceOrderService,
  ) {}

  async place(userId: string, key: string, body: unknown, lines: OrderLineRequest[]): Promise<StoredResponse> {
    const hash = createHash('sha256').update(canonical(body)).digest('hex');
    const claim = await this.claim(userId, key, hash);
    if ('replay' in claim) return claim.replay;
    const claimId = claim.claimId;
    try {
      const order = await this.dataSource.transaction(async (manager) => {
        const placed = await this.placeOrder.placeIn(manager, userId, lines);
        await this.complete(manager, userId, key, claimId, 201, toOrderResponse(placed));
        return placed;
      });
      await this.placeOrder.afterCommit(order);
      return { status: 201, body: toOrderResponse(order), replayed: false };
    } catch (error) {
      if (error instanceof IdempotencyClaimTakenOverError) throw error;
      if (error instanceof KindedDomainError) {
        const problem = domainErrorProblem(error, '/v1/orders');
        await this.complete(this.dataSource.manager, userId, key, claimId, problem.status, problem);
      } else {
        await this.dataSource
          .query(`DELETE FROM orders.idempotency_keys WHERE user_id = $1 AND key = $2 AND claim_id = $3 AND state = 'in-progress'`, [userId, key, claimId])
          .catch(() => undefined);
      }
      throw error;
    }
  }

  /** Stores the outcome if this request still holds the claim; otherwise it must not count. */
  private async complete(manager: EntityManager, userId: string, key: string, claimId: string, status: number, body: unknown): Promise<void> {
    const { affected } = await execute(
      manager,
      `UPDATE orders.idempotency_keys SET state = 'completed', response_status = $4, response_body = $5
        WHERE user_id = $1 AND key = $2 AND claim_id = $3 AND state = 'in-progress'`,
      [userId, key, claimId, status, JSON.stringify(body)],
    );
    if (affected !== 1) throw new IdempotencyClaimTakenOverError();
  }

  /** A stored response to replay, or the id of the claim this request now holds. */
  private async claim(userId: string, key: string, hash: string): Promise<{ replay: StoredResponse } | { claimId: string }> {
    const claimId = randomUUID();
    for (let attempt = 0; attempt < 3; attempt++) {
      const claimed = await this.dataSource.query<unknown[]>(
        `WITH i AS (
           INSERT INTO orders.idempotency_keys (user_id, key, request_hash, state, claim_id, expires_at)
           VALUES ($1, $2, $3, 'in-progress', $4, now() + make_interval(hours => $5))
           ON CONFLICT (user_id, key) DO NOTHING RETURNING 1)
         SELECT * FROM i`,
        [userId, key, hash, claimId, KEY_TTL_HOURS],
      );
      if (claimed.length) return { claimId };
      const [existing] = await this.dataSource.query<
        { request_hash: string; state: string; response_status: number; response_body: unknown; expired: boolean; abandoned: boolean; claim_id: string }[]
      >(
        `SELECT request_hash, state, response_status, response_body, claim_id,
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
      if (existing.state === 'completed') return { replay: { status: existing.response_status, body: existing.response_body, replayed: true } };
      if (existing.abandoned) {
        // Conditional on the claim id read above: of several repeats, one takes it over.
        const { affected } = await execute(
          this.dataSource,
          `UPDATE orders.idempotency_keys SET locked_at = now(), claim_id = $4
            WHERE user_id = $1 AND key = $2 AND state = 'in-progress' AND claim_id = $3`,
          [userId, key, existing.claim_id, claimId],
        );
        if (affected === 1) return { claimId };
        // It completed (or another repeat took it over) meanwhile: read it again.
        continue;
      }
      throw new IdempotencyRequestInProgressError();
    }
    throw new IdempotencyRequestInProgressError();
  }
}
