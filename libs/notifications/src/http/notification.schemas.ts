import { Type, type Static } from '@sinclair/typebox';

/** `GET /v1/notifications` query. Unknown parameters are rejected like unknown body fields. */
export const ListNotificationsQuery = Type.Object(
  {
    unread: Type.Optional(Type.Boolean({ description: 'Only notifications not read yet' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20, description: 'Page size (default 20, max 100)' })),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 512, description: 'nextCursor of the previous page (opaque)' })),
  },
  { additionalProperties: false },
);
export type ListNotificationsQuery = Static<typeof ListNotificationsQuery>;

/** `PUT /v1/notifications/preferences`: the whole document, both fields required. */
export const UpdatePreferencesRequest = Type.Object(
  {
    email: Type.Boolean({ description: 'Send notifications by email too' }),
    webhookUrl: Type.Union([Type.String({ minLength: 1, maxLength: 2048 }), Type.Null()], {
      description: 'http(s) URL that receives each notification as signed JSON; null turns webhooks off',
    }),
  },
  { additionalProperties: false, $id: 'UpdatePreferencesRequest' },
);
export type UpdatePreferencesRequest = Static<typeof UpdatePreferencesRequest>;

export const PreferencesResponse = Type.Object(
  {
    email: Type.Boolean(),
    webhookUrl: Type.Union([Type.String(), Type.Null()]),
    webhookSecret: Type.Optional(
      Type.String({
        description:
          'Only in the answer that set a new webhook URL, and never again: the key of X-Signature: sha256=<hex HMAC-SHA256 of the body>',
      }),
    ),
  },
  { $id: 'PreferencesResponse' },
);

const Delivery = Type.Object({
  channel: Type.Union([Type.Literal('email'), Type.Literal('webhook')]),
  status: Type.Union([Type.Literal('pending'), Type.Literal('sent'), Type.Literal('failed'), Type.Literal('dead')]),
  attempts: Type.Integer(),
});

export const NotificationResponse = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    kind: Type.String({ description: 'welcome, order-placed, order-confirmed, order-shipped, order-delivered, order-cancelled, order-expired' }),
    title: Type.String(),
    body: Type.String(),
    data: Type.Record(Type.String(), Type.Unknown(), { description: 'Facts for clients, e.g. orderId and status' }),
    read: Type.Boolean(),
    readAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    createdAt: Type.String({ format: 'date-time' }),
    deliveries: Type.Array(Delivery, { description: 'Email and webhook deliveries with their status; dead = given up' }),
  },
  { $id: 'NotificationResponse' },
);

export const NotificationPageResponse = Type.Object(
  { items: Type.Array(NotificationResponse), nextCursor: Type.Union([Type.String(), Type.Null()]) },
  { $id: 'NotificationPageResponse' },
);
