import { interval, type AppConfig, type RetentionRule } from '@app/platform';
import { usersSettings } from '../users.settings';

/**
 * What the users module deletes as it ages (run by the platform's RetentionSweeper with
 * the outbox, inbox and dead letters; docs/architecture.md "Retention"):
 * - refresh tokens ENDED_SESSION_RETENTION after they expired: until then a used one is
 *   what detects a stolen token being replayed (sessions.service.ts);
 * - sessions ENDED_SESSION_RETENTION after they ended, by sign-out or revocation or by
 *   reaching SESSION_MAX_LIFETIME_S; their refresh tokens go with them (ON DELETE
 *   CASCADE). A deleted session is as ended as a revoked one: the guard's revocation
 *   check and refresh both look for a live row.
 */
export function usersRetentionRules(config: AppConfig): RetentionRule[] {
  const { ENDED_SESSION_RETENTION, SESSION_MAX_LIFETIME_S } = usersSettings(config);
  const kept = interval(ENDED_SESSION_RETENTION);
  return [
    {
      table: 'refresh_tokens',
      sql: `DELETE FROM users.refresh_tokens WHERE token_hash IN (
              SELECT token_hash FROM users.refresh_tokens WHERE expires_at < now() - $2::interval
               ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)`,
      params: [kept],
    },
    {
      table: 'sessions',
      sql: `DELETE FROM users.sessions WHERE id IN (
              SELECT id FROM users.sessions WHERE revoked_at < now() - $2::interval
               ORDER BY revoked_at LIMIT $1 FOR UPDATE SKIP LOCKED)`,
      params: [kept],
    },
    {
      table: 'sessions',
      sql: `DELETE FROM users.sessions WHERE id IN (
              SELECT id FROM users.sessions WHERE created_at < now() - $2::interval - $3::interval
               ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED)`,
      params: [`${SESSION_MAX_LIFETIME_S} seconds`, kept],
    },
  ];
}
