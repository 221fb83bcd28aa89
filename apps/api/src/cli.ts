import 'reflect-metadata';
import { parseArgs } from 'node:util';
import { Module, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  ConfigError,
  createRootLogger,
  DeadLetterNotFoundError,
  declaredFlags,
  describeRule,
  FlagAdmin,
  EventOperations,
  loadConfig,
  parseIsoTime,
  PlatformModule,
  UsageError,
  type DeadLetterBatchResult,
  type DeadLetterOutcome,
  type DomainModuleName,
} from '@app/platform';
import { MODULE_MANIFESTS } from '@app/manifests';
import { DemoCatalogueSeeder, OrdersModule } from '@app/orders';
import { ProfilesService, UsersModule } from '@app/users';
import type { INestApplicationContext } from '@nestjs/common';

const USAGE = `usage: npm run cli -- <command>
  users:promote <email>   make an existing account an admin (the only way to get one)
  catalogue:seed          load the demo catalogue (also: npm run seed)
  events:replay --module <module> --since <time> [--until <time>] [--type <event-type>]
      publish again the module's kept outbox events with since <= occurred_at < until
      (a running instance of the module publishes them); consumers that handled an
      event already ignore it. An event still in a consumer's failed set is a dead
      letter there: replay it with events:dead-letters
  events:dead-letters list [--module <module>] [--type <event-type>] [--limit <n>]
      counts by module and type (newest failure, last error), then the newest dead letters
  events:dead-letters show <event-id>
      the envelope and the error, in every module where the event is a dead letter
  events:dead-letters replay <event-id> | --all [--module <module>] [--type <event-type>]
      deliver again with fresh attempts, once the cause is fixed; the row goes
  events:dead-letters discard <event-id> | --all --module <module> [--type <event-type>]
      give the event up for that module: the row and its failed job go
  flags:list
      every declared flag: its state on this database (on, off, a rollout, or the default)
  flags:set <flag> on|off|default
      on or off for everyone; default removes the override. Every instance applies it
      within seconds, without a restart (docs/architecture.md, "Feature flags")
  flags:rollout <flag> <percent> [--users <id>,<id>...]
      on for <percent>% of users (stable per user id) and for the named users
      (--users replaces the list; --users '' empties it; without it the list is kept)
  <time>: ISO 8601 with a zone (2024-05-01T12:00:00Z, 2024-05-01T14:00:00+02:00) or a date (midnight UTC)
exit status: 0 done, 64 usage error, 1 failure (nothing found, or some dead letters failed)`;

type Out = (line: string) => void;

interface NestCommand {
  kind: 'nest';
  module: DomainModuleName;
  nest: Type;
  run(app: INestApplicationContext, args: string[], out: Out): Promise<void>;
}

/** Works on the event backbone of any module without booting one (no relay, no consumer here). */
interface EventsCommand {
  kind: 'events';
  run(ops: EventOperations, args: string[], out: Out): Promise<void>;
}

/** Reads and writes platform.flags (as the platform role); running instances pick changes up. */
interface FlagsCommand {
  kind: 'flags';
  run(admin: FlagAdmin, args: string[], out: Out): Promise<void>;
}

