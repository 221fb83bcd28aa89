import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

/** Partitioned by month of created_at (migrations/1764806400000-partition-notifications-by-month.ts). */
@Entity({ name: 'notifications', schema: 'notifications' })
export class NotificationEntity {
  @PrimaryColumn('uuid')
  id!: string;

  @Column('uuid', { name: 'user_id' })
  userId!: string;

  /** e.g. `welcome`, `order-placed`. */
  @Column('text')
  kind!: string;

  @Column('text')
  title!: string;

  @Column('text')
  body!: string;

  /** Structured facts for clients, e.g. `{ orderId, status }`. */
  @Column('jsonb', { default: {} })
  data!: Record<string, unknown>;

  /** The integration event this notification was made from: one per (event, user). */
  @Column('uuid', { name: 'source_event_id' })
  sourceEventId!: string;

  @Column('timestamptz', { name: 'read_at', nullable: true })
  readAt!: Date | null;

  /** Part of the primary key: the table is partitioned by month of created_at. */
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz', primary: true })
  createdAt!: Date;
}
