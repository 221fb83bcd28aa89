import { createHmac } from 'node:crypto';
import request from 'supertest';
import { uniqueEmail } from './test-env';

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

/** Builds a JWT by hand, to forge the tokens the API must refuse. */
export function forgeToken(header: Record<string, unknown>, claims: Record<string, unknown>, secret: string | null): string {
  const body = `${b64(header)}.${b64(claims)}`;
  if (secret === null) return `${body}.`;
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}

export function decodeClaims(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8')) as Record<string, unknown>;
}