const COMMANDS: Record<string, NestCommand | EventsCommand | FlagsCommand> = {
  'users:promote': {
    kind: 'nest',
    module: 'users',
    nest: UsersModule,
    async run(app, [email], out) {
      if (!email) throw new ConfigError(USAGE);
      const user = await app.get(ProfilesService).promote(email);
      out(`promoted ${email} (user ${user.id}) to admin`);
    },
  },
  'catalogue:seed': {
    kind: 'nest',
    module: 'orders',
    nest: OrdersModule,
    async run(app, _args, out) {
      const created = await app.get(DemoCatalogueSeeder).seed(out);
      out(`catalogue seeded: ${created} new product(s)`);
    },
  },
  'events:replay': {
    kind: 'events',
    async run(ops, args, out) {
      const { values } = flags('events:replay', args, { module: 'string', since: 'string', until: 'string', type: 'string' }, 0);
      const module = ops.assertModule(values.module);
      const since = parseIsoTime(values.since, '--since');
      const until = values.until === undefined ? undefined : parseIsoTime(values.until, '--until');
      const type = values.type === undefined ? undefined : ops.assertEventTypeShape(values.type);
      const result = await ops.replayOutbox({ module, since, until, type });
      const window = `occurred at or after ${since.toISOString()}${until ? ` and before ${until.toISOString()}` : ''}`;
      if (result.total === 0) {
        out(`no published ${type ?? ''}${type ? ' ' : ''}events of module ${module} ${window}: nothing queued for replay`);
        return;
      }
      out(`${result.total} event(s) of module ${module} ${window} queued for replay:`);
      table(out, ['TYPE', 'EVENTS'], [...result.byType].map(([t, count]) => [t, String(count)]));
      out(`a running instance with module ${module} enabled publishes them; consumers that handled one already ignore it`);
    },
  },
  'flags:list': {
    kind: 'flags',
    async run(admin, args, out) {
      flags('flags:list', args, {}, 0);
      const listing = await admin.list();
      table(out, ['FLAG', 'STATE', 'DEFAULT', 'UPDATED', 'WHAT'],
        listing.map((f) => [f.key, describeRule(f.rule, f.default), f.default ? 'on' : 'off', f.rule ? f.rule.updatedAt.toISOString() : '-', f.description]));
      for (const rule of await admin.undeclared()) out(`note: platform.flags has a row for "${rule.key}", which no manifest declares (ignored)`);
    },
  },
  'flags:set': {
    kind: 'flags',
    async run(admin, args, out) {
      const { positionals } = flags('flags:set', args, {}, 2);
      const [key, state] = positionals;
      const declared = admin.assertDeclared(key);
      if (state !== 'on' && state !== 'off' && state !== 'default') {
        throw new UsageError(`flags:set ${key} needs on, off or default${state ? ` (got "${state}")` : ''}`);
      }
      const before = await admin.get(declared.key);
      await admin.set(declared.key, state);
      out(`${declared.key}: ${describeRule(before, declared.default)} -> ${describeRule(await admin.get(declared.key), declared.default)}`);
      out('every running instance applies it within seconds (FLAGS_REFRESH_INTERVAL_MS at most)');
    },
  },
  'flags:rollout': {
    kind: 'flags',
    async run(admin, args, out) {
      const { values, positionals } = flags('flags:rollout', args, { users: 'string' }, 2);
      const [key, percent] = positionals;
      const declared = admin.assertDeclared(key);
      if (percent === undefined || !/^\d{1,3}$/.test(percent) || Number(percent) > 100) {
        throw new UsageError(`flags:rollout ${key} needs a percentage from 0 to 100${percent === undefined ? '' : ` (got "${percent}")`}`);
      }
      const users = values.users === undefined ? undefined : values.users.split(',').map((u) => u.trim()).filter(Boolean);
      const before = await admin.get(declared.key);
      await admin.rollout(declared.key, Number(percent), users);
      const after = await admin.get(declared.key);
      out(`${declared.key}: ${describeRule(before, declared.default)} -> ${describeRule(after, declared.default)}${after?.userIds.length ? ` (named: ${after.userIds.join(', ')})` : ''}`);
      out('every running instance applies it within seconds (FLAGS_REFRESH_INTERVAL_MS at most)');
    },
  },
  'events:dead-letters': {
    kind: 'events',
    async run(ops, [action, ...args], out) {
      const run = DEAD_LETTER_ACTIONS[action ?? ''];
      if (!run) {
        throw new UsageError(`events:dead-letters needs an action: list, show, replay or discard${action ? ` (got "${action}")` : ''}`);
      }
      await run(ops, args, out);
    },
  },
};

