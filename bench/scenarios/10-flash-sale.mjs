// Issue 11, "flash sale at scale": BENCH_FLASH_BUYERS (2 000) buyers, each with its own
// account, send one `POST /v1/orders` for the same product with stock 100 at the same
// moment (one connection each, all requests started at once). Goals: exactly 100 orders
// (counted in Postgres, not from the answers), the stock at 0, every other buyer told 409
// (out of stock) or 503 (shed under overload, with Retry-After), no other status, no
// timeout; and the p99 of the 409s: how fast a buyer learns it missed out.
//
// The buyers' access tokens are signed by the run with the product's own signing key
// (the API verifies them like any other: kid, alg, iss/aud/exp/iat, a session id whose
// revocation it checks), shaped after a token the API itself issued: 2 000 sign-ups would
// spend minutes in argon2 and measure nothing of the sale. A fresh product per round.
import { createPrivateKey, randomUUID, sign } from 'node:crypto';
import http from 'node:http';
import { ProductNotReady, signedInUser } from '../lib/fixtures.mjs';
import { latencySummary, percentile } from '../lib/stats.mjs';

const BUYERS = Number(process.env.BENCH_FLASH_BUYERS || 2000);
const STOCK = 100;
const TIMEOUT_MS = 60_000;

const b64url = (value) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** Tokens for `count` made-up customers, with the header and claims of a token the API issued. */
function buyerTokens(ctx, template, count) {
  const [headerPart, payloadPart] = template.split('.');
  const header = JSON.parse(Buffer.from(headerPart, 'base64url').toString());
  const claims = JSON.parse(Buffer.from(payloadPart, 'base64url').toString());
  const key = createPrivateKey(ctx.config.tokenKeys.privateKeyPem);
  const now = Math.floor(Date.now() / 1000);
  return Array.from({ length: count }, () => {
    const payload = { ...claims, sub: randomUUID(), sid: randomUUID(), role: 'customer', iat: now, nbf: claims.nbf === undefined ? undefined : now, exp: now + 3600 };
    if (claims.jti !== undefined) payload.jti = randomUUID();
    const input = `${b64url(header)}.${b64url(payload)}`;
    return `${input}.${sign(null, Buffer.from(input), key).toString('base64url')}`;
  });
}

export default {
  name: 'flash-sale',
  title: `flash sale: ${BUYERS.toLocaleString('en-US')} buyers at once on one product with stock ${STOCK}`,
  goal: { custom: true, text: `exactly ${STOCK} orders, stock 0, everyone else 409 or 503, no other status or timeout; p99 of the 409s (info)` },
  sides: [{ id: 'product', label: `POST /v1/orders x ${BUYERS} at once (req/s = answers per second of the burst)`, short: 'product', api: true }],
  settingsNote: () => `${BUYERS} buyers, one request each over its own connection, all started together; ${TIMEOUT_MS / 1000} s client timeout; SHED_* at the API's defaults`,

  async setup(ctx) {
    const user = await signedInUser(ctx);
    const tokens = buyerTokens(ctx, user.accessToken, BUYERS);
    // The made-up tokens pass the API's checks (or the pair measures nothing).
    const probe = await ctx.http(ctx.product.url, { method: 'GET', path: '/v1/orders?limit=1', headers: { authorization: `Bearer ${tokens[0]}` } });
    if (probe.status !== 200) throw new ProductNotReady(`a signed buyer token was refused: ${probe.status} ${probe.text.slice(0, 200)}`);
    return { tokens };
  },

  async measure(ctx, state, _sideId, { round, log }) {
    // The product goes in by SQL: the pair measures the sale, not the catalogue's admin API.
    const productId = randomUUID();
    await ctx.db.query(`INSERT INTO orders.products (id, sku, name, price_cents, currency, stock) VALUES ($1, $2, $3, 999, 'EUR', $4)`, [
      productId,
      `FLASH-${ctx.config.benchId}-${round}`,
      `Flash ${round}`,
      STOCK,
    ]);
    const body = JSON.stringify({ items: [{ productId, quantity: 1 }] });
    // One socket per buyer (no keep-alive pool to queue them on the client side): a real crowd.
    const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
    const { hostname, port } = new URL(ctx.product.url);
    const post = (token) =>
      new Promise((resolve) => {
        const sent = process.hrtime.bigint();
        const elapsed = () => Number(process.hrtime.bigint() - sent) / 1e6;
        const req = http.request(
          { host: hostname, port, path: '/v1/orders', method: 'POST', agent, timeout: TIMEOUT_MS, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
          (response) => {
            response.resume();
            response.on('end', () => resolve({ status: response.statusCode, ms: elapsed(), retryAfter: response.headers['retry-after'] }));
            response.on('error', () => resolve({ status: 'error', ms: elapsed() }));
          },
        );
        req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
        req.on('error', (error) => resolve({ status: error.code === 'TIMEOUT' ? 'timeout' : 'error', ms: elapsed() }));
        req.end(body);
      });
    const started = process.hrtime.bigint();
    let answers;
    try {
      answers = await Promise.all(state.tokens.map(post));
    } finally {
      agent.destroy();
    }
    const wallMs = Number(process.hrtime.bigint() - started) / 1e6;

    const [{ orders }] = (await ctx.db.query('SELECT count(*)::int AS orders FROM orders.order_lines WHERE product_id = $1', [productId])).rows;
    const [{ stock }] = (await ctx.db.query('SELECT stock FROM orders.products WHERE id = $1', [productId])).rows;
    const statuses = {};
    for (const a of answers) statuses[a.status] = (statuses[a.status] ?? 0) + 1;
    const of = (status) => answers.filter((a) => a.status === status).map((a) => a.ms).sort((x, y) => x - y);
    const soldOut = of(409);
    const shed = answers.filter((a) => a.status === 503);
    const unexpected = Object.keys(statuses).filter((s) => !['201', '409', '503'].includes(s));
    const fmt = (ms) => (ms === undefined || ms === null ? '-' : `${ms.toFixed(1)} ms`);
    log(`statuses ${JSON.stringify(statuses)}, ${orders} orders, stock ${stock}, ${Math.round(wallMs)} ms for the burst`);
    const goals = [
      { id: 'orders', goal: `orders written (exactly ${STOCK})`, value: String(orders), met: orders === STOCK },
      { id: 'stock', goal: 'stock left (0)', value: String(stock), met: stock === 0 },
      { id: '201', goal: `201 answers (= orders)`, value: String(statuses[201] ?? 0), met: (statuses[201] ?? 0) === orders },
      { id: 'others', goal: 'everyone else 409 or 503 (with Retry-After); no other status, no timeout', value: unexpected.length ? unexpected.map((s) => `${statuses[s]} x ${s}`).join(', ') : `${soldOut.length} x 409, ${shed.length} x 503`, met: unexpected.length === 0 && shed.every((a) => a.retryAfter) },
      { id: 'p99-409', goal: 'p99 of the 409s (info)', value: `${fmt(percentile(soldOut, 99))} (p50 ${fmt(percentile(soldOut, 50))})`, met: null },
      { id: 'p99-201', goal: 'p99 of the 201s (info)', value: fmt(percentile(of(201), 99)), met: null },
      { id: 'wall', goal: 'whole burst, first send to last answer (info)', value: `${Math.round(wallMs)} ms`, met: null },
    ];
    const stats = { reqPerSec: answers.length / (wallMs / 1000), latencyMs: latencySummary(answers.map((a) => a.ms)), cpuUsPerRequest: null, statuses };
    return { stats, goals, problems: orders > STOCK ? [`oversold: ${orders} orders for stock ${STOCK}`] : [] };
  },
};
