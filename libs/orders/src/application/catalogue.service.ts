import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, QueryFailedError } from 'typeorm';
import { KeysetCursor } from '@app/platform';
import { CatalogueProductNotFoundError, DuplicateSkuError } from '../domain/order.errors';

export interface Product {
  id: string;
  sku: string;
  name: string;
  priceCents: number;
  currency: string;
  stock: number;
  createdAt: string;
}

interface ProductRow {
  id: string;
  sku: string;
  name: string;
  price_cents: number;
  currency: string;
  stock: number;
  created_at: Date;
}

const toProduct = (row: ProductRow): Product => ({
  id: row.id,
  sku: row.sku,
  name: row.name,
  priceCents: row.price_cents,
  currency: row.currency.trim(),
  stock: row.stock,
  createdAt: new Date(row.created_at).toISOString(),
});

const COLUMNS = 'id, sku, name, price_cents, currency, stock, created_at';

/** The product catalogue and its stock levels. */
@Injectable()
export class CatalogueService {
  constructor(@InjectDataSource('orders') private readonly dataSource: DataSource) {}

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

  async update(id: string, changes: { name?: string; priceCents?: number; stock?: number }): Promise<Product> {
    const [row] = await this.dataSource.query<ProductRow[]>(
      `WITH u AS (
         UPDATE orders.products SET name = COALESCE($2, name), price_cents = COALESCE($3, price_cents),
                stock = COALESCE($4, stock), updated_at = now()
          WHERE id = $1 RETURNING ${COLUMNS})
       SELECT * FROM u`,
      [id, changes.name?.trim() ?? null, changes.priceCents ?? null, changes.stock ?? null],
    );
    if (!row) throw new CatalogueProductNotFoundError();
    return toProduct(row);
  }

  async list(limit: number, cursor?: string): Promise<{ items: Product[]; nextCursor: string | null }> {
    const after = KeysetCursor.decode(cursor, KeysetCursor.isTimestamp);
    const rows = await this.dataSource.query<ProductRow[]>(
      `SELECT ${COLUMNS} FROM orders.products
        ${after ? 'WHERE (created_at, id) > ($2::timestamptz, $3::uuid)' : ''}
        ORDER BY created_at, id LIMIT $1`,
      after ? [limit + 1, after.key, after.id] : [limit + 1],
    );
    const page = rows.slice(0, limit).map(toProduct);
    const last = rows.length > limit ? rows[limit - 1] : undefined;
    return { items: page, nextCursor: last ? KeysetCursor.encode({ key: new Date(last.created_at).toISOString(), id: last.id }) : null };
  }
}
