import 'reflect-metadata';
import { Module, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ConfigError, createRootLogger, loadConfig, PlatformModule, type DomainModuleName } from '@app/platform';
import { MODULE_MANIFESTS } from '@app/manifests';
import { DemoCatalogueSeeder, OrdersModule } from '@app/orders';
import { ProfilesService, UsersModule } from '@app/users';
import type { INestApplicationContext } from '@nestjs/common';

const USAGE = `usage: npm run cli -- <command>
  users:promote <email>   make an existing account an admin (the only way to get one)
  catalogue:seed          load the demo catalogue (also: npm run seed)`;

const COMMANDS: Record<string, { module: DomainModuleName; nest: Type; run(app: INestApplicationContext, args: string[]): Promise<void> }> = {
  'users:promote': {
    module: 'users',
    nest: UsersModule,
    async run(app, [email]) {
      if (!email) throw new ConfigError(USAGE);
      const user = await app.get(ProfilesService).promote(email);
      process.stdout.write(`promoted ${email} (user ${user.id}) to admin\n`);
    },
  },
  'catalogue:seed': {
    module: 'orders',
    nest: OrdersModule,
    async run(app) {
      const created = await app.get(DemoCatalogueSeeder).seed((line) => process.stdout.write(`${line}\n`));
      process.stdout.write(`catalogue seeded: ${created} new product(s)\n`);
    },
  },
};

/** Operator commands that must never be reachable through the API. */
async function run(argv: string[]): Promise<void> {
  const [name, ...args] = argv;
  const command = name ? COMMANDS[name] : undefined;
  if (!command) throw new ConfigError(USAGE);
  const config = loadConfig({ ...process.env, MODULES_ENABLED: command.module });
  const logger = createRootLogger(config.env.LOG_LEVEL === 'info' ? 'warn' : config.env.LOG_LEVEL);
  @Module({ imports: [PlatformModule.forRoot(config, logger, MODULE_MANIFESTS), command.nest] })
  class CliModule {}
  const app = await NestFactory.createApplicationContext(CliModule, { logger: false });
  try {
    await command.run(app, args);
  } finally {
    await app.close();
  }
}

run(process.argv.slice(2)).then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(error instanceof ConfigError ? 64 : 1);
  },
);
