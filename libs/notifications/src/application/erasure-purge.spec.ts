import pino from 'pino';
import type { DataSource } from 'typeorm';
import { ERASURE_BATCH_SIZE, ErasurePurge } from './erasure-purge';

/**
 * The batch loop's fallback on statement timeouts, on a stand-in connection that times
 * out any batch above a size (the real batches run against Postgres in
 * test/e2e/security-erasure.e2e.spec.ts).
 */
function connectionTimingOutAbove(maxBatch: number, rows: number) {
  const batches: number[] = [];
  let left = rows;
  const dataSource = {
    query: async (sql: string, params: unknown[]) => {
      if (!sql.includes('WITH gone AS')) return [];
      const limit = params[1] as number;
      batches.push(limit);
      if (limit > maxBatch) throw Object.assign(new Error('canceling statement due to statement timeout'), { code: '57014' });
      const count = Math.min(limit, left);
      left -= count;
      return [{ count }];
    },
  };
  return { dataSource: dataSource as unknown as DataSource, batches, left: () => left };
}

describe('ErasurePurge', () => {
  const logger = pino({ level: 'silent' });

  it('halves a batch that runs into the statement timeout and finishes the purge at once', async () => {
    const db = connectionTimingOutAbove(300, 2_000);
    const deleted = await new ErasurePurge(db.dataSource, logger).purgeUser('u1');
    expect(deleted).toBe(2_000);
    expect(db.left()).toBe(0);
    // 1000 and 500 time out; 250 fits and is kept for the rest of the purge.
    expect(db.batches.slice(0, 3)).toEqual([ERASURE_BATCH_SIZE, ERASURE_BATCH_SIZE / 2, ERASURE_BATCH_SIZE / 4]);
    expect(new Set(db.batches.slice(2))).toEqual(new Set([250]));
  });

  it('gives up (for the next sweep) when even the smallest batch times out, and lets other errors through at once', async () => {
    const hopeless = connectionTimingOutAbove(10, 500);
    await expect(new ErasurePurge(hopeless.dataSource, logger).purgeUser('u1')).rejects.toMatchObject({ code: '57014' });
    expect(Math.min(...hopeless.batches)).toBe(50);

    const broken = {
      query: async (sql: string) => {
        if (sql.includes('WITH gone AS')) throw Object.assign(new Error('permission denied'), { code: '42501' });
        return [];
      },
    } as unknown as DataSource;
    await expect(new ErasurePurge(broken, logger).purgeUser('u2')).rejects.toMatchObject({ code: '42501' });
  });
});
