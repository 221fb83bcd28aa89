import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Indexes the retention rules walk (persistence/users.retention.ts): ended sessions by the
 * time they ended, refresh tokens by expiry. Without them each batch scans the table.
 */
export class SessionRetentionIndexes1764900000000 implements MigrationInterface {
  name = 'SessionRetentionIndexes1764900000000';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(`CREATE INDEX sessions_revoked_at_idx ON users.sessions (revoked_at) WHERE revoked_at IS NOT NULL`);
    await runner.query(`CREATE INDEX sessions_created_at_idx ON users.sessions (created_at)`);
    await runner.query(`CREATE INDEX refresh_tokens_expires_at_idx ON users.refresh_tokens (expires_at)`);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`DROP INDEX users.refresh_tokens_expires_at_idx`);
    await runner.query(`DROP INDEX users.sessions_created_at_idx`);
    await runner.query(`DROP INDEX users.sessions_revoked_at_idx`);
  }
}
