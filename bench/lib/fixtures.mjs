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
  let response = await http(baseUrl, request);
  // Set-up requests shed by an API still busy from the previous load: wait as told, a few times.
  for (let tries = 0; response.status === 503 && status !== 503 && tries < 5; tries++) {
    await new Promise((r) => setTimeout(r, 1000 * Math.min(5, Number(response.headers['retry-after']) || 1)));
    response = await http(baseUrl, request);
  }
  if (response.status !== status) {
    throw new ProductNotReady(`${request.method ?? 'GET'} ${request.path} answered ${response.status} (expected ${status}): ${response.text.slice(0, 300)}`);
  }
  return response;
}

/** Signs `user` ({ email, password }) in through the product's login endpoint; returns the access token. */
export async function login(ctx, { email, password }) {
  const response = await expectStatus(ctx.product.url, { method: 'POST', path: '/v1/auth/login', body: { email, password } }, 200);
  if (typeof response.json?.accessToken !== 'string') throw new ProductNotReady(`POST /v1/auth/login gave no accessToken: ${response.text.slice(0, 300)}`);
  return response.json.accessToken;
}

/** Registers a user through POST /v1/users once per run (kept in ctx.shared[key]). */
async function registeredUser(ctx, key, name) {
  ctx.shared[key] ??= await (async () => {
    const suffix = key === 'user' ? '' : `-${key}`;
    const user = { email: `${ctx.config.benchId}${suffix}@bench.example.com`, password: 'bench-password-1234', name };
    const created = await expectStatus(ctx.product.url, { method: 'POST', path: '/v1/users', body: user }, 201);
    return { ...user, id: created.json.id };
  })();
  return ctx.shared[key];
}

/**
 * A registered user (created once per run, kept in ctx.shared) and a fresh access token
 * from the product's login endpoint: { id, email, name, password, accessToken }. A customer.
 */
export async function signedInUser(ctx) {
  const user = await registeredUser(ctx, 'user', 'Bench User');
  return { ...user, accessToken: await login(ctx, user) };
}

/** Another customer, registered once per run under ctx.shared[key], with a fresh access token. */
export async function signedInCustomer(ctx, key) {
  const user = await registeredUser(ctx, key, `Bench ${key}`);
  return { ...user, accessToken: await login(ctx, user) };
}

/**
 * An admin: signed up through the API, promoted with `UPDATE users.users SET role = 'admin'`
 * on the run's database (there is no public way to become one), then signed in so the
 * token carries the role.
 */
export async function signedInAdmin(ctx) {
  const user = await registeredUser(ctx, 'admin', 'Bench Admin');
  if (!user.promoted) {
    const { rowCount } = await ctx.db.query(`UPDATE users.users SET role = 'admin' WHERE id = $1`, [user.id]);
    if (rowCount !== 1) throw new ProductNotReady(`could not promote ${user.email} to admin (users.users has no row ${user.id})`);
    user.promoted = true;
  }
  return { ...user, accessToken: await login(ctx, user) };
}

/**
 * What the order pairs need, created through the product's API once per run: `count`
 * products with plentiful stock (POST /v1/products as an admin, all at the same price)
 * and a signed-in customer. Returns { product (the first), products, customer, request }:
 * one `POST /v1/orders` of one line of quantity 1; with more than one product,
 * `request.bodies` holds one body per product (each load connection cycles through them).
 */
export async function orderFixture(ctx, { count = 1, customer: customerKey } = {}) {
  ctx.shared.orderProducts ??= [];
  const products = ctx.shared.orderProducts;
  if (products.length < count) {
    const admin = await signedInAdmin(ctx);
    while (products.length < count) {
      const body = { sku: `BENCH-${ctx.config.benchId}-${products.length + 1}`, name: `Bench product ${products.length + 1}`, priceCents: 1999, currency: 'EUR', stock: 100_000_000 };
      const created = await expectStatus(ctx.product.url, { method: 'POST', path: '/v1/products', headers: { authorization: `Bearer ${admin.accessToken}` }, body }, 201);
      if (typeof created.json?.id !== 'string') throw new ProductNotReady(`POST /v1/products gave no id: ${created.text.slice(0, 300)}`);
      products.push(created.json);
    }
  }
  // A scenario may want its own customer (its orders and notifications apart from the others').
  const customer = customerKey ? await signedInCustomer(ctx, customerKey) : await signedInUser(ctx);
  const used = products.slice(0, count);
  const bodyFor = (product) => ({ items: [{ productId: product.id, quantity: 1 }] });
  return {
    product: used[0],
    products: used,
    customer,
    request: {
      method: 'POST',
      path: '/v1/orders',
      headers: { authorization: `Bearer ${customer.accessToken}` },
      body: bodyFor(used[0]),
      ...(count > 1 ? { bodies: used.map(bodyFor) } : {}),
    },
  };
}
