import type { MigrationInterface } from 'typeorm';
import { migrationNames, type ModuleDatabaseDefinition } from './module-database';

class CreateThings1700000000000 implements MigrationInterface {
  async up(): Promise<void> {}
  async down(): Promise<void> {}
}

class Renamed1700000000001 implements MigrationInterface {
  name = 'AddThingsIndex1700000000001';
  async up(): Promise<void> {}
  async down(): Promise<void> {}
}

const definition = (migrations: ModuleDatabaseDefinition['migrations']): ModuleDatabaseDefinition => ({ module: 'users', entities: [], migrations });

// The bootstrap skips a module whose history (read by the admin) already holds every one
// of these names, so they must be the names TypeORM records: `name`, else the class name.
describe('migrationNames', () => {
  it('gives the class name, or the migration’s own `name` when it sets one', () => {
    expect(migrationNames(definition([CreateThings1700000000000, Renamed1700000000001]))).toEqual([
      'CreateThings1700000000000',
      'AddThingsIndex1700000000001',
    ]);
  });

  it('accepts migrations given as an object of classes', () => {
    expect(migrationNames(definition({ a: CreateThings1700000000000 }))).toEqual(['CreateThings1700000000000']);
  });

  it('gives up (null) when a migration is a file path only TypeORM can resolve', () => {
    expect(migrationNames(definition([CreateThings1700000000000, 'dist/migrations/*.js']))).toBeNull();
  });
});
