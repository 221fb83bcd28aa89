import { randomUUID, sign as cryptoSign, verify as cryptoVerify } from 'node:crypto';
import type { SigningKey, TokenAlgorithm, VerificationKey } from './token-keys';

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
  issuer: string;
  audience: string;
  ttlSeconds: number;
}

export class InvalidAccessTokenError extends Error {
  override name = 'InvalidAccessTokenError';
}

/** How far another machine's clock may run ahead of ours (iat, nbf). */
export const CLOCK_SKEW_S = 30;

const b64json = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** ES256 signatures are JOSE's raw r‖s, not DER. */
const signatureOptions = (alg: TokenAlgorithm) => (alg === 'ES256' ? { digest: 'sha256', dsaEncoding: 'ieee-p1363' as const } : { digest: null, dsaEncoding: undefined });

/**
 * Mints access tokens: a JWS signed with the one private key (EdDSA or ES256), its `kid`
 * in the header. Only the module that owns sessions holds a signer; every other process
 * only verifies (docs/architecture.md, "Authentication").
 */
export class AccessTokenSigner {
  constructor(
    private readonly key: SigningKey,
    private readonly settings: AccessTokenSettings,
  ) {}

  get kid(): string {
    return this.key.kid;
  }

  /** `notAfter` (epoch seconds): the token never outlives its session's absolute end. */
  sign(user: AuthenticatedUser, options: { notAfter?: number } = {}, now = Date.now()): { token: string; expiresIn: number } {
    const iat = Math.floor(now / 1000);
    const exp = Math.min(iat + this.settings.ttlSeconds, options.notAfter ?? Number.POSITIVE_INFINITY);
    const claims = {
      iss: this.settings.issuer,
      aud: this.settings.audience,
      sub: user.userId,
      role: user.role,
      sid: user.sessionId,
      iat,
      nbf: iat,
      exp,
      jti: randomUUID(),
    };
    const input = `${b64json({ alg: this.key.alg, typ: 'JWT', kid: this.key.kid })}.${b64json(claims)}`;
    const { digest, dsaEncoding } = signatureOptions(this.key.alg);
    const signature = cryptoSign(digest, Buffer.from(input), { key: this.key.privateKey, dsaEncoding });
    return { token: `${input}.${signature.toString('base64url')}`, expiresIn: Math.max(0, exp - iat) };
  }
}

/**
 * Verifies access tokens with public keys only. The header must name a known `kid`, and
 * `alg` must be exactly that key's algorithm: `none`, HS* (an HMAC keyed with the public
 * key) and any other algorithm fail before signature work. Then issuer, audience, expiry,
 * not-before, and `iat`: not in the future beyond CLOCK_SKEW_S, not older than the token
 * lifetime (so lowering ACCESS_TOKEN_TTL_S also shortens tokens already issued).
 * Written on node:crypto: `jose` is ESM-only (jest runs CommonJS here).
 */
export class AccessTokenVerifier {
  private readonly keys: ReadonlyMap<string, VerificationKey>;

  constructor(
    keys: readonly VerificationKey[],
    private readonly settings: AccessTokenSettings,
  ) {
    this.keys = new Map(keys.map((key) => [key.kid, key]));
  }

  get keyCount(): number {
    return this.keys.size;
  }

  verify(token: string, now = Date.now()): AuthenticatedUser {
    const parts = token.split('.');
    if (parts.length !== 3) throw new InvalidAccessTokenError('malformed token');
    const [header, payload, signature] = parts;
    let claims: Record<string, unknown>;
    try {
      const decodedHeader = JSON.parse(Buffer.from(header, 'base64url').toString('utf8')) as Record<string, unknown>;
      if (typeof decodedHeader !== 'object' || decodedHeader === null) throw new InvalidAccessTokenError('malformed header');
      if (decodedHeader.typ !== undefined && decodedHeader.typ !== 'JWT') throw new InvalidAccessTokenError('not a JWT');
      // Extensions we do not implement must not be ignored (RFC 7515 §4.1.11).
      if (decodedHeader.crit !== undefined) throw new InvalidAccessTokenError('critical header not supported');
      const key = typeof decodedHeader.kid === 'string' ? this.keys.get(decodedHeader.kid) : undefined;
      if (!key) throw new InvalidAccessTokenError('unknown key');
      if (decodedHeader.alg !== key.alg) throw new InvalidAccessTokenError('algorithm not allowed');
      const { digest, dsaEncoding } = signatureOptions(key.alg);
      const valid = cryptoVerify(digest, Buffer.from(`${header}.${payload}`), { key: key.publicKey, dsaEncoding }, Buffer.from(signature, 'base64url'));
      if (!valid) throw new InvalidAccessTokenError('bad signature');
      claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
      if (typeof claims !== 'object' || claims === null) throw new InvalidAccessTokenError('malformed claims');
    } catch (error) {
      if (error instanceof InvalidAccessTokenError) throw error;
      throw new InvalidAccessTokenError('malformed token');
    }
    const seconds = Math.floor(now / 1000);
    if (claims.iss !== this.settings.issuer) throw new InvalidAccessTokenError('wrong issuer');
    const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (!audiences.includes(this.settings.audience)) throw new InvalidAccessTokenError('wrong audience');
    if (typeof claims.exp !== 'number' || claims.exp <= seconds) throw new InvalidAccessTokenError('expired');
    if (claims.nbf !== undefined && (typeof claims.nbf !== 'number' || claims.nbf > seconds + CLOCK_SKEW_S)) throw new InvalidAccessTokenError('not yet valid');
    if (typeof claims.iat !== 'number') throw new InvalidAccessTokenError('no issue time');
    if (claims.iat > seconds + CLOCK_SKEW_S) throw new InvalidAccessTokenError('issued in the future');
    if (claims.iat < seconds - this.settings.ttlSeconds - CLOCK_SKEW_S) throw new InvalidAccessTokenError('issued too long ago');
    if (claims.exp > claims.iat + this.settings.ttlSeconds) throw new InvalidAccessTokenError('lifetime too long');
    if (typeof claims.sub !== 'string' || typeof claims.sid !== 'string') throw new InvalidAccessTokenError('missing claims');
    if (claims.role !== 'customer' && claims.role !== 'admin') throw new InvalidAccessTokenError('unknown role');
    return { userId: claims.sub, role: claims.role, sessionId: claims.sid, expiresAt: claims.exp * 1000 };
  }
}
