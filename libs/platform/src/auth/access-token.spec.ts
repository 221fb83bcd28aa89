import { generateKeyPairSync, sign } from 'node:crypto';
import { AccessTokenSigner, AccessTokenVerifier, InvalidAccessTokenError } from './access-token';
import { generateSigningKey, parseSigningKey, type SigningKey } from './token-keys';

const settings = { issuer: 'mm-api', audience: 'mm-clients', ttlSeconds: 900 };
const user = { userId: 'u-1', role: 'customer' as const, sessionId: 's-1' };
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const p256 = (): SigningKey => parseSigningKey(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString());

describe('AccessTokenSigner / AccessTokenVerifier', () => {
  it.each([
    ['EdDSA (Ed25519)', generateSigningKey],
    ['ES256 (P-256)', p256],
  ])('%s: a signed token verifies with the public key alone', (_name, make) => {
    const key = make();
    const { token } = new AccessTokenSigner(key, settings).sign(user);
    const publicOnly = { kid: key.kid, alg: key.alg, publicKey: key.publicKey };
    const exp = Number(JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).exp);
    expect(new AccessTokenVerifier([publicOnly], settings).verify(token)).toEqual({ ...user, expiresAt: exp * 1000 });
    // Another key of the same kind, even under the same kid, is refused.
    const other = make();
    expect(() => new AccessTokenVerifier([{ ...publicOnly, publicKey: other.publicKey }], settings).verify(token)).toThrow(InvalidAccessTokenError);
  });

  it('ES256 signatures are JOSE r‖s: a DER signature is refused', () => {
    const key = p256();
    const input = `${b64({ alg: 'ES256', typ: 'JWT', kid: key.kid })}.${b64({ ...claims(), sub: 'u-1' })}`;
    const der = sign('sha256', Buffer.from(input), key.privateKey); // node's default encoding: DER
    expect(() => new AccessTokenVerifier([key], settings).verify(`${input}.${der.toString('base64url')}`)).toThrow(InvalidAccessTokenError);
  });

  it('caps exp at notAfter (the session end), and verification refuses exp beyond iat + ttl', () => {
    const key = generateSigningKey();
    const now = Date.now();
    const signed = new AccessTokenSigner(key, settings).sign(user, { notAfter: Math.floor(now / 1000) + 60 }, now);
    expect(signed.expiresIn).toBe(60);
    const long = new AccessTokenSigner(key, { ...settings, ttlSeconds: 86_400 }).sign(user, {}, now).token;
    expect(() => new AccessTokenVerifier([key], settings).verify(long, now)).toThrow('lifetime too long');
  });

  it.each([
    ['iat in the future', { iat: 120 }, 'issued in the future'],
    ['iat missing', { iat: undefined }, 'no issue time'],
    ['iat older than the ttl', { iat: -1000, exp: 60 }, 'issued too long ago'],
    ['nbf in the future', { nbf: 120 }, 'not yet valid'],
  ])('refuses %s', (_name, shift, reason) => {
    const key = generateSigningKey();
    const now = Math.floor(Date.now() / 1000);
    const values = claims();
    for (const [name, delta] of Object.entries(shift)) (values as Record<string, unknown>)[name] = delta === undefined ? undefined : now + delta;
    const input = `${b64({ alg: 'EdDSA', typ: 'JWT', kid: key.kid })}.${b64(values)}`;
    const token = `${input}.${sign(null, Buffer.from(input), key.privateKey).toString('base64url')}`;
    expect(() => new AccessTokenVerifier([key], settings).verify(token)).toThrow(reason);
  });
});

function claims() {
  const now = Math.floor(Date.now() / 1000);
  return { iss: 'mm-api', aud: 'mm-clients', sub: 'u-1', role: 'customer', sid: 's-1', iat: now, nbf: now, exp: now + 600 };
}
