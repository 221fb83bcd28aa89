import { createHmac, sign, type KeyObject } from 'node:crypto';
import request from 'supertest';
import { uniqueEmail } from './test-env';

export { keyPairEnv, TEST_SIGNING_KEY, testTokens } from './token-keys';

export interface SignedUpUser {
  id: string;
  email: string;
  password: string;
  accessToken: string;
  refreshToken: string;
}

export async function signUpAndLogin(baseUrl: string, name = 'Test User'): Promise<SignedUpUser> {
  const email = uniqueEmail('auth');
  const password = 'correct horse battery';
  const created = await request(baseUrl).post('/v1/users').send({ email, password, name }).expect(201);
  const login = await request(baseUrl).post('/v1/auth/login').send({ email, password }).expect(200);
  return { id: created.body.id, email, password, accessToken: login.body.accessToken, refreshToken: login.body.refreshToken };
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/**
 * Builds a JWT by hand, to forge the tokens the API must refuse: signed with a private
 * key (Ed25519 → EdDSA, P-256 → ES256, whatever the header claims), with an HMAC-SHA256
 * keyed by `key` (a string or bytes), or unsigned (`null`).
 */
export function forgeToken(header: Record<string, unknown>, claims: Record<string, unknown>, key: KeyObject | string | Buffer | null): string {
  const body = `${b64(header)}.${b64(claims)}`;
  if (key === null) return `${body}.`;
  if (typeof key === 'string' || Buffer.isBuffer(key)) return `${body}.${createHmac('sha256', key).update(body).digest('base64url')}`;
  const signature =
    key.asymmetricKeyType === 'ec' ? sign('sha256', Buffer.from(body), { key, dsaEncoding: 'ieee-p1363' }) : sign(null, Buffer.from(body), key);
  return `${body}.${signature.toString('base64url')}`;
}

export function decodeHeader(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString('utf8')) as Record<string, unknown>;
}

export function decodeClaims(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8')) as Record<string, unknown>;
}
