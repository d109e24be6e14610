DROP TRIGGER IF EXISTS webhooks ON pool_numbers;
DROP TRIGGER IF EXISTS webhooks ON verification_sessions;
DROP FUNCTION IF EXISTS missedcall_pool_webhooks();
DROP FUNCTION IF EXISTS missedcall_session_webhooks();
DROP FUNCTION IF EXISTS missedcall_enqueue_webhook(UUID, TEXT, UUID, JSONB);
DROP TABLE IF EXISTS webhook_deliveries;
DROP TABLE IF EXISTS webhook_endpoints;
