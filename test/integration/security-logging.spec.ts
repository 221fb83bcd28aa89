import { generateKeyPairSync, randomBytes } from 'node:crypto';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import request from 'supertest';
import { QueryFailedError } from 'typeorm';
import { ConfigError, createRootLogger, loadConfig } from '@app/platform';
import { MODULE_MANIFESTS } from '@app/manifests';
import { createApiApp } from '../../apps/api/src/api.app';
import { createTestDatabase, deleteRedisPrefix, query, testConfig } from '../support/test-env';
import { signUpAndLogin } from '../support/auth-helpers';

const tag = () => randomBytes(6).toString('hex');

/**
 * Issue 12: no personal data or secrets in logs. pino's error serializer used to copy
 * TypeORM's `QueryFailedError.parameters` (password hashes, emails, webhook secrets) and
 * Postgres' `detail` (`Failing row contains (…)`) into the log line of any unexpected
 * database error; config errors echoed rejected values (a secret variable, URLs with
 * passwords).
 */
describe('Security: what is logged', () => {
  describe('the root logger', () => {
    const capture = () => {
      const lines: string[] = [];
      return { lines, logger: createRootLogger('info', {}, { write: (line: string) => void lines.push(line) }) };
    };

    it('drops the bound parameters and the row detail of a failed query, keeps what explains it', () => {
      const { lines, logger } = capture();
      const driverError = Object.assign(new Error('new row for relation "users" violates check constraint "users_name_chk"'), {
        code: '23514',
        constraint: 'users_name_chk',
        detail: 'Failing row contains (ada.secret@example.com, $argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA, Ada).',
        parameters: ['ada.secret@example.com'],
      });
      const error = new QueryFailedError('INSERT INTO users.users (email, password_hash, name) VALUES ($1, $2, $3)', ['ada.secret@example.com', '$argon2id$v=19$hash', 'whsec_supersecret'], driverError);
      logger.error({ err: error }, 'unhandled error while serving a request');
      expect(lines).toHaveLength(1);
      expect(lines[0]).not.toMatch(/ada\.secret|argon2|whsec_|Failing row/);
      const line = JSON.parse(lines[0]) as { err: Record<string, unknown> };
      expect(line.err).toMatchObject({ type: 'QueryFailedError', code: '23514', query: expect.stringContaining('INSERT INTO users.users') });
      expect(line.err.message).toContain('users_name_chk');
      expect(line.err).not.toHaveProperty('parameters');
    });

    it('drops the arguments of a failed Redis command and redacts credentials by name', () => {
      const { lines, logger } = capture();
      const redisError = Object.assign(new Error('WRONGTYPE Operation against a key holding the wrong kind of value'), {
        command: { name: 'set', args: ['mm:users:profile:v1:1', '{"name":"Ada Lovelace"}'] },
      });
      logger.warn({ err: redisError }, 'cache write failed');
      logger.info(
        {
          req: { headers: { authorization: 'Bearer eyJhbGciOi.secret.token', cookie: 'mm_bull_board=secret-cookie' } },
          body: { email: 'x@example.com', password: 'correct horse battery' },
          refreshToken: 'refresh-secret',
          webhookSecret: 'whsec_abc',
          config: { USERS_TOKEN_SIGNING_KEY: '-----BEGIN PRIVATE KEY-----MC4CAQAwBQYDK2VwBCIEI' },
          privateKey: 'MC4CAQAwBQYDK2VwBCIEI-key-material',
        },
        'request',
      );
      const text = lines.join('\n');
      expect(text).not.toMatch(/Ada Lovelace|eyJhbGciOi|secret-cookie|correct horse|refresh-secret|whsec_abc|MC4CAQAw/);
      expect(JSON.parse(lines[0]).err.command).toEqual({ name: 'set' });
      expect(JSON.parse(lines[1])).toMatchObject({ req: { headers: { authorization: '[redacted]' } }, body: { password: '[redacted]' } });
    });
  });

  describe('an unexpected database error while serving a request', () => {
    let db: string;
    let app: NestFastifyApplication;
    let url: string;
    let prefix: string;
    const lines: string[] = [];

    beforeAll(async () => {
      db = await createTestDatabase();
      const config = testConfig(db, { env: { NOTIFICATIONS_ALLOW_PRIVATE_WEBHOOKS: 'true' } });
      prefix = config.env.REDIS_KEY_PREFIX;
      // The production logger (createRootLogger), writing into this test.
      app = await createApiApp(config, createRootLogger('info', {}, { write: (line: string) => void lines.push(line) }));
      await app.listen({ port: 0, host: '127.0.0.1' });
      url = `http://127.0.0.1:${(app.getHttpServer().address() as { port: number }).port}`;
      // Make some writes fail on purpose, in ways the code does not expect.
      await query(db, `ALTER TABLE users.users ADD CONSTRAINT security_test_reject CHECK (name <> 'Reject Me')`);
      await query(db, `ALTER TABLE notifications.preferences ADD CONSTRAINT security_test_reject CHECK (webhook_url NOT LIKE '%reject-me%')`);
    });
    afterAll(async () => {
      await app?.close();
      await deleteRedisPrefix(process.env.TEST_REDIS_URL!, prefix);
    });

    it('logs the failure with its request id, but not the email, name, password hash or password bound to the query', async () => {
      const email = `leaky-${tag()}@example.com`;
      const password = `pw-${tag()}-long-enough`;
      const response = await request(url).post('/v1/users').set('X-Request-Id', 'leak-check-1').send({ email, password, name: 'Reject Me' }).expect(500);
      expect(JSON.stringify(response.body)).not.toContain(email);
      const logged = lines.filter((line) => line.includes('"requestId":"leak-check-1"'));
      const failure = logged.find((line) => line.includes('unhandled error'));
      expect(failure).toBeDefined();
      expect(failure).toContain('security_test_reject');
      expect(failure).toContain('23514');
      const text = logged.join('\n');
      expect(text).not.toContain(email);
      expect(text).not.toContain(password);
      expect(text).not.toContain('Reject Me');
      expect(text).not.toMatch(/argon2/);
    });

    it('does not log a webhook secret bound to a failing query', async () => {
      const user = await signUpAndLogin(url, 'Hooked');
      await request(url)
        .put('/v1/notifications/preferences')
        .set('Authorization', `Bearer ${user.accessToken}`)
        .set('X-Request-Id', 'leak-check-2')
        .send({ email: true, webhookUrl: 'http://127.0.0.1:9/reject-me' })
        .expect(500);
      const logged = lines.filter((line) => line.includes('"requestId":"leak-check-2"'));
      expect(logged.some((line) => line.includes('security_test_reject'))).toBe(true);
      expect(logged.join('\n')).not.toMatch(/whsec_/);
    });
  });

  describe('configuration errors', () => {
    const load = (env: Record<string, string>) => () => loadConfig(env, MODULE_MANIFESTS);
    /** The ConfigError's message (fails if the environment is accepted). */
    const refusal = (env: Record<string, string>): string => {
      try {
        loadConfig(env, MODULE_MANIFESTS);
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        return (error as Error).message;
      }
      throw new Error(`accepted ${JSON.stringify(env)}`);
    };

    it('name a malformed USERS_TOKEN_SIGNING_KEY without quoting it', () => {
      const secret = 'short-but-secret-value';
      expect(load({ USERS_TOKEN_SIGNING_KEY: secret })).toThrow(ConfigError);
      expect(load({ USERS_TOKEN_SIGNING_KEY: secret })).toThrow(/USERS_TOKEN_SIGNING_KEY not a PEM or JWK private key \(value not shown\)/);
      expect(load({ USERS_TOKEN_SIGNING_KEY: secret })).not.toThrow(new RegExp(secret));
      // A real key of a kind the product does not sign with: named, not quoted.
      const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
      const message = refusal({ USERS_TOKEN_SIGNING_KEY: rsa });
      expect(message).toMatch(/USERS_TOKEN_SIGNING_KEY unsupported key type rsa/);
      expect(message).not.toContain(rsa.split('\n')[1]);
    });

    it('never quote a password variable', () => {
      expect(load({ USERS_DB_PASSWORD: 'hunter2' })).toThrow(/USERS_DB_PASSWORD .*value not shown/);
      expect(load({ USERS_DB_PASSWORD: 'hunter2' })).not.toThrow(/hunter2/);
    });

    it('quote URLs without their password', () => {
      expect(load({ DATABASE_URL: 'mysql://admin:hunter2-db@db.internal/app' })).toThrow('DATABASE_URL must match pattern "^postgres(ql)?://" (got "mysql://admin:***@db.internal/app")');
      expect(refusal({ REDIS_URL: 'http://:redis-pass@cache:6379' })).toContain('REDIS_URL must match pattern "^rediss?://" (got "http://:***@cache:6379")');
      expect(refusal({ USERS_DATABASE_URL: 'mysql://u:module-pass@db/app' })).toContain('USERS_DATABASE_URL must match pattern "^postgres(ql)?://" (got "mysql://u:***@db/app")');
      expect(refusal({ SMTP_URL: 'ftp://mailer:smtp-pass@mail.example.com' })).toContain('SMTP_URL must match pattern "^smtps?://" (got "ftp://mailer:***@mail.example.com")');
      expect(refusal({ REDIS_URL: 'http://api-token@cache' })).toContain('(got "http://***@cache")');
    });

    it('still quote values that are not secret', () => {
      expect(load({ PORT: 'eighty' })).toThrow('PORT must be integer (got "eighty")');
    });
  });
});
