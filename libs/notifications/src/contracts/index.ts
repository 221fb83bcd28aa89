/**
 * @app/notifications/contracts: what other modules and apps may know about
 * `notifications`. Nothing yet: no module depends on notifications.
 */
export const NOTIFICATIONS_MODULE = 'notifications' as const;

/**
 * Event type → payload type of every event `notifications` publishes: none yet. A new
 * event gets its entry here and its committed schema (docs/architecture.md, "Event
 * contracts").
 */
export type EventPayloads = Record<never, never>;
