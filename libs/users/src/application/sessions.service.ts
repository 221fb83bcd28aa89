import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import {
  accessTokenSignerFor,
  APP_CONFIG,
  OutboxPublisher,
  SessionRevocationStore,
  type AccessTokenSigner,
  type AppConfig,
  type Role,
  type SessionStatusSource,
} from '@app/platform';
import type { DataSource, EntityManager } from 'typeorm';
import { UserEvents, type SessionRevokedV1 } from '../contracts';
import { InvalidCredentialsError, InvalidRefreshTokenError } from '../domain/user.errors';
import { LoginThrottle } from './login-throttle';
import { PasswordHasher } from './password-hasher';
import { usersSettings } from '../users.settings';

export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  tokenType: 'Bearer';
  expiresIn: number;
}

const hashToken = (token: string) => createHash('sha256').update(token).digest();

/**
 * Sign-in, refresh-token rotation and sign-out. A session is a refresh-token family:
 * every refresh marks the presented token used and issues a new one; presenting a used
 * token again is treated as theft and ends the whole session. Ending a session is
 * written to Postgres and published (users.session-revoked.v1) in one transaction; the
 * revocation key in Redis is set at once and again by the module's own consumer, so it
 * reaches Redis even if Redis was down at that moment. A session also has an absolute
 * lifetime from its login (SESSION_MAX_LIFETIME_S): refreshing never extends it, and no
 * refresh or access token of the session is valid after it.
 */
@Injectable()
export class SessionsService implements SessionStatusSource {
  /** This module is the only one holding the private key (docs/architecture.md, "Authentication"). */
  private readonly tokens: AccessTokenSigner;
  /** Verified when the email is unknown, so both failures cost the same time. */
  private readonly decoyHash: Promise<string>;

  constructor(
    @InjectDataSource('users') private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly hasher: PasswordHasher,
    private readonly throttle: LoginThrottle,
    private readonly outbox: OutboxPublisher,
    private readonly revocations: SessionRevocationStore,
  ) {
    this.tokens = accessTokenSignerFor(config, usersSettings(config).USERS_TOKEN_SIGNING_KEY);
    this.decoyHash = hasher.hash(randomBytes(16).toString('hex'));
  }

  async login(email: string, password: string, clientIp: string): Promise<TokenPair> {
    // The attempt is counted before the password is checked, so concurrent guesses cannot
    // all pass the limit check; a right password then gives its place back.
    const attempt = await this.throttle.reserve(email, clientIp);
    let user: { id: string; role: Role; password_hash: string } | undefined;
    let valid: boolean;
    try {
      [user] = await this.dataSource.query<{ id: string; role: Role; password_hash: string }[]>(
        'SELECT id, role, password_hash FROM users.users WHERE lower(email) = lower($1)',
        [email.trim()],
      );
      valid = await this.hasher.verify(user?.password_hash ?? (await this.decoyHash), password);
    } catch (error) {
      await this.throttle.settle(attempt, 'aborted');
      throw error;
    }
    if (!user || !valid) {
      await this.throttle.settle(attempt, 'failure');
      throw new InvalidCredentialsError();
    }
    await this.throttle.settle(attempt, 'success');
    return this.dataSource.transaction(async (manager) => {
      const sessionId = randomUUID();
      const [session] = await manager.query<{ ends_at: Date }[]>(
        'INSERT INTO users.sessions (id, user_id) VALUES ($1, $2) RETURNING created_at + make_interval(secs => $3) AS ends_at',
        [sessionId, user.id, this.maxLifetimeS()],
      );
      const refreshToken = await this.issueRefreshToken(manager, sessionId);
      return this.pair(user.id, user.role, sessionId, refreshToken, session.ends_at);
    });
  }

