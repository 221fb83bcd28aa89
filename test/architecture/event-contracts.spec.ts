import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Ajv from 'ajv';
import { checkContracts, compareSchemas, nextVersion, REPO_ROOT, updateContracts } from '../../scripts/event-contracts.cjs';
import { MODULE_MANIFESTS } from '@app/manifests';

/**
 * Event contracts cannot break silently (docs/architecture.md, "Event contracts"): every
 * published event version has a committed JSON Schema generated from its payload type,
 * and `npm run contracts:check` (this spec, in CI) fails on a breaking change to it.
 *
 * Each fixture under fixtures/contracts/<case>/ is a miniature repository: `before/` is
 * the state whose schemas were committed (the spec writes them with update), `after/`
 * holds only the files the change touches, copied over it.
 */
const FIXTURES = path.join(__dirname, 'fixtures/contracts');
const V1 = 'users.user-registered.v1';
const V2 = 'users.user-registered.v2';
const SCHEMAS = 'libs/users/src/contracts/events';
const breaking = (at: string, change: string) => `${V1} ${at}: ${change} (breaking; publish the new shape as ${V2})`;
const retired = (type: string) =>
  `${type}: ${SCHEMAS}/${type}.schema.json is committed but module "users" does not publish this version; ` +
  'a version is retired deliberately: remove it from the manifest, then delete its schema once no consumer declares it';
const missing = (type: string) => `${type}: no committed schema (${SCHEMAS}/${type}.schema.json); run npm run contracts:update`;

const roots: string[] = [];
afterAll(() => roots.forEach((root) => rmSync(root, { recursive: true, force: true })));

function copy(dir: string): string {
  const root = mkdtempSync(path.join(tmpdir(), 'event-contracts-'));
  roots.push(root);
  cpSync(dir, root, { recursive: true });
  return root;
}

/**
 * The shared `base/` with `<case>/before` (only the files that differ from it) on top,
 * its schemas committed, then `<case>/after` applied.
 */
function changed(name: string): string {
  const root = copy(path.join(FIXTURES, 'base'));
  if (existsSync(path.join(FIXTURES, name, 'before'))) cpSync(path.join(FIXTURES, name, 'before'), root, { recursive: true });
  expect(updateContracts({ root }).problems).toEqual([]);
  expect(checkContracts({ root }).problems).toEqual([]);
  cpSync(path.join(FIXTURES, name, 'after'), root, { recursive: true });
  return root;
}

const schemaText = (root: string, type: string) => readFileSync(path.join(root, SCHEMAS, `${type}.schema.json`), 'utf8');

// Every version the manifests publish (9 today; a generated module adds its own).
const PUBLISHED_VERSIONS = MODULE_MANIFESTS.reduce((n, m) => n + m.events.publishes.length, 0);

