import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, QueryFailedError } from 'typeorm';
import { InjectReplicaReader, KeysetCursor, type ReplicaReader } from '@app/platform';
import {
  CatalogueProductNotFoundError,
  DuplicateSkuError,
  MAX_STOCK,
  ProductIfMatchRequiredError,
  ProductVersionMismatchError,
  StockOutOfRangeError,
} from '../domain/order.errors';

export interface Product {
  id: string;
  sku: string;
  name: string;
  priceCents: number;
  currency: string;
  stock: number;
  /** Grows with every change of the product, its stock included; the ETag is `"<version>"`. */
  version: number;
  createdAt: string;
}

interface ProductRow {
  id: string;
  sku: string;
  name: string;
  price_cents: number;
  currency: string;
  stock: number;
  version: string;
  created_at: Date;
}

export interface ProductChanges {
  name?: string;
  priceCents?: number;
  /** Absolute level: only with a version precondition (it would overwrite reservations). */
  stock?: number;
  /** Relative adjustment, applied atomically: never overwrites concurrent reservations. */
  stockDelta?: number;
}

/** From `If-Match`: `*` (any version) or the versions it names (empty: none can match). */
export type VersionPrecondition = { any: true } | { versions: number[] };

const toProduct = (row: ProductRow): Product => ({
  id: row.id,
  sku: row.sku,
  name: row.name,
  priceCents: row.price_cents,
  currency: row.currency.trim(),
  stock: row.stock,
  version: Number(row.version),
  createdAt: new Date(row.created_at).toISOString(),
});

const COLUMNS = 'id, sku, name, price_cents, currency, stock, version, created_at';

/** The product catalogue and its stock levels. */
@Injectable()
export class CatalogueService {
  constructor(
    @InjectDataSource('orders') private readonly dataSource: DataSource,
    @InjectReplicaReader('orders') private readonly reader: ReplicaReader,
  ) {}

  async create(input: { sku: string; name: string; priceCents: number; currency: string; stock: number }): Promise<Product> {
    try {
      const [row] = await this.dataSource.query<ProductRow[]>(
        `INSERT INTO orders.products (id, sku, name, price_cents, currency, stock) VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${COLUMNS}`,
        [randomUUID(), input.sku.trim(), input.name.trim(), input.priceCents, input.currency, input.stock],
      );
      return toProduct(row);
    } catch (error) {
      if (error instanceof QueryFailedError && (error.driverError as { code?: string }).code === '23505') throw new DuplicateSkuError(input.sku);
      throw error;
    }
  }

  async get(id: string): Promise<Product> {
    const [row] = await this.dataSource.query<ProductRow[]>(`SELECT ${COLUMNS} FROM orders.products WHERE id = $1`, [id]);
    if (!row) throw new CatalogueProductNotFoundError();
    return toProduct(row);
  }

  /**
   * One conditional UPDATE decides (docs/api.md, "PATCH /v1/products/:id"): the version
   * precondition and the stock bounds are checked against the row as it is when the lock
   * is taken, so an order placed between the client's read and this write makes a stale
   * If-Match fail (412) instead of being overwritten, and a `stockDelta` adds to whatever
   * the orders left.
   */
  async update(id: string, changes: ProductChanges, precondition?: VersionPrecondition): Promise<Product> {
    if (changes.stock !== undefined && !(precondition && 'versions' in precondition)) throw new ProductIfMatchRequiredError();
    const versions = precondition && 'versions' in precondition ? precondition.versions : null;
    const delta = changes.stockDelta ?? 0;
    for (let attempt = 0; attempt < 3; attempt++) {
      const [row] = await this.dataSource.query<ProductRow[]>(
        `WITH u AS (
           UPDATE orders.products
              SET name = COALESCE($2, name), price_cents = COALESCE($3, price_cents),
                  stock = COALESCE($4::integer, stock + $5::integer), version = version + 1, updated_at = now()
            WHERE id = $1 AND ($6::bigint[] IS NULL OR version = ANY($6::bigint[]))
              AND ($4::integer IS NOT NULL OR stock::bigint + $5::bigint BETWEEN 0 AND $7::bigint)
            RETURNING ${COLUMNS})
         SELECT * FROM u`,
        [id, changes.name?.trim() ?? null, changes.priceCents ?? null, changes.stock ?? null, delta, versions, MAX_STOCK],
      );
      if (row) return toProduct(row);
      // Nothing written: say why, from the row as it is now (it may have moved on again).
      const [current] = await this.dataSource.query<{ stock: number; version: string }[]>('SELECT stock, version FROM orders.products WHERE id = $1', [id]);
      if (!current) throw new CatalogueProductNotFoundError();
      if (versions && !versions.includes(Number(current.version))) throw new ProductVersionMismatchError(Number(current.version));
      if (changes.stock === undefined && (current.stock + delta < 0 || current.stock + delta > MAX_STOCK)) throw new StockOutOfRangeError(current.stock, delta);
      // The row changed back into range between the two statements: try again.
    }
    throw new StockOutOfRangeError((await this.get(id)).stock, delta);
  }

  /**
   * The catalogue page may come from the read replica (a few seconds behind at most, and
   * never behind `caller`'s own writes): browsing tolerates that; placing an order reads
   * prices and stock on the primary, inside its transaction.
   */
  async list(caller: string, limit: number, cursor?: string): Promise<{ items: Product[]; nextCursor: string | null }> {
    const after = KeysetCursor.decode(cursor, KeysetCursor.isTimestamp);
    const rows = await this.reader.read(caller, (manager) => manager.query<ProductRow[]>(
      `SELECT ${COLUMNS} FROM orders.products
        ${after ? 'WHERE (created_at, id) > ($2::timestamptz, $3::uuid)' : ''}
        ORDER BY created_at, id LIMIT $1`,
      after ? [limit + 1, after.key, after.id] : [limit + 1],
    ));
    const page = rows.slice(0, limit).map(toProduct);
    const last = rows.length > limit ? rows[limit - 1] : undefined;
    return { items: page, nextCursor: last ? KeysetCursor.encode({ key: new Date(last.created_at).toISOString(), id: last.id }) : null };
  }
}
