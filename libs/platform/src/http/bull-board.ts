import { createBullBoard } from '@bull-board/api';
import { BullAdapter } from '@bull-board/api/bullAdapter';
import { FastifyAdapter as BullBoardAdapter } from '@bull-board/fastify';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AccessTokenVerifier, InvalidAccessTokenError, type AuthenticatedUser } from '../auth/access-token';
import { accessTokenVerifierFor } from '../auth/auth.guard';
import { ForbiddenRoleError, UnauthenticatedError } from '../auth/auth.errors';
import { SessionRevocationStore } from '../auth/session-revocation.store';
import type { AppConfig } from '../config/app-config';
import type { KindedDomainError } from '../errors/domain-error';
import { EventRouting } from '../messaging/module-manifest';
import { QueueFactory } from '../messaging/queue.factory';
import { domainErrorProblem } from './problem-details.filter';

export const BULL_BOARD_PATH = '/admin/queues';
/** HttpOnly, SameSite=Strict, scoped to the board: the browser's way to send the admin token. */
export const BULL_BOARD_COOKIE = 'mm_bull_board';
const LOGIN_PATH = `${BULL_BOARD_PATH}/login`;
const BEARER = /^Bearer ([A-Za-z0-9_.-]+)$/;
const TOKEN = /^[A-Za-z0-9_.-]{1,4096}$/;

/**
 * Bull Board at /admin/queues: every queue of every module's manifest (also modules this
 * process does not run), opened through the QueueFactory. Every board route (page, static
 * assets, JSON API) needs an admin access token, as `Authorization: Bearer` or as the
 * cookie that POST /admin/queues/login sets (a browser cannot add headers to a page load).
 * Plain Fastify routes in their own encapsulated scope: the hook guards only them, and Nest's
 * guards, filters and OpenAPI document never see them.
 */
export function mountBullBoard(app: NestFastifyApplication, config: AppConfig, title: string): void {
  const routing = app.get(EventRouting);
  const queues = app.get(QueueFactory);
  const revocations = app.get(SessionRevocationStore);
  const tokens = accessTokenVerifierFor(config);

  const board = new BullBoardAdapter().setBasePath(BULL_BOARD_PATH);
  createBullBoard({
    queues: routing
      .allQueues()
      .map(({ queue, module }) => new BullAdapter(queues.get(queue), { description: `owned by the ${module} module` })),
    serverAdapter: board,
    options: {
      uiConfig: {
        boardTitle: `${title}: queues`,
        hideDocsLink: true,
        miscLinks: [{ text: 'Sign out', url: `${BULL_BOARD_PATH}/logout` }],
      },
    },
  });

  // Returning the reply after sending tells Fastify to stop: no handler, no later hook.
  const authenticate = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    const result = await authorize(request, tokens, revocations);
    return result instanceof Error ? sendProblem(request, reply, result) : undefined;
  };

  void app.getHttpAdapter().getInstance().register(
    async (scope: FastifyInstance) => {
      await scope.register(async (login: FastifyInstance) => loginRoutes(login, tokens, revocations));
      await scope.register(async (guarded: FastifyInstance) => {
        guarded.addHook('onRequest', authenticate);
        await guarded.register(board.registerPlugin());
      });
    },
    { prefix: BULL_BOARD_PATH },
  );
}

/** The admin behind the request, or the error to answer with (401 / 403). */
async function authorize(request: FastifyRequest, tokens: AccessTokenVerifier, revocations: SessionRevocationStore): Promise<AuthenticatedUser | KindedDomainError> {
  const header = request.headers.authorization;
  // A header wins over the cookie, so an explicit (even bad) credential is never ignored.
  const token = header !== undefined ? BEARER.exec(header)?.[1] : readCookie(request.headers.cookie, BULL_BOARD_COOKIE);
  if (!token) return new UnauthenticatedError(`An admin access token is required: send it as a Bearer token, or sign in at ${LOGIN_PATH}.`);
  return checkToken(token, tokens, revocations);
}

async function checkToken(token: string, tokens: AccessTokenVerifier, revocations: SessionRevocationStore): Promise<AuthenticatedUser | KindedDomainError> {
  let user: AuthenticatedUser;
  try {
    user = tokens.verify(token);
  } catch (error) {
    if (error instanceof InvalidAccessTokenError) return new UnauthenticatedError('The access token is invalid or expired.');
    throw error;
  }
  if (await revocations.isRevoked(user.sessionId)) return new UnauthenticatedError('The session has ended; sign in again.');
  if (user.role !== 'admin') return new ForbiddenRoleError();
  return user;
}