const DEAD_LETTER_ACTIONS: Record<string, (ops: EventOperations, args: string[], out: Out) => Promise<void>> = {
  async list(ops, args, out) {
    const { values } = flags('events:dead-letters list', args, { module: 'string', type: 'string', limit: 'string' }, 0);
    const limit = values.limit === undefined ? 50 : Number(values.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new UsageError(`--limit "${values.limit}" must be an integer from 1 to 10000`);
    const filter = { module: values.module, type: values.type };
    const groups = await ops.deadLetterGroups(filter);
    if (groups.length === 0) {
      out(`no dead letters${describeFilter(filter)}`);
      return;
    }
    out(`dead letters by module and type${describeFilter(filter)}:`);
    table(out, ['MODULE', 'TYPE', 'COUNT', 'NEWEST FAILURE', 'LAST ERROR'],
      groups.map((g) => [g.module, g.eventType, String(g.count), g.newestFailedAt.toISOString(), firstLine(g.lastError)]));
    const rows = await ops.listDeadLetters(filter, limit);
    const total = groups.reduce((sum, g) => sum + g.count, 0);
    out('');
    out(`newest dead letters (at most ${limit} per module; ${total} in all):`);
    table(out, ['EVENT ID', 'MODULE', 'TYPE', 'ATTEMPTS', 'FAILED AT', 'ERROR'],
      rows.map((r) => [r.eventId, r.module, r.eventType, String(r.attempts), r.failedAt.toISOString(), firstLine(r.error)]));
  },

  async show(ops, args, out) {
    const { positionals } = flags('events:dead-letters show', args, {}, 1);
    const letters = await ops.findDeadLetters(ops.assertEventId(positionals[0]));
    if (letters.length === 0) throw new DeadLetterNotFoundError(`no dead letter with event id ${positionals[0]} in any module (${ops.modules.join(', ')})`);
    for (const letter of letters) {
      out(`dead letter ${letter.eventId} in module ${letter.module}`);
      out(`  type:      ${letter.eventType}`);
      out(`  attempts:  ${letter.attempts}`);
      out(`  failed at: ${letter.failedAt.toISOString()}`);
      out(`  error:     ${letter.error.split('\n').join('\n             ')}`);
      out('  envelope:');
      out(JSON.stringify(letter.envelope, null, 2).replace(/^/gm, '    '));
    }
  },

  async replay(ops, args, out) {
    const target = deadLetterTarget(ops, 'replay', args);
    if ('eventId' in target) {
      const done = await ops.replayDeadLetter(target.eventId, target.module);
      for (const d of done) out(`replayed ${describe(d)}: queued again with fresh attempts`);
      return;
    }
    report(out, 'replayed', await ops.replayDeadLetters(target), target);
  },

  async discard(ops, args, out) {
    const target = deadLetterTarget(ops, 'discard', args);
    if ('eventId' in target) {
      const done = await ops.discardDeadLetter(target.eventId, target.module);
      for (const d of done) out(`discarded ${describe(d)}`);
      return;
    }
    if (!target.module) throw new UsageError('discard --all needs --module <module>: discarding every module\'s dead letters at once is not allowed');
    report(out, 'discarded', await ops.discardDeadLetters({ ...target, module: target.module }), target);
  },
};

/** `<event-id> [--module m]` or `--all [--module m] [--type t]`, never both. */
function deadLetterTarget(ops: EventOperations, action: string, args: string[]): { eventId: string; module?: string } | { module?: string; type?: string } {
  const { values, positionals } = flags(`events:dead-letters ${action}`, args, { all: 'boolean', module: 'string', type: 'string' }, 1);
  const module = values.module === undefined ? undefined : ops.assertModule(values.module);
  if (values.all && positionals.length) throw new UsageError(`events:dead-letters ${action} takes an event id or --all, not both`);
  if (values.all) return { module, type: values.type === undefined ? undefined : ops.assertEventTypeShape(values.type) };
  if (!positionals.length) throw new UsageError(`events:dead-letters ${action} needs an event id or --all`);
  if (values.type !== undefined) throw new UsageError('--type selects dead letters for --all only; an event id names one event already');
  return { eventId: ops.assertEventId(positionals[0]), module };
}

function report(out: Out, verb: string, result: DeadLetterBatchResult, filter: { module?: string; type?: string }): void {
  for (const d of result.done) out(`${verb} ${describe(d)}`);
  for (const f of result.failed) out(`FAILED ${describe(f)}: ${firstLine(f.error)} (the dead letter stays)`);
  out(`${result.done.length} dead letter(s) ${verb}${describeFilter(filter)}${result.failed.length ? `, ${result.failed.length} failed` : ''}`);
  if (result.failed.length) process.exitCode = 1;
}

function describe(outcome: DeadLetterOutcome): string {
  return `${outcome.eventId} (${outcome.eventType}) in module ${outcome.module}`;
}

function describeFilter(filter: { module?: string; type?: string }): string {
  const parts = [filter.module && `module ${filter.module}`, filter.type && `type ${filter.type}`].filter(Boolean);
  return parts.length ? ` (${parts.join(', ')})` : '';
}

const firstLine = (text: string) => text.split('\n', 1)[0];

function table(out: Out, header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  for (const row of [header, ...rows]) out(`  ${row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]))).join('  ')}`);
}

/** Strict flag parsing: an unknown flag, a missing value or a stray argument is a usage error. */
function flags<T extends Record<string, 'string' | 'boolean'>>(command: string, args: string[], spec: T, maxPositionals: number) {
  const options = Object.fromEntries(Object.entries(spec).map(([name, type]) => [name, { type }])) as { [K in keyof T]: { type: T[K] } };
  let parsed: { values: { [K in keyof T]?: T[K] extends 'boolean' ? boolean : string }; positionals: string[] };
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true }) as typeof parsed;
  } catch (error) {
    const known = Object.keys(spec).map((f) => `--${f}`).join(', ') || 'no flags';
    // Node's first sentence names the problem ("Unknown option '--x'"); the rest is about `--`.
    const problem = (error instanceof Error ? error.message : String(error)).split('. ')[0];
    throw new UsageError(`${command}: ${problem} (it takes ${known})`);
  }
  if (parsed.positionals.length > maxPositionals) {
    throw new UsageError(`${command}: unexpected argument "${parsed.positionals[maxPositionals]}"`);
  }
  return parsed;
}

