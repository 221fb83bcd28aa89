import { Global, Module } from '@nestjs/common';
import { moduleDatabaseImports, moduleMessagingProviders, SESSION_STATUS_SOURCE } from '@app/platform';
import { LoginThrottle } from './application/login-throttle';
import { PasswordHasher } from './application/password-hasher';
import { ProfilesService } from './application/profiles.service';
import { RegisterUserService } from './application/register-user.service';
import { SessionsService } from './application/sessions.service';
import { RevokeSessionOnSessionRevokedHandler } from './consumers/revoke-session-on-session-revoked.handler';
import { USERS_FACADE } from './contracts';
import { AuthController } from './http/auth.controller';
import { JwksController } from './http/jwks.controller';
import { UsersController } from './http/users.controller';
import { usersDatabase } from './persistence/users.database';
import { usersManifest } from './module.manifest';
import { usersRetentionRules } from './persistence/users.retention';

/** Global only so that USERS_FACADE (a contract) is injectable in other modules. */
@Global()
@Module({
  imports: [...moduleDatabaseImports(usersDatabase)],
  controllers: [UsersController, AuthController, JwksController],
  providers: [
    PasswordHasher,
    LoginThrottle,
    RegisterUserService,
    SessionsService,
    ProfilesService,
    { provide: USERS_FACADE, useExisting: ProfilesService },
    { provide: SESSION_STATUS_SOURCE, useExisting: SessionsService },
    ...moduleMessagingProviders({ manifest: usersManifest, handlers: [RevokeSessionOnSessionRevokedHandler], retention: usersRetentionRules }),
  ],
  exports: [USERS_FACADE, SESSION_STATUS_SOURCE, ProfilesService],
})
export class UsersModule {}
