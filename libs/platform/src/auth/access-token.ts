import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';

export type Role = 'customer' | 'admin';

/** What a verified access token says about its bearer. */
export interface AuthenticatedUser {
  userId: string;
  role: Role;
  /** The session (refresh-token family) this token belongs to; logout revokes it. */
  sessionId: string;
  /** When the verified access token expires (epoch ms); long-lived responses end there. */
  expiresAt?: number;
}

export interface AccessTokenSettings {
  secret: string;
  issuer: string;
  audience: string;
  ttlSeconds: number;
}

export class InvalidAccessTokenError extends Error {
  override name = 'InvalidAccessTokenError';
}

const HEADER = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');

/**
 * HS256 JWTs with the algorithm pinned: the header must say exactly HS256, so `alg: none`
 * and algorithm-confusion tokens fail before any signature work. Issuer, audience,
 * expiry and not-before are always checked. Written on node:crypto (60 lines) rather
 * than a library: `jose` is ESM-only (jest runs CommonJS here) and `jsonwebtoken` adds
 * nothing for one pinned algorithm. Signatures are compared in constant time.
 */
export class AccessTokens {
  constructor(private readonly settings: AccessTokenSettings) {}

  sign(user: AuthenticatedUser, now = Date.now()): { token: string; expiresIn: number } {
    const iat = Math.floor(now / 1000);
    const payload = {
      iss: this.settings.issuer,
      aud: this.settings.audience,
      sub: user.userId,
      role: user.role,
      sid: user.sessionId,
      iat,
      nbf: iat,
      exp: iat + this.settings.ttlSeconds,
      jti: randomUUID(),
    };
    const body = `${HEADER}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
    return { token: `${body}.${this.signature(body)}`, expiresIn: this.settings.ttlSeconds };
  }

  verify(token: string, now = Date.now()): AuthenticatedUser {
    const parts = token.split('.');
    if (parts.length !== 3) throw new InvalidAccessTokenError('malformed token');
    const [header, payload, signature] = parts;
    let claims: Record<string, unknown>;
    try {
      const decodedHeader = JSON.parse(Buffer.from(header, 'base64url').toString('utf8')) as Record<string, unknown>;
      if (decodedHeader.alg !== 'HS256') throw new InvalidAccessTokenError('algorithm not allowed');
      const expected = Buffer.from(this.signature(`${header}.${payload}`));
      const given = Buffer.from(signature);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new InvalidAccessTokenError('bad signature');
      claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
    } catch (error) {
      if (error instanceof InvalidAccessTokenError) throw error;
      throw new InvalidAccessTokenError('malformed token');
    }
    const seconds = Math.floor(now / 1000);
    if (claims.iss !== this.settings.issuer) throw new InvalidAccessTokenError('wrong issuer');
    const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (!audiences.includes(this.settings.audience)) throw new InvalidAccessTokenError('wrong audience');
    if (typeof claims.exp !== 'number' || claims.exp <= seconds) throw new InvalidAccessTokenError('expired');
    if (typeof claims.nbf === 'number' && claims.nbf > seconds + 30) throw new InvalidAccessTokenError('not yet valid');
    if (typeof claims.sub !== 'string' || typeof claims.sid !== 'string') throw new InvalidAccessTokenError('missing claims');
    if (claims.role !== 'customer' && claims.role !== 'admin') throw new InvalidAccessTokenError('unknown role');
    return { userId: claims.sub, role: claims.role, sessionId: claims.sid, expiresAt: claims.exp * 1000 };
  }

  private signature(input: string): string {
    return createHmac('sha256', this.settings.secret).update(input).digest('base64url');
  }
}
