// Fixtures that scenarios set up through the product's own public API.

/** Thrown when the product does not (yet) offer what a scenario needs: the scenario is skipped. */
export class ProductNotReady extends Error {
  name = 'ProductNotReady';
}

/** One HTTP call to a server under test; returns { status, headers, text, json }. */
export async function http(baseUrl, { method = 'GET', path, headers = {}, body } = {}) {
  const init = { method, headers: { ...headers }, signal: AbortSignal.timeout(15_000) };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    init.headers['content-type'] ??= 'application/json';
  }
  const response = await fetch(baseUrl + path, init);
  const text = await response.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: Object.fromEntries(response.headers), text, json };
}

export async function expectStatus(baseUrl, request, status) {
  const response = await http(baseUrl, request);
  if (response.status !== status) {
    throw new ProductNotReady(`${request.method ?? 'GET'} ${request.path} answered ${response.status} (expected ${status}): ${response.text.slice(0, 300)}`);
  }
  return response;
}

/**
 * A registered user (created once per run, kept in ctx.shared) and a fresh access token
 * from the product's login endpoint: { id, email, name, password, accessToken }.
 */
export async function signedInUser(ctx) {
  ctx.shared.user ??= await (async () => {
    const user = { email: `${ctx.config.benchId}@bench.example.com`, password: 'bench-password-1234', name: 'Bench User' };
    const created = await expectStatus(ctx.product.url, { method: 'POST', path: '/v1/users', body: user }, 201);
    return { ...user, id: created.json.id };
  })();
  const { email, password } = ctx.shared.user;
  const login = await expectStatus(ctx.product.url, { method: 'POST', path: '/v1/auth/login', body: { email, password } }, 200);
  if (typeof login.json?.accessToken !== 'string') throw new ProductNotReady(`POST /v1/auth/login gave no accessToken: ${login.text.slice(0, 300)}`);
  return { ...ctx.shared.user, accessToken: login.json.accessToken };
}
