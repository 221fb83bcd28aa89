import { Controller, Get, HttpCode, Post, Put, Req, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiHeader, ApiNoContentResponse, ApiNotFoundResponse, ApiOkResponse, ApiProduces, ApiTags, ApiTooManyRequestsResponse, ApiOperation } from '@nestjs/swagger';
import { CurrentUser, ShedPriority, UuidParam, ValidBody, ValidQuery, type AuthenticatedUser } from '@app/platform';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { LiveNotifications } from '../application/live-notifications';
import { NotificationsService, type NotificationPage } from '../application/notifications.service';
import { PreferencesService, type Preferences, type UpdatedPreferences } from '../application/preferences.service';
import {
  ListNotificationsQuery,
  NotificationPageResponse,
  PreferencesResponse,
  UpdatePreferencesRequest,
} from './notification.schemas';

@ApiTags('notifications')
@ApiBearerAuth()
@Controller({ path: 'notifications', version: '1' })
export class NotificationsController {
  constructor(
    private readonly notifications: NotificationsService,
    private readonly preferences: PreferencesService,
    private readonly live: LiveNotifications,
  ) {}

  @Get()
  @ApiOkResponse({ schema: NotificationPageResponse as never, description: "The caller's notifications, newest first" })
  @ApiOperation({ operationId: 'listNotifications', summary: 'List your notifications' })
  list(@CurrentUser() caller: AuthenticatedUser, @ValidQuery(ListNotificationsQuery) query: ListNotificationsQuery): Promise<NotificationPage> {
    return this.notifications.list(caller.userId, { unread: query.unread, limit: query.limit ?? 20, cursor: query.cursor });
  }

  /**
   * Server-Sent Events: `event: notification` with the notification as `data` and its id
   * as `id`; comment lines as heartbeats. Reconnect with `Last-Event-ID` to get what was
   * missed first. Ends with `event: token-expired` at the access token's expiry; capped per
   * user and per instance (docs/api.md, "Live stream").
   */
  @Get('stream')
  @ShedPriority('sheddable', { stream: true }) // a client reconnects with Last-Event-ID
  @ApiProduces('text/event-stream')
  @ApiHeader({ name: 'Last-Event-ID', required: false, schema: { type: 'string' }, description: 'The last `id` received: what was missed since is sent first' })
  @ApiOkResponse({
    description: 'A text/event-stream of new notifications, from whichever instance created them, until the access token expires',
    content: { 'text/event-stream': { schema: { type: 'string', description: '`event: notification`, `id: <notification id>`, `data: <notification JSON>`; `event: token-expired` last' } } },
  })
  @ApiTooManyRequestsResponse({ description: 'STREAM.TOO_MANY_PER_USER or STREAM.INSTANCE_FULL: too many open streams; see Retry-After' })
  @ApiOperation({ operationId: 'streamNotifications', summary: 'Follow new notifications live (Server-Sent Events)', description: '`event: notification` with the notification as `data`; reconnect with `Last-Event-ID` to get what was missed.' })
  async stream(@CurrentUser() caller: AuthenticatedUser, @Req() request: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    await this.live.open(caller, request, reply);
  }

  @Get('preferences')
  @ApiOkResponse({ schema: PreferencesResponse as never })
  @ApiOperation({ operationId: 'getNotificationPreferences', summary: 'Read your notification preferences' })
  getPreferences(@CurrentUser() caller: AuthenticatedUser): Promise<Preferences> {
    return this.preferences.get(caller.userId);
  }

  @Put('preferences')
  @ApiOkResponse({ schema: PreferencesResponse as never, description: 'webhookSecret is included once, when the webhook URL changes' })
  @ApiOperation({ operationId: 'putNotificationPreferences', summary: 'Set your notification preferences (email, webhook)' })
  putPreferences(
    @CurrentUser() caller: AuthenticatedUser,
    @ValidBody(UpdatePreferencesRequest) body: UpdatePreferencesRequest,
  ): Promise<UpdatedPreferences> {
    return this.preferences.update(caller.userId, body);
  }

  @Post('read-all')
  @HttpCode(204)
  @ApiNoContentResponse({ description: "Every one of the caller's notifications is read" })
  @ApiOperation({ operationId: 'markAllNotificationsRead', summary: 'Mark every notification read' })
  async readAll(@CurrentUser() caller: AuthenticatedUser): Promise<void> {
    await this.notifications.markAllRead(caller.userId);
  }

  @Post(':id/read')
  @HttpCode(204)
  @ApiNoContentResponse({ description: 'Marked read (idempotent)' })
  @ApiNotFoundResponse({ description: "Unknown id or another user's notification" })
  @ApiOperation({ operationId: 'markNotificationRead', summary: 'Mark one notification read' })
  async read(@CurrentUser() caller: AuthenticatedUser, @UuidParam('id') id: string): Promise<void> {
    await this.notifications.markRead(caller.userId, id);
  }
}
