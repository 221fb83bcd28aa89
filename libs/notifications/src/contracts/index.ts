/**
 * @app/notifications/contracts: what other modules and apps may know about
 * `notifications`. Nothing yet: no module depends on notifications.
 */
export const NOTIFICATIONS_MODULE = 'notifications' as const;
