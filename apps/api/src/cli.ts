import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ConfigError, createRootLogger, loadConfig, PlatformModule } from '@app/platform';
import { ProfilesService, UsersModule } from '@app/users';

const USAGE = 'usage: npm run cli -- users:promote <email>';

/**
 * Operator commands that must never be reachable through the API.
 *   users:promote <email>   make an existing account an admin (the first admin too)
 */
async function run(argv: string[]): Promise<void> {
  const [command, email] = argv;
  if (command !== 'users:promote' || !email) throw new ConfigError(USAGE);
  const config = loadConfig({ ...process.env, MODULES_ENABLED: 'users' });
  const logger = createRootLogger(config.env.LOG_LEVEL === 'info' ? 'warn' : config.env.LOG_LEVEL);
  @Module({ imports: [PlatformModule.forRoot(config, logger), UsersModule] })
  class CliModule {}
  const app = await NestFactory.createApplicationContext(CliModule, { logger: false });
  try {
    const user = await app.get(ProfilesService).promote(email);
    process.stdout.write(`promoted ${email} (user ${user.id}) to admin\n`);
  } finally {
    await app.close();
  }
}

run(process.argv.slice(2)).then(
  () => process.exit(0),
  (error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`${message}\n`);
    process.exit(error instanceof ConfigError ? 64 : 1);
  },
);
