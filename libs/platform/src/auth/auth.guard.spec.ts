import type { AuthenticatedRequest } from './auth.decorators';
import { startRevocationLookup } from './auth.guard';
import type { SessionRevocationStore } from './session-revocation.store';

/** The lookahead the rate-limit guard starts (the decision stays with AuthGuard on the verified token). */
describe('startRevocationLookup', () => {
  const jwt = (payload: unknown) => `eyJhbGciOiJFZERTQSJ9.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.c2ln`;
  const requestWith = (authorization?: string) => ({ headers: authorization === undefined ? {} : { authorization } }) as unknown as AuthenticatedRequest;
  const store = (answer: () => Promise<boolean>) => {
    const looked: string[] = [];
    return { looked, revocations: { isRevoked: (sid: string) => (looked.push(sid), answer()) } as unknown as SessionRevocationStore };
  };

  it('looks up the session the (still unverified) token names, once', () => {
    const { looked, revocations } = store(async () => false);
    startRevocationLookup(requestWith(`Bearer ${jwt({ sid: 's-1', sub: 'u' })}`), revocations);
    expect(looked).toEqual(['s-1']);
  });

  it('starts nothing for a missing, malformed or sid-less token', () => {
    const { looked, revocations } = store(async () => false);
    for (const header of [undefined, 'Basic abc', 'Bearer not-a-jwt', 'Bearer a.%%%.c', `Bearer ${jwt({ sub: 'u' })}`, `Bearer ${jwt({ sid: 42 })}`, `Bearer ${jwt({ sid: 'x'.repeat(65) })}`]) {
      startRevocationLookup(requestWith(header), revocations);
    }
    expect(looked).toEqual([]);
  });

  it('leaves no unhandled rejection when the request is refused before anyone reads the answer', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const { revocations } = store(async () => {
        throw new Error('Postgres down too');
      });
      startRevocationLookup(requestWith(`Bearer ${jwt({ sid: 's-2' })}`), revocations);
      await new Promise((r) => setTimeout(r, 20));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