/** Operator commands that must never be reachable through the API. */
async function run(argv: string[]): Promise<void> {
  const [name, ...args] = argv;
  const command = name ? COMMANDS[name] : undefined;
  if (!command) throw new ConfigError(name ? `unknown command "${name}"\n${USAGE}` : USAGE);
  const out: Out = (line) => process.stdout.write(`${line}\n`);
  if (command.kind === 'flags') {
    const admin = new FlagAdmin(loadConfig({ ...process.env, MODULES_ENABLED: undefined }, MODULE_MANIFESTS), declaredFlags(MODULE_MANIFESTS));
    try {
      await command.run(admin, args, out);
    } finally {
      await admin.close();
    }
    return;
  }
  if (command.kind === 'events') {
    // Every module's database, whatever this host runs: dead letters live in consumer modules.
    const ops = new EventOperations(loadConfig({ ...process.env, MODULES_ENABLED: undefined }, MODULE_MANIFESTS), MODULE_MANIFESTS);
    try {
      await command.run(ops, args, out);
    } finally {
      await ops.close();
    }
    return;
  }
  const config = loadConfig({ ...process.env, MODULES_ENABLED: command.module }, MODULE_MANIFESTS);
  const logger = createRootLogger(config.env.LOG_LEVEL === 'info' ? 'warn' : config.env.LOG_LEVEL);
  @Module({ imports: [PlatformModule.forRoot(config, logger, MODULE_MANIFESTS), command.nest] })
  class CliModule {}
  const app = await NestFactory.createApplicationContext(CliModule, { logger: false });
  try {
    await command.run(app, args, out);
  } finally {
    await app.close();
  }
}

run(process.argv.slice(2)).then(
  () => process.exit(process.exitCode ?? 0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(error instanceof ConfigError ? 64 : 1);
  },
);
