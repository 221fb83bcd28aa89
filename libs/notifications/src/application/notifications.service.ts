import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { execute, InjectReplicaReader, KeysetCursor, type ReplicaReader } from '@app/platform';
import type { DataSource } from 'typeorm';
import type { DeliveryChannel, DeliveryStatus, NotificationView } from '../domain/notification';
import { NotificationNotFoundError } from '../domain/notification.errors';

export interface NotificationListItem extends NotificationView {
  deliveries: { channel: DeliveryChannel; status: DeliveryStatus; attempts: number }[];
}

export interface NotificationPage {
  items: NotificationListItem[];
  nextCursor: string | null;
}

interface NotificationRow {
  id: string;
  kind: string;
  title: string;
  body: string;
  data: Record<string, unknown>;
  read_at: Date | null;
  created_at: Date;
  /** created_at in UTC with microseconds: JavaScript dates would lose them. */
  position: string;
  deliveries?: NotificationListItem['deliveries'];
}

const POSITION = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const COLUMNS = `n.id, n.kind, n.title, n.body, n.data, n.read_at, n.created_at,
  to_char(n.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS position`;

export function toView(row: Omit<NotificationRow, 'position'>): NotificationView {
  return {
    id: row.id,
    kind: row.kind,
    title: row.title,
    body: row.body,
    data: row.data ?? {},
    read: row.read_at !== null,
    readAt: row.read_at ? new Date(row.read_at).toISOString() : null,
    createdAt: new Date(row.created_at).toISOString(),
  };
}

/**
 * Keyset cursors over (created_at, id), newest first (the platform's KeysetCursor): the
 * sort key is created_at as text with microseconds, so no two positions collapse.
 */
export const NotificationCursor = {
  encode: (row: { position: string; id: string }): string => KeysetCursor.encode({ key: row.position, id: row.id }),
  decode(cursor: string): { position: string; id: string } {
    const { key, id } = KeysetCursor.decode(cursor, (key) => POSITION.test(key))!;
    return { position: key, id };
  },
};

/**
 * The SQL of one page of GET /v1/notifications (exported so a test can EXPLAIN the very
 * query: index scans per partition, pruning by the cursor; docs/architecture.md,
 * "Notification partitions"). Fetches one row more than `limit` to know if a next page exists.
 */
export function notificationPageQuery(
  userId: string,
  options: { unread?: boolean; limit: number; cursor?: string },
): { sql: string; params: unknown[] } {
  const params: unknown[] = [userId, options.limit + 1];
  let where = 'n.user_id = $1';
  if (options.unread) where += ' AND n.read_at IS NULL';
  if (options.cursor) {
    const after = NotificationCursor.decode(options.cursor);
    params.push(after.position, after.id);
    // The plain `created_at <=` repeats what the row comparison implies: the planner prunes
    // partitions with it (it does not with row comparisons), so later pages skip newer months.
    where += ' AND n.created_at <= $3::timestamptz AND (n.created_at, n.id) < ($3::timestamptz, $4::uuid)';
  }
  return {
    sql: `SELECT ${COLUMNS}, coalesce(d.deliveries, '[]'::json) AS deliveries
         FROM notifications.notifications n
         LEFT JOIN LATERAL (
           SELECT json_agg(json_build_object('channel', channel, 'status', status, 'attempts', attempts) ORDER BY channel) AS deliveries
             FROM notifications.deliveries WHERE notification_id = n.id AND notification_created_at = n.created_at
         ) d ON true
        WHERE ${where}
        ORDER BY n.created_at DESC, n.id DESC
        LIMIT $2`,
    params,
  };
}

/** The caller's notifications: pages, read state, and the replay for live streams. */
@Injectable()
export class NotificationsService {
  constructor(
    @InjectDataSource('notifications') private readonly dataSource: DataSource,
    @InjectReplicaReader('notifications') private readonly reader: ReplicaReader,
  ) {}

  /**
   * A page may come from the read replica, never behind the user's own writes (marking
   * read); a notification just created by a consumer may appear a few seconds later,
   * which the live stream covers anyway.
   */
  async list(userId: string, options: { unread?: boolean; limit: number; cursor?: string }): Promise<NotificationPage> {
    const { sql, params } = notificationPageQuery(userId, options);
    const rows = await this.reader.read(userId, (manager) => manager.query<NotificationRow[]>(sql, params));
    const page = rows.slice(0, options.limit);
    const last = page[page.length - 1];
    return {
      items: page.map((row) => ({ ...toView(row), deliveries: row.deliveries ?? [] })),
      nextCursor: rows.length > options.limit && last ? NotificationCursor.encode(last) : null,
    };
  }

  /** Idempotent; another user's notification is "not found", never "forbidden". */
  async markRead(userId: string, id: string): Promise<void> {
    const { affected } = await execute(
      this.dataSource,
      'UPDATE notifications.notifications SET read_at = coalesce(read_at, now()) WHERE id = $1 AND user_id = $2',
      [id, userId],
    );
    if (affected === 0) throw new NotificationNotFoundError();
  }

  async markAllRead(userId: string): Promise<number> {
    const { affected } = await execute(
      this.dataSource,
      'UPDATE notifications.notifications SET read_at = now() WHERE user_id = $1 AND read_at IS NULL',
      [userId],
    );
    return affected;
  }

  /**
   * Notifications newer than `lastId` (oldest first): what a reconnecting stream missed.
   * Unknown or foreign ids replay nothing.
   */
  async newerThan(userId: string, lastId: string, limit = 100): Promise<NotificationView[]> {
    const rows = await this.dataSource.query<NotificationRow[]>(
      `SELECT ${COLUMNS}
         FROM notifications.notifications n
         JOIN notifications.notifications last ON last.id = $2 AND last.user_id = $1
        WHERE n.user_id = $1 AND (n.created_at, n.id) > (last.created_at, last.id)
        ORDER BY n.created_at, n.id
        LIMIT $3`,
      [userId, lastId, limit],
    );
    return rows.map(toView);
  }
}
