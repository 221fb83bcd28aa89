import createClient from 'openapi-fetch';
import type { components, paths } from './api';

/*
 * The README's walk-through, step by step, through a client generated from the API
 * document (api.d.ts, openapi-typescript; calls by openapi-fetch). It is type-checked
 * against the generated types, so a document that drifts from what clients send or read
 * breaks `tsc` before it breaks anyone (docs/api.md, "The API document").
 */

type Order = components['schemas']['OrderResponse'];
type Problem = components['schemas']['Problem'];
type Notification = components['schemas']['NotificationResponse'];

export interface JourneySteps {
  /** `npm run cli -- users:promote <email> && npm run seed`: operator commands, never the API. */
  promoteAndSeed(email: string): Promise<void>;
  /** Waits until `probe` gives a value (the notifications arrive through the outbox and a queue). */
  eventually<T>(probe: () => Promise<T | undefined>): Promise<T>;
}

export interface JourneyRecord {
  registered: components['schemas']['UserResponse'];
  emailTaken: { status: number; contentType: string | null; problem: Problem };
  productId: string;
  firstOrder: { status: number; order: Order };
  repeatedOrder: { status: number; order: Order; replayed: string | null };
  notifications: Notification[];
  stream: { status: number; contentType: string | null };
  adminProduct: { etag: string | null; updatedStock: number; staleStatus: number; stale: Problem };
}

const ada = { email: 'ada@example.com', password: 'correct horse battery', name: 'Ada' };

export async function runReadmeJourney(baseUrl: string, steps: JourneySteps): Promise<JourneyRecord> {
  const client = createClient<paths>({ baseUrl });

  // curl -si -X POST localhost:3000/v1/users -H 'X-Request-Id: demo-1' -d '{"email":"ada@example.com",…}'
  const signUp = await client.POST('/v1/users', { body: ada, headers: { 'X-Request-Id': 'demo-1' } });
  if (!signUp.data) throw new Error(`sign-up answered ${signUp.response.status}`);
  const registered = signUp.data;

  // The same address in capitals → 409 application/problem+json {"type":"/problems/user/email-taken",…}
  const again = await client.POST('/v1/users', { body: { ...ada, email: 'ADA@example.com' } });
  if (!again.error) throw new Error(`a second sign-up answered ${again.response.status}`);
  const emailTaken = { status: again.response.status, contentType: again.response.headers.get('content-type'), problem: again.error };

  // TOKEN=$(curl -s -X POST localhost:3000/v1/auth/login … | node -pe '….accessToken')
  const login = await client.POST('/v1/auth/login', { body: { email: ada.email, password: ada.password } });
  if (!login.data) throw new Error(`login answered ${login.response.status}`);
  const authorization = `${login.data.tokenType} ${login.data.accessToken}`;

  // npm run cli -- users:promote ada@example.com && npm run seed
  await steps.promoteAndSeed(ada.email);

  // PRODUCT=$(curl -s localhost:3000/v1/products -H "Authorization: Bearer $TOKEN" | node -pe '….items[0].id')
  const products = await client.GET('/v1/products', { headers: { Authorization: authorization } });
  if (!products.data) throw new Error(`the catalogue answered ${products.response.status}`);
  const productId = products.data.items[0].id;

  // curl -s -X POST localhost:3000/v1/orders -H 'Idempotency-Key: first-order' -d '{"items":[{"productId":"…","quantity":2}]}'
  const place = () =>
    client.POST('/v1/orders', {
      params: { header: { 'Idempotency-Key': 'first-order' } },
      body: { items: [{ productId, quantity: 2 }] },
      headers: { Authorization: authorization },
    });
  const first = await place();
  if (!first.data) throw new Error(`placing the order answered ${first.response.status}`);
  // "repeat it: same 201 body, header Idempotent-Replayed: true"
  const repeat = await place();
  if (!repeat.data) throw new Error(`repeating the order answered ${repeat.response.status}`);

  // curl -s localhost:3000/v1/notifications -H "Authorization: Bearer $TOKEN"   # welcome + order placed
  const notifications = await steps.eventually(async () => {
    const page = await client.GET('/v1/notifications', { headers: { Authorization: authorization } });
    const kinds = new Set(page.data?.items.map((n) => n.kind));
    return kinds.has('welcome') && kinds.has('order-placed') ? page.data!.items : undefined;
  });

  // curl -sN localhost:3000/v1/notifications/stream -H "Authorization: Bearer $TOKEN"   # live (SSE)
  const abort = new AbortController();
  const live = await client.GET('/v1/notifications/stream', { headers: { Authorization: authorization }, parseAs: 'stream', signal: abort.signal });
  const stream = { status: live.response.status, contentType: live.response.headers.get('content-type') };
  abort.abort();
  await live.data?.cancel().catch(() => undefined);

  // Beyond the README's curl lines: the admin Ada now is (a fresh token carries the role)
  // adds a product and sets its stock under If-Match, the ETag flow of docs/api.md.
  const adminLogin = await client.POST('/v1/auth/login', { body: { email: ada.email, password: ada.password } });
  if (!adminLogin.data) throw new Error(`the admin login answered ${adminLogin.response.status}`);
  const admin = { Authorization: `${adminLogin.data.tokenType} ${adminLogin.data.accessToken}` };
  const created = await client.POST('/v1/products', {
    body: { sku: 'ADA-NOTEBOOK', name: "Ada's notebook", priceCents: 1250, currency: 'EUR', stock: 3 },
    headers: admin,
  });
  if (!created.data) throw new Error(`creating a product answered ${created.response.status}`);
  const etag = created.response.headers.get('etag');
  const update = (ifMatch: string) =>
    client.PATCH('/v1/products/{id}', { params: { path: { id: created.data.id }, header: { 'If-Match': ifMatch } }, body: { stock: 10 }, headers: admin });
  const updated = await update(etag ?? '*');
  if (!updated.data) throw new Error(`setting the stock answered ${updated.response.status}`);
  const stale = await update(etag ?? '*');
  if (!stale.error) throw new Error(`a stale If-Match answered ${stale.response.status}`);

  return {
    registered,
    emailTaken,
    productId,
    firstOrder: { status: first.response.status, order: first.data },
    repeatedOrder: { status: repeat.response.status, order: repeat.data, replayed: repeat.response.headers.get('idempotent-replayed') },
    notifications,
    stream,
    adminProduct: { etag, updatedStock: updated.data.stock, staleStatus: stale.response.status, stale: stale.error },
  };
}
