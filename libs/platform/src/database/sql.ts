import type { DataSource, EntityManager } from 'typeorm';

/**
 * Runs a data-modifying statement and returns its rows and row count. TypeORM's Postgres
 * driver answers UPDATE/DELETE with `[rows, count]` but INSERT with plain rows.
 */
export async function execute<T = Record<string, unknown>>(
  db: DataSource | EntityManager,
  sql: string,
  params: unknown[] = [],
): Promise<{ rows: T[]; affected: number }> {
  const result: unknown = await db.query(sql, params);
  if (Array.isArray(result) && result.length === 2 && Array.isArray(result[0]) && typeof result[1] === 'number') {
    return { rows: result[0] as T[], affected: result[1] };
  }
  const rows = (result ?? []) as T[];
  return { rows, affected: rows.length };
}
