import { Module } from '@nestjs/common';
import { moduleDatabaseImports, moduleMessagingProviders } from '@app/platform';
import { WelcomeOnUserRegisteredHandler } from './consumers/welcome-on-user-registered.handler';
import { notificationsDatabase } from './persistence/notifications.database';

@Module({
  imports: [...moduleDatabaseImports(notificationsDatabase)],
  providers: [
    ...moduleMessagingProviders({ module: 'notifications', handlers: [WelcomeOnUserRegisteredHandler] }),
  ],
})
export class NotificationsModule {}