  async refresh(refreshToken: string): Promise<TokenPair> {
    const outcome = await this.dataSource.transaction(async (manager) => {
      const [row] = await manager.query<
        { session_id: string; used_at: Date | null; expires_at: Date; revoked_at: Date | null; user_id: string; role: Role; ends_at: Date; ended: boolean }[]
      >(
        // The session's end is computed with the current SESSION_MAX_LIFETIME_S, so lowering
        // it also shortens sessions already open; the database clock decides.
        `SELECT t.session_id, t.used_at, t.expires_at, s.revoked_at, s.user_id, u.role,
                s.created_at + make_interval(secs => $2) AS ends_at,
                s.created_at + make_interval(secs => $2) <= now() AS ended
           FROM users.refresh_tokens t
           JOIN users.sessions s ON s.id = t.session_id
           JOIN users.users u ON u.id = s.user_id
          WHERE t.token_hash = $1
          FOR UPDATE OF t, s`,
        [hashToken(refreshToken), this.maxLifetimeS()],
      );
      if (!row || row.revoked_at) return { kind: 'invalid' as const };
      if (row.used_at) {
        // A rotated token came back: someone holds a copy. End the whole family.
        await this.endSession(manager, row.session_id, row.user_id, 'refresh-token-reuse');
        return { kind: 'reused' as const, sessionId: row.session_id };
      }
      if (new Date(row.expires_at).getTime() <= Date.now()) return { kind: 'invalid' as const };
      if (row.ended) return { kind: 'invalid' as const };
      await manager.query('UPDATE users.refresh_tokens SET used_at = now() WHERE token_hash = $1', [hashToken(refreshToken)]);
      const next = await this.issueRefreshToken(manager, row.session_id);
      return { kind: 'ok' as const, pair: this.pair(row.user_id, row.role, row.session_id, next, row.ends_at) };
    });
    if (outcome.kind === 'ok') return outcome.pair;
    if (outcome.kind === 'reused') await this.revokeEverywhere(outcome.sessionId);
    throw new InvalidRefreshTokenError();
  }

  async logout(sessionId: string, userId: string): Promise<void> {
    await this.dataSource.transaction((manager) => this.endSession(manager, sessionId, userId, 'logout'));
    await this.revokeEverywhere(sessionId);
  }

  /** Best effort now; the session-revoked event's consumer guarantees it later. */
  async revokeEverywhere(sessionId: string): Promise<void> {
    await this.revocations.revoke(sessionId).catch(() => undefined);
  }

  /** Ends every session of a user inside the caller's transaction (account erasure). */
  async endAllSessions(manager: EntityManager, userId: string): Promise<string[]> {
    const sessions = await manager.query<{ id: string }[]>('SELECT id FROM users.sessions WHERE user_id = $1 AND revoked_at IS NULL', [userId]);
    for (const { id } of sessions) await this.endSession(manager, id, userId, 'account-deleted');
    return sessions.map((s) => s.id);
  }

  /** The Postgres answer for the auth guard when Redis cannot be asked. */
  async isSessionActive(sessionId: string): Promise<boolean> {
    const rows = await this.dataSource.query('SELECT 1 FROM users.sessions WHERE id = $1 AND revoked_at IS NULL', [sessionId]);
    return rows.length === 1;
  }

  private async endSession(manager: EntityManager, sessionId: string, userId: string, reason: SessionRevokedV1['reason']): Promise<void> {
    await manager.query('UPDATE users.sessions SET revoked_at = now(), revoked_reason = $2 WHERE id = $1 AND revoked_at IS NULL', [sessionId, reason]);
    const payload: SessionRevokedV1 = { sessionId, userId, reason };
    await this.outbox.publish(manager, [{ type: UserEvents.sessionRevoked, payload }]);
  }

  private async issueRefreshToken(manager: EntityManager, sessionId: string): Promise<string> {
    const token = randomBytes(32).toString('base64url');
    // Never valid past the session's absolute end.
    await manager.query(
      `INSERT INTO users.refresh_tokens (token_hash, session_id, expires_at)
       SELECT $1, s.id, LEAST(now() + make_interval(secs => $3), s.created_at + make_interval(secs => $4))
         FROM users.sessions s WHERE s.id = $2`,
      [hashToken(token), sessionId, usersSettings(this.config).REFRESH_TOKEN_TTL_S, this.maxLifetimeS()],
    );
    return token;
  }

  private maxLifetimeS(): number {
    return usersSettings(this.config).SESSION_MAX_LIFETIME_S;
  }

  /** The access token expires with the session at the latest. */
  private pair(userId: string, role: Role, sessionId: string, refreshToken: string, sessionEndsAt: Date): TokenPair {
    const { token, expiresIn } = this.tokens.sign({ userId, role, sessionId }, { notAfter: Math.floor(new Date(sessionEndsAt).getTime() / 1000) });
    return { accessToken: token, refreshToken, tokenType: 'Bearer', expiresIn };
  }
}
