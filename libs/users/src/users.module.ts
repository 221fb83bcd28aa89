import { Module } from '@nestjs/common';
import { moduleDatabaseImports, moduleMessagingProviders } from '@app/platform';
import { PasswordHasher } from './application/password-hasher';
import { RegisterUserService } from './application/register-user.service';
import { UsersController } from './http/users.controller';
import { usersDatabase } from './persistence/users.database';

@Module({
  imports: [...moduleDatabaseImports(usersDatabase)],
  controllers: [UsersController],
  providers: [PasswordHasher, RegisterUserService, ...moduleMessagingProviders({ module: 'users' })],
})
export class UsersModule {}
