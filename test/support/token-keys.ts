import {
  AccessTokenSigner,
  accessTokenSettings,
  generateSigningKey,
  privateKeyPem,
  publicKeyPem,
  type AppConfig,
  type SigningKey,
} from '@app/platform';

/**
 * The key pair of this jest worker's in-process apps (testConfig sets both variables):
 * what a deployment puts in USERS_TOKEN_SIGNING_KEY and AUTH_PUBLIC_KEYS.
 */
export const TEST_SIGNING_KEY = generateSigningKey();

/** Environment for a key pair: the signer (runs users) gets both, every other process the public key only. */
export function keyPairEnv(key: SigningKey = generateSigningKey()): { signer: Record<string, string>; verifier: Record<string, string> } {
  const verifier = { AUTH_PUBLIC_KEYS: publicKeyPem(key) };
  return { signer: { ...verifier, USERS_TOKEN_SIGNING_KEY: privateKeyPem(key) }, verifier };
}

/** Mints access tokens with the test key, for apps that trust it (no users module needed). */
export function testTokens(config: AppConfig, key: SigningKey = TEST_SIGNING_KEY): AccessTokenSigner {
  return new AccessTokenSigner(key, accessTokenSettings(config));
}
