import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Sessions are refresh-token families: rotating a token keeps the session, reuse ends it. */
export class CreateSessions1732406700000 implements MigrationInterface {
  name = 'CreateSessions1732406700000';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query(`
      CREATE TABLE users.sessions (
        id uuid PRIMARY KEY,
        user_id uuid NOT NULL REFERENCES users.users (id) ON DELETE CASCADE,
        created_at timestamptz NOT NULL DEFAULT now(),
        revoked_at timestamptz,
        revoked_reason text
      )`);
    await runner.query(`CREATE INDEX sessions_user_idx ON users.sessions (user_id)`);
    // Only a SHA-256 of each refresh token is stored.
    await runner.query(`
      CREATE TABLE users.refresh_tokens (
        token_hash bytea PRIMARY KEY,
        session_id uuid NOT NULL REFERENCES users.sessions (id) ON DELETE CASCADE,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        used_at timestamptz
      )`);
    await runner.query(`CREATE INDEX refresh_tokens_session_idx ON users.refresh_tokens (session_id)`);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`DROP TABLE users.refresh_tokens`);
    await runner.query(`DROP TABLE users.sessions`);
  }
}
