import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto';

/**
 * Keys of the access tokens (docs/architecture.md, "Authentication"): asymmetric only, so
 * that verifying a token never needs the key that mints one. Ed25519 (JWS `EdDSA`) by
 * default; ECDSA P-256 (`ES256`) is accepted for deployments whose key store only makes
 * those. Every key is known by its RFC 7638 JWK thumbprint (`kid`), computed from the key
 * itself, so the signer and every verifier agree on it without configuring ids.
 */
export type TokenAlgorithm = 'EdDSA' | 'ES256';

/** A public key a verifier trusts. */
export interface VerificationKey {
  kid: string;
  alg: TokenAlgorithm;
  publicKey: KeyObject;
}

/** The private key of the one module that mints access tokens, with its public half. */
export interface SigningKey extends VerificationKey {
  privateKey: KeyObject;
}

/** A key that cannot be used; the message never contains key material. */
export class TokenKeyError extends Error {
  override name = 'TokenKeyError';
}

export function keyAlgorithm(key: KeyObject): TokenAlgorithm {
  if (key.asymmetricKeyType === 'ed25519') return 'EdDSA';
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256';
  throw new TokenKeyError(`unsupported key type ${key.asymmetricKeyType ?? key.type} (use Ed25519, or EC P-256)`);
}

/** RFC 7638 thumbprint: SHA-256 of the required members in lexicographic order. */
export function keyId(publicKey: KeyObject): string {
  const jwk = publicKey.export({ format: 'jwk' });
  const members = jwk.kty === 'OKP' ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x } : { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y };
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}

function verificationKey(publicKey: KeyObject): VerificationKey {
  return { kid: keyId(publicKey), alg: keyAlgorithm(publicKey), publicKey };
}

function signingKeyOf(privateKey: KeyObject): SigningKey {
  if (privateKey.type !== 'private') throw new TokenKeyError('not a private key');
  return { ...verificationKey(createPublicKey(privateKey)), privateKey };
}

/** The public half as a JWK, for `GET /.well-known/jwks.json` and AUTH_PUBLIC_KEYS. */
export function publicJwk(key: VerificationKey): JsonWebKey & { kid: string; alg: TokenAlgorithm; use: 'sig' } {
  const { kty, crv, x, y } = key.publicKey.export({ format: 'jwk' });
  return { kty, crv, x, ...(y === undefined ? {} : { y }), kid: key.kid, alg: key.alg, use: 'sig' };
}

export function publicKeyPem(key: VerificationKey): string {
  return key.publicKey.export({ format: 'pem', type: 'spki' }).toString();
}

/** PKCS#8 PEM, the form a module's token signing key variable takes when a key is generated. */
export function privateKeyPem(key: SigningKey): string {
  return key.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
}

/** A fresh Ed25519 key pair (development starts without a configured key, tests). */
export function generateSigningKey(): SigningKey {
  return signingKeyOf(generateKeyPairSync('ed25519').privateKey);
}

const PEM_BLOCK = /-----BEGIN ([A-Z ]+)-----[\s\S]+?-----END \1-----/g;

/** Environment variables often carry PEMs with literal `\n`; accept both forms. */
const unescapeNewlines = (text: string) => text.replace(/\\n/g, '\n').trim();

/**
 * A signing key from configuration: a PEM private key (PKCS#8 `PRIVATE KEY` or SEC1
 * `EC PRIVATE KEY`) or a private JWK (with `d`).
 */
export function parseSigningKey(text: string): SigningKey {
  const value = unescapeNewlines(text);
  try {
    if (value.startsWith('{')) {
      const jwk = JSON.parse(value) as JsonWebKey;
      if (typeof jwk.d !== 'string') throw new TokenKeyError('the JWK has no private part ("d")');
      return signingKeyOf(createPrivateKey({ key: jwk, format: 'jwk' }));
    }
    return signingKeyOf(createPrivateKey({ key: value, format: 'pem' }));
  } catch (error) {
    if (error instanceof TokenKeyError) throw error;
    throw new TokenKeyError('not a PEM or JWK private key');
  }
}

/**
 * The public key set from configuration: a JWKS (`{"keys":[…]}`), a JSON array of JWKs,
 * one JWK, or one or more PEM public keys one after the other. Several keys let a
 * rotation publish the next key everywhere before the signer switches to it.
 */
export function parsePublicKeys(text: string): VerificationKey[] {
  const value = unescapeNewlines(text);
  let keys: KeyObject[];
  try {
    if (value.startsWith('{') || value.startsWith('[')) {
      const parsed = JSON.parse(value) as { keys?: unknown } | unknown[];
      const list = Array.isArray(parsed) ? parsed : Array.isArray((parsed as { keys?: unknown }).keys) ? ((parsed as { keys: unknown[] }).keys) : [parsed];
      keys = list.map((jwk) => {
        if ((jwk as JsonWebKey).d !== undefined) throw new TokenKeyError('a JWK in the public key set has a private part ("d"): publish public keys only');
        return createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
      });
    } else {
      const blocks = value.match(PEM_BLOCK) ?? [];
      if (blocks.length === 0) throw new TokenKeyError('no PEM block or JSON key found');
      keys = blocks.map((block) => {
        if (/PRIVATE KEY-----/.test(block)) throw new TokenKeyError('a PEM private key in the public key set: publish public keys only');
        return createPublicKey({ key: block, format: 'pem' });
      });
    }
  } catch (error) {
    if (error instanceof TokenKeyError) throw error;
    throw new TokenKeyError('not a JWKS, JWK or PEM public key');
  }
  if (keys.length === 0) throw new TokenKeyError('the key set is empty');
  const unique = new Map<string, VerificationKey>();
  for (const key of keys) {
    const entry = verificationKey(key);
    unique.set(entry.kid, entry);
  }
  return [...unique.values()];
}
