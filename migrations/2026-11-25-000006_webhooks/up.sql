-- Tenant webhooks. Events are written to the outbox (`webhook_deliveries`, one row per event
-- and endpoint) by triggers, inside the transaction that made the change, so a crash between
-- commit and send loses nothing; a background worker sends them.
CREATE TABLE webhook_endpoints (
    id UUID PRIMARY KEY,
    tenant_id UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    events TEXT[] NOT NULL CHECK (cardinality(events) > 0),
    secret_sealed BYTEA NOT NULL,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_tenant_idx ON webhook_endpoints (tenant_id);

CREATE TABLE webhook_deliveries (
    id UUID PRIMARY KEY,
    -- Sends of one session's events to one endpoint go in this order.
    seq BIGSERIAL NOT NULL UNIQUE,
    -- The message id (`webhook-id`), shared by every endpoint's copy and by replays.
    event_id UUID NOT NULL,
    tenant_id UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    endpoint_id UUID NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_type TEXT NOT NULL,
    session_id UUID,
    payload JSONB NOT NULL,
    -- PENDING until DELIVERED, or FAILED once retries ran out.
    status TEXT NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'DELIVERED', 'FAILED')),
    attempts INTEGER NOT NULL DEFAULT 0,
    -- When the next try is due; a worker sending it pushes this out by its lease.
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_attempt_at TIMESTAMPTZ,
    last_status_code INTEGER,
    last_error TEXT,
    delivered_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at)
    WHERE status = 'PENDING';
CREATE INDEX webhook_deliveries_session_idx ON webhook_deliveries (endpoint_id, session_id, seq)
    WHERE status = 'PENDING';
CREATE INDEX webhook_deliveries_tenant_idx ON webhook_deliveries (tenant_id, created_at, id);

GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_endpoints, webhook_deliveries TO missedcall_app;
GRANT USAGE ON SEQUENCE webhook_deliveries_seq_seq TO missedcall_app;

ALTER TABLE webhook_endpoints ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_wall ON webhook_endpoints
    USING (tenant_id = missedcall_current_tenant() OR missedcall_system_scope())
    WITH CHECK (tenant_id = missedcall_current_tenant() OR missedcall_system_scope());

ALTER TABLE webhook_deliveries ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_wall ON webhook_deliveries
    USING (tenant_id = missedcall_current_tenant() OR missedcall_system_scope())
    WITH CHECK (tenant_id = missedcall_current_tenant() OR missedcall_system_scope());

-- One event to every enabled endpoint of the tenant that picked its type. Runs as the caller,
-- so row-level security applies as to the change itself.
CREATE FUNCTION missedcall_enqueue_webhook(p_tenant UUID, p_type TEXT, p_session UUID, p_data JSONB)
    RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
    v_event UUID := gen_random_uuid();
    v_at TEXT := to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');
BEGIN
    INSERT INTO webhook_deliveries (id, event_id, tenant_id, endpoint_id, event_type, session_id, payload)
    SELECT gen_random_uuid(), v_event, p_tenant, e.id, p_type, p_session,
           jsonb_build_object('type', p_type, 'timestamp', v_at, 'data', p_data)
      FROM webhook_endpoints e
     WHERE e.tenant_id = p_tenant AND e.enabled AND p_type = ANY (e.events)
     ORDER BY e.id;
END
$$;

CREATE FUNCTION missedcall_session_webhooks() RETURNS TRIGGER LANGUAGE plpgsql AS $$
DECLARE
    v_type TEXT;
BEGIN
    IF TG_OP = 'INSERT' THEN
        v_type := 'verification.requested';
    ELSIF NEW.status IS DISTINCT FROM OLD.status THEN
        v_type := CASE NEW.status
            WHEN 'VERIFIED' THEN 'verification.verified'
            WHEN 'CALL_FAILED' THEN 'verification.failed'
            WHEN 'LOCKED' THEN 'verification.locked'
            WHEN 'EXPIRED' THEN 'verification.expired'
        END;
    END IF;
    IF v_type IS NOT NULL THEN
        PERFORM missedcall_enqueue_webhook(NEW.tenant_id, v_type, NEW.id, jsonb_build_object(
            'sessionId', NEW.id,
            'status', NEW.status,
            'phoneNumber', NEW.phone_number,
            'country', NEW.country,
            'numberType', NEW.number_type,
            'attempts', NEW.attempts,
            'maxAttempts', NEW.max_attempts,
            'failureReason', NEW.failure_reason,
            'test', NEW.is_test,
            'metadata', NEW.metadata,
            'createdAt', NEW.created_at,
            'expiresAt', NEW.expires_at,
            'verifiedAt', NEW.verified_at));
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER webhooks AFTER INSERT OR UPDATE OF status ON verification_sessions
    FOR EACH ROW EXECUTE FUNCTION missedcall_session_webhooks();

CREATE FUNCTION missedcall_pool_webhooks() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    PERFORM missedcall_enqueue_webhook(NEW.tenant_id, 'pool.number_deactivated', NULL,
        jsonb_build_object(
            'poolNumberId', NEW.id,
            'pattern', NEW.pattern,
            'country', NEW.country,
            'label', NEW.label,
            'callCount', NEW.call_count,
            'failureCount', NEW.failure_count,
            'consecutiveFailures', NEW.consecutive_failures));
    RETURN NULL;
END
$$;
CREATE TRIGGER webhooks AFTER UPDATE OF active ON pool_numbers
    FOR EACH ROW WHEN (OLD.active AND NOT NEW.active) EXECUTE FUNCTION missedcall_pool_webhooks();