describe('Event contracts: the repository', () => {
  it('Repository_PassesTheCheck (every published version has its committed, current schema)', () => {
    const { problems, compared } = checkContracts();
    expect(problems).toEqual([]);
    expect(compared).toBe(PUBLISHED_VERSIONS);
  });

  it('EveryCommittedSchema_CompilesWithAjv_AndAcceptsOnlyItsPayload', () => {
    const ajv = new Ajv({ strict: true, allErrors: true });
    const files = ['users', 'orders', 'notifications'].flatMap((m) => {
      const dir = path.join(REPO_ROOT, 'libs', m, 'src/contracts/events');
      return existsSync(dir) ? readdirSync(dir).map((f) => path.join(dir, f)) : [];
    });
    expect(files.map((f) => path.basename(f)).sort()).toEqual([
      'orders.order-cancelled.v1.schema.json', 'orders.order-confirmed.v1.schema.json', 'orders.order-delivered.v1.schema.json',
      'orders.order-expired.v1.schema.json', 'orders.order-placed.v1.schema.json', 'orders.order-shipped.v1.schema.json',
      'users.session-revoked.v1.schema.json', 'users.user-deleted.v1.schema.json', 'users.user-registered.v1.schema.json',
    ]);
    for (const file of files) ajv.compile(JSON.parse(readFileSync(file, 'utf8')));

    const registered = ajv.compile(JSON.parse(readFileSync(path.join(REPO_ROOT, 'libs/users/src/contracts/events', `${V1}.schema.json`), 'utf8')));
    const payload = { userId: 'u1', email: 'ada@example.com', name: 'Ada', registeredAt: '2026-01-01T00:00:00.000Z' };
    expect(registered(payload)).toBe(true);
    expect(registered({ ...payload, email: undefined })).toBe(false);
    const cancelled = ajv.compile(JSON.parse(readFileSync(path.join(REPO_ROOT, 'libs/orders/src/contracts/events/orders.order-cancelled.v1.schema.json'), 'utf8')));
    const order = {
      orderId: 'o1', userId: 'u1', status: 'cancelled', previousStatus: 'pending', totalCents: 1200, currency: 'EUR',
      lines: [{ productId: 'p1', sku: 'SKU-1', name: 'Mug', quantity: 2, unitPriceCents: 600 }], occurredAt: '2026-01-01T00:00:00.000Z', reason: 'admin',
    };
    expect(cancelled(order)).toBe(true);
    expect(cancelled({ ...order, reason: 'robot' })).toBe(false);
    expect(cancelled({ ...order, lines: [{ ...order.lines[0], sku: 7 }] })).toBe(false);
  });

  it('TheCli_ChecksTheRepository_AndFailsWithTheMessages', () => {
    const ok = spawnSync(process.execPath, ['scripts/event-contracts.cjs', 'check'], { cwd: REPO_ROOT, encoding: 'utf8' });
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(new RegExp(`^event contracts: ok; ${PUBLISHED_VERSIONS} event version\\(s\\) compared in \\d+ ms\\n$`));

    const root = changed('field-removed');
    const bad = spawnSync(process.execPath, ['scripts/event-contracts.cjs', 'check', '--root', root], { cwd: REPO_ROOT, encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain(`✗ ${breaking('$.email', 'field removed')}\n`);
  });
});

describe('Event contracts: a breaking change to a published version fails, naming the event, the field and the change', () => {
  it.each([
    ['field-removed', [breaking('$.email', 'field removed')]],
    ['field-renamed', [breaking('$.email', 'field renamed to $.emailAddress')]],
    ['field-retyped', [breaking('$.registeredAt', 'type changed from string to number')]],
    ['field-made-required', [breaking('$.name', 'field made required')]],
    ['enum-narrowed', [breaking('$.role', 'enum narrowed: "support" removed')]],
    // Widening is breaking too: an old consumer (rolling deploy, extracted service) gets a value it does not know.
    ['enum-widened', [breaking('$.role', 'enum widened: "guest" added')]],
    ['nested-field-removed', [breaking('$.addresses[*].postcode', 'field removed')]],
  ])('%s', (name, expected) => {
    const root = changed(name);
    const before = schemaText(root, V1);
    expect(checkContracts({ root }).problems).toEqual(expected);
    // update refuses it too: the committed schema stays as published.
    expect(updateContracts({ root })).toEqual({ problems: expected, written: [], compared: 1 });
    expect(schemaText(root, V1)).toBe(before);
  });
});

describe('Event contracts: compatible changes and new versions', () => {
  it('optional-field-added: the check asks for update, update records it, then the check passes', () => {
    const root = changed('optional-field-added');
    expect(checkContracts({ root }).problems).toEqual([
      `${V1} $.locale: optional field added (compatible; run npm run contracts:update to record it)`,
    ]);
    expect(updateContracts({ root })).toEqual({ problems: [], written: [`${SCHEMAS}/${V1}.schema.json`], compared: 1 });
    const schema = JSON.parse(schemaText(root, V1));
    expect(schema.properties.locale).toEqual({ description: 'BCP 47 language tag, when the user chose one.', type: 'string' });
    expect(schema.required).toEqual(['userId', 'email', 'role', 'addresses', 'registeredAt']);
    expect(checkContracts({ root }).problems).toEqual([]);
  });

  it('new-version: the new shape as v2 passes once its schema is written; v1 stays untouched', () => {
    const root = changed('new-version');
    const v1 = schemaText(root, V1);
    expect(checkContracts({ root }).problems).toEqual([missing(V2)]);
    expect(updateContracts({ root })).toEqual({ problems: [], written: [`${SCHEMAS}/${V2}.schema.json`], compared: 2 });
    expect(schemaText(root, V1)).toBe(v1);
    expect(JSON.parse(schemaText(root, V2)).required).toEqual(['userId', 'emailAddress', 'role', 'addresses', 'registeredAt']);
    expect(checkContracts({ root }).problems).toEqual([]);
  });

  it('missing-schema: a published version without a committed schema fails', () => {
    const root = changed('missing-schema');
    expect(checkContracts({ root }).problems).toEqual([missing('users.user-renamed.v1')]);
  });
});

describe('Event contracts: retiring versions', () => {
  it('stale-schema: a schema whose version is no longer published fails until it is deleted deliberately', () => {
    const root = changed('stale-schema');
    expect(checkContracts({ root }).problems).toEqual([retired(V1)]);
    // update never deletes a schema.
    expect(updateContracts({ root }).problems).toEqual([retired(V1)]);
    rmSync(path.join(root, SCHEMAS, `${V1}.schema.json`));
    expect(checkContracts({ root }).problems).toEqual([]);
  });

  it('consumed-version-removed: a version a consumer still declares cannot stop being published', () => {
    const root = changed('consumed-version-removed');
    const consumed = `event type "${V1}" consumed by module "notifications" is published by no module`;
    expect(checkContracts({ root }).problems).toEqual([consumed, missing(V2), retired(V1)]);
    // Even with v2's schema written and v1's deleted, the consumer's declaration still fails.
    rmSync(path.join(root, SCHEMAS, `${V1}.schema.json`));
    expect(updateContracts({ root }).problems).toEqual([consumed]);
    expect(checkContracts({ root }).problems).toEqual([consumed]);
  });
});

describe('Event contracts: the payload map (EventPayloads) matches the manifest', () => {
  it('payload-map-mismatch: a published type without payload type, and a payload type not published, both fail', () => {
    const root = changed('payload-map-mismatch');
    expect(checkContracts({ root }).problems).toEqual([
      'users.user-archived.v1: EventPayloads in libs/users/src/contracts/index.ts maps it but module "users" does not publish it; publish it in its manifest or remove the entry',
      'users.user-renamed.v1: published by module "users" but has no payload type; add it to EventPayloads in libs/users/src/contracts/index.ts',
    ]);
  });
});

describe('Event contracts: the generator', () => {
  const supported = path.join(FIXTURES, 'generator/supported');

  it('Generates_EverySupportedConstruct_AsTheCommittedFixtureSchema', () => {
    expect(checkContracts({ root: supported })).toEqual({ problems: [], written: [], compared: 1 });
    const root = copy(supported);
    rmSync(path.join(root, SCHEMAS), { recursive: true });
    expect(updateContracts({ root }).written).toEqual([`${SCHEMAS}/users.kitchen-sink.v1.schema.json`]);
    expect(schemaText(root, 'users.kitchen-sink.v1')).toBe(schemaText(supported, 'users.kitchen-sink.v1'));
    expect(() => new Ajv({ strict: true }).compile(JSON.parse(schemaText(root, 'users.kitchen-sink.v1')))).not.toThrow();
  });

  it('Refuses_EveryUnsupportedConstruct_NamingTheEventAndTheField', () => {
    const { problems, written } = updateContracts({ root: copy(path.join(FIXTURES, 'generator/unsupported')) });
    expect(written).toEqual([]);
    expect(problems).toEqual([
      'users.with-any.v1 $.value: unsupported type any',
      'users.with-unknown.v1 $.value: unsupported type unknown',
      'users.with-date.v1 $.at: unsupported type Date: a contract is plain data, not an object with methods (send dates as ISO-8601 strings)',
      'users.with-map.v1 $.labels: unsupported index signature in Record<string, string>: declare every field',
      'users.with-tuple.v1 $.pair: unsupported tuple [string, number]: use an array or an object',
      'users.with-function.v1 $.callback: () => void is a function, not data',
      'users.with-object-union.v1 $.shape: unsupported union Circle | Square: at most one object type and one array type (publish separate event types, or one object with optional fields)',
      'users.with-recursion.v1 $.tree.children[*]: recursive type TreeNode: a contract is a finite tree',
      'users.with-undefined.v1 $.value: undefined is not JSON: make the field optional (name?: T) instead',
      'users.not-an-object.v1 $: the payload must be an object type, not string',
    ]);
  });
});

describe('Event contracts: the comparison rules', () => {
  const object = (properties: Record<string, unknown>, required: string[]) => ({ type: 'object', properties, required });
  const str = { type: 'string' };

  it.each([
    ['a required field made optional', object({ a: str }, ['a']), object({ a: str }, []), [{ at: '$.a', change: 'field made optional', breaking: true }]],
    ['null added to a type', object({ a: str }, ['a']), object({ a: { type: ['string', 'null'] } }, ['a']), [{ at: '$.a', change: 'type changed from string to string | null', breaking: true }]],
    ['null removed from a type', object({ a: { type: ['string', 'null'] } }, []), object({ a: str }, []), [{ at: '$.a', change: 'type changed from string | null to string', breaking: true }]],
    ['a string narrowed to literals', object({ a: str }, []), object({ a: { type: 'string', enum: ['x'] } }, []), [{ at: '$.a', change: 'type narrowed from string to "x"', breaking: true }]],
    ['literals widened to a string', object({ a: { type: 'string', enum: ['x', 'y'] } }, []), object({ a: str }, []), [{ at: '$.a', change: 'type widened from "x" | "y" to string', breaking: true }]],
    ['an object turned into an array', object({ a: object({}, []) }, []), object({ a: { type: 'array', items: str } }, []), [{ at: '$.a', change: 'type changed from object to array', breaking: true }]],
    ['a required field added', object({}, []), object({ b: str }, ['b']), [{ at: '$.b', change: 'required field added', breaking: true }]],
    ['a nested array item retyped', object({ a: { type: 'array', items: object({ n: str }, ['n']) } }, []), object({ a: { type: 'array', items: object({ n: { type: 'number' } }, ['n']) } }, []), [{ at: '$.a[*].n', change: 'type changed from string to number', breaking: true }]],
    ['a description changed', object({ a: { description: 'old', ...str } }, []), object({ a: { description: 'new', ...str } }, []), [{ at: '$.a', change: 'description changed', breaking: false }]],
    ['an odd field name', object({ 'odd-name': str }, []), object({}, []), [{ at: '$["odd-name"]', change: 'field removed', breaking: true }]],
  ])('%s', (_name, before, after, expected) => {
    expect(compareSchemas(before, after)).toEqual(expected);
  });

  it('NextVersion_IsOneAboveTheHighestPublishedVersionOfThatEvent', () => {
    expect(nextVersion('users.user-registered.v1', ['users.user-registered.v1'])).toBe('users.user-registered.v2');
    expect(nextVersion('users.user-registered.v1', ['users.user-registered.v1', 'users.user-registered.v3', 'users.other.v7'])).toBe('users.user-registered.v4');
  });
});