function sendProblem(request: FastifyRequest, reply: FastifyReply, error: KindedDomainError): FastifyReply {
  const problem = domainErrorProblem(error, request.url.split('?')[0]);
  if (problem.status === 401) void reply.header('www-authenticate', 'Bearer');
  return reply
    .status(problem.status)
    .header('cache-control', 'no-store')
    .header('content-type', 'application/problem+json; charset=utf-8')
    .send(JSON.stringify(problem));
}

function readCookie(header: string | undefined, name: string): string | undefined {
  for (const part of header?.split(';') ?? []) {
    const index = part.indexOf('=');
    if (index > 0 && part.slice(0, index).trim() === name) return part.slice(index + 1).trim();
  }
  return undefined;
}

function cookie(request: FastifyRequest, value: string, maxAgeSeconds: number): string {
  // Secure whenever the admin reached us over https (X-Forwarded-Proto counts only from a
  // proxy TRUST_PROXY trusts); a plain-http port-forward to localhost would otherwise
  // never get the cookie back.
  const secure = request.protocol === 'https' ? '; Secure' : '';
  return `${BULL_BOARD_COOKIE}=${value}; Path=${BULL_BOARD_PATH}; Max-Age=${maxAgeSeconds}; HttpOnly; SameSite=Strict${secure}`;
}

/** Seconds until the (already verified) token expires: the cookie never outlives it. */
function secondsLeft(token: string): number {
  const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8')) as { exp: number };
  return Math.max(0, claims.exp - Math.floor(Date.now() / 1000));
}

const LOGIN_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex"><title>Queues: sign in</title>
<style>body{font:16px system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}textarea{width:100%;font:13px monospace}button{margin-top:.5rem;padding:.4rem 1rem}</style>
</head><body>
<h1>Queues</h1>
<p>Paste an <strong>admin</strong> access token (the <code>accessToken</code> of <code>POST /v1/auth/login</code>). It is kept in an HttpOnly cookie for this page only, until the token expires.</p>
<form method="post" action="${LOGIN_PATH}">
<textarea name="token" rows="6" required autofocus spellcheck="false" autocomplete="off"></textarea>
<button type="submit">Sign in</button>
</form>
</body></html>
`;

/**
 * GET /login: a form to paste an admin access token; POST /login checks it (admin, session
 * not revoked), sets the cookie and redirects to the board. A form POST rather than
 * `?token=` so the token never lands in URLs, proxy logs or browser history.
 * /logout clears the cookie (the session itself is ended by POST /v1/auth/logout).
 */
async function loginRoutes(scope: FastifyInstance, tokens: AccessTokenVerifier, revocations: SessionRevocationStore): Promise<void> {
  const form = 'application/x-www-form-urlencoded';
  if (!scope.hasContentTypeParser(form)) {
    scope.addContentTypeParser(form, { parseAs: 'string', bodyLimit: 16_384 }, (_request, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    });
  }
  const noStore = (reply: FastifyReply) => reply.header('cache-control', 'no-store');

  scope.get('/login', async (_request, reply) =>
    noStore(reply)
      .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
      .type('text/html; charset=utf-8')
      .send(LOGIN_PAGE),
  );

  scope.post('/login', async (request, reply) => {
    const given = (request.body as { token?: unknown } | undefined)?.token;
    const token = typeof given === 'string' ? given.trim() : '';
    if (!TOKEN.test(token)) return sendProblem(request, reply, new UnauthenticatedError('Send an admin access token as the `token` field.'));
    const result = await checkToken(token, tokens, revocations);
    if (result instanceof Error) return sendProblem(request, reply, result);
    return noStore(reply).header('set-cookie', cookie(request, token, secondsLeft(token))).redirect(`${BULL_BOARD_PATH}/`, 303);
  });

  // GET too: the board's "Sign out" entry is a plain link. Clearing a cookie is harmless.
  scope.route({
    method: ['GET', 'POST'],
    url: '/logout',
    handler: async (request, reply) => noStore(reply).header('set-cookie', cookie(request, '', 0)).redirect(LOGIN_PATH, 303),
  });
}
