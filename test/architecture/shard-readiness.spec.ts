import { readFileSync } from 'node:fs';
import path from 'node:path';
import { messagingTablesDistribution, type ModuleDatabaseDefinition } from '@app/platform';
import { migrationFiles } from './support/migration-checker';
import { checkShardReadiness, createdTables, RULES } from './support/shard-readiness';
import { usersDatabase } from '@app/users';
import { ordersDatabase } from '@app/orders';
import { notificationsDatabase } from '@app/notifications';

/**
 * Ready to shard by user (docs/scaling.md): every table a module's migrations create has a
 * user_id column (what Citus would distribute it by), or its module declares it (reference,
 * local, distributed by another column, or to colocate before sharding) with the reason.
 */
const ROOT = path.resolve(__dirname, '../..');
const DATABASES: ModuleDatabaseDefinition[] = [usersDatabase, ordersDatabase, notificationsDatabase];
const read = (file: string) => ({ file, source: readFileSync(path.join(ROOT, file), 'utf8') });

describe('Schema ready to shard by user_id', () => {
  it('covers every module that has migrations', () => {
    expect(DATABASES.map((d) => d.module).sort()).toEqual([...new Set(migrationFiles().map((f) => f.module))].sort());
  });

  it.each(DATABASES.map((d) => [d.module, d] as const))('every table of %s has user_id or is declared with a reason', (module, database) => {
    const sources = migrationFiles()
      .filter((f) => f.module === module)
      .map((f) => read(f.file));
    expect(createdTables(sources.map((s) => s.source).join('\n'), module).length).toBeGreaterThan(0);
    expect(checkShardReadiness({ module, sources, distribution: database.distribution }).map((f) => f.message)).toEqual([]);
    for (const reasons of Object.values(database.distribution ?? {})) {
      for (const reason of Object.values(reasons as Record<string, string | { reason: string }>)) {
        expect((typeof reason === 'string' ? reason : reason.reason).length).toBeGreaterThan(20);
      }
    }
  });

  it("the platform's messaging tables (outbox, inbox, dead_letters, erasure_work of every module) are declared too", () => {
    const file = 'libs/platform/src/database/outbox-inbox.sql.ts';
    const tables = createdTables(read(file).source, file).map((t) => t.table);
    expect(tables.sort()).toEqual(['dead_letters', 'erasure_work', 'inbox', 'outbox']);
    expect(checkShardReadiness({ module: 'platform', sources: [read(file)], distribution: messagingTablesDistribution })).toEqual([]);
  });

  describe('a migration that adds a table without user_id (fixtures/sharding)', () => {
    const fixture = read('test/architecture/fixtures/sharding/orders-coupons-without-user-id.ts');

    it('fails, naming the rule, the file and line, the module and the table', () => {
      expect(checkShardReadiness({ module: 'orders', sources: [fixture], distribution: ordersDatabase.distribution }).map((f) => f.message)).toEqual([
        `[shard-user-id] test/architecture/fixtures/sharding/orders-coupons-without-user-id.ts:9 (module orders) table orders.coupons has no user_id column: ` +
          `tables of a user-owned module are distributed by user_id (docs/scaling.md); add the column, or declare the table ` +
          `in the module's database definition (distribution: reference, local, distributedBy or colocateBeforeSharding) with the reason`,
        // The fixture alone does not create the orders tables the module declares.
        expect.stringMatching(/^\[shard-stale-declaration\] \(module orders\) declares orders\.products as reference/),
        expect.stringMatching(/^\[shard-stale-declaration\] \(module orders\) declares orders\.order_lines as colocateBeforeSharding/),
      ]);
    });

    it('passes once the table is declared (here: a reference table), and a declared table that does not exist is reported', () => {
      expect(checkShardReadiness({ module: 'orders', sources: [fixture], distribution: { reference: { coupons: 'codes shared by every user' } } })).toEqual([]);
      expect(
        checkShardReadiness({ module: 'orders', sources: [fixture], distribution: { reference: { coupons: 'x' }, local: { vouchers: 'gone' } } }).map((f) => f.rule),
      ).toEqual(['shard-stale-declaration']);
    });

    it('a table declared distributed by another column must have that column', () => {
      const findings = checkShardReadiness({ module: 'orders', sources: [fixture], distribution: { distributedBy: { coupons: { column: 'owner_id', reason: 'r' } } } });
      expect(findings.map((f) => f.message)).toEqual([
        '[shard-user-id] test/architecture/fixtures/sharding/orders-coupons-without-user-id.ts:9 (module orders) table orders.coupons is declared distributed by "owner_id", which it does not have',
      ]);
    });

    it('reads only columns: a comment or a constraint naming user_id does not count; PARTITION OF takes its parent\'s columns', () => {
      const tables = createdTables(fixture.source, fixture.file);
      expect(tables.map((t) => [t.table, t.columns])).toEqual([
        ['coupons', ['id', 'code']],
        ['coupon_uses', ['coupon_id', 'user_id']],
      ]);
    });
  });

  it('has a case for every rule', () => {
    expect(RULES.sort()).toEqual(['shard-stale-declaration', 'shard-user-id']);
  });
});
