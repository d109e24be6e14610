-- Tenants: one row per client app, with its settings.
CREATE TABLE tenants (
    id UUID PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    status TEXT NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'SUSPENDED')),
    validity_seconds INTEGER NOT NULL DEFAULT 300 CHECK (validity_seconds BETWEEN 30 AND 3600),
    max_attempts INTEGER NOT NULL DEFAULT 3 CHECK (max_attempts BETWEEN 1 AND 10),
    require_app_signature BOOLEAN NOT NULL DEFAULT FALSE,
    jwt_audience TEXT NOT NULL CHECK (length(jwt_audience) BETWEEN 1 AND 200),
    jwt_ttl_seconds INTEGER NOT NULL DEFAULT 3600 CHECK (jwt_ttl_seconds BETWEEN 60 AND 2592000),
    max_guess_probability DOUBLE PRECISION CHECK (max_guess_probability > 0 AND max_guess_probability <= 1),
    ring_timeout_seconds INTEGER NOT NULL DEFAULT 6 CHECK (ring_timeout_seconds BETWEEN 3 AND 30),
    interception_timeout_seconds INTEGER NOT NULL DEFAULT 30 CHECK (interception_timeout_seconds BETWEEN 5 AND 300),
    rate_limit_overrides JSONB NOT NULL DEFAULT '{}'::jsonb,
    gateway TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- API keys: only the SHA-256 of the key is stored; the prefix is what admins see.
CREATE TABLE api_keys (
    id UUID PRIMARY KEY,
    tenant_id UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('PUBLISHABLE', 'SECRET')),
    prefix TEXT NOT NULL,
    key_hash BYTEA NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    label TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ
);
CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id, created_at);

-- Caller IDs: a single number (random_digits = 0) or a range whose last
-- random_digits digits are drawn per session.
CREATE TABLE pool_numbers (
    id UUID PRIMARY KEY,
    tenant_id UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    pattern TEXT NOT NULL CHECK (pattern ~ '^\+[1-9][0-9]{1,14}X{0,6}$' AND length(pattern) <= 16),
    prefix TEXT NOT NULL,
    random_digits INTEGER NOT NULL DEFAULT 0 CHECK (random_digits BETWEEN 0 AND 6),
    country TEXT NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
    label TEXT NOT NULL DEFAULT '',
    active BOOLEAN NOT NULL DEFAULT TRUE,
    weight INTEGER NOT NULL DEFAULT 1 CHECK (weight BETWEEN 1 AND 1000),
    last_used_at TIMESTAMPTZ,
    cooldown_until TIMESTAMPTZ,
    call_count BIGINT NOT NULL DEFAULT 0,
    failure_count BIGINT NOT NULL DEFAULT 0,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, pattern)
);
CREATE INDEX pool_numbers_pick_idx ON pool_numbers (tenant_id, country, last_used_at) WHERE active;

CREATE TABLE app_signatures (
    id UUID PRIMARY KEY,
    tenant_id UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    platform TEXT NOT NULL CHECK (platform IN ('ANDROID', 'IOS')),
    signature TEXT NOT NULL CHECK (length(signature) BETWEEN 1 AND 200),
    label TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, signature)
);

-- No rows for a tenant means every country is allowed.
CREATE TABLE allowed_countries (
    tenant_id UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    country_code TEXT NOT NULL CHECK (country_code ~ '^[A-Z]{2}$'),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, country_code)
);

CREATE TABLE verification_sessions (
    id UUID PRIMARY KEY,
    tenant_id UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    token_hash BYTEA NOT NULL CHECK (length(token_hash) = 32),
    phone_number TEXT NOT NULL,
    country TEXT NOT NULL,
    number_type TEXT NOT NULL,
    pool_number_id UUID REFERENCES pool_numbers (id) ON DELETE SET NULL,
    expected_caller_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('PENDING', 'CALLING', 'RINGING', 'CALL_ENDED',
        'CALL_FAILED', 'VERIFIED', 'LOCKED', 'EXPIRED')),
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts INTEGER NOT NULL CHECK (max_attempts >= 1),
    client_ip TEXT,
    user_agent TEXT,
    app_signature TEXT,
    gateway TEXT NOT NULL,
    gateway_call_id TEXT,
    call_status TEXT,
    failure_reason TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    verified_at TIMESTAMPTZ,
    CHECK (attempts <= max_attempts)
);
CREATE INDEX verification_sessions_tenant_created_idx ON verification_sessions (tenant_id, created_at DESC, id DESC);
CREATE INDEX verification_sessions_tenant_phone_idx ON verification_sessions (tenant_id, phone_number, created_at DESC);
CREATE INDEX verification_sessions_tenant_status_idx ON verification_sessions (tenant_id, status, created_at DESC);
CREATE UNIQUE INDEX verification_sessions_call_idx ON verification_sessions (gateway, gateway_call_id)
    WHERE gateway_call_id IS NOT NULL;
CREATE INDEX verification_sessions_open_expiry_idx ON verification_sessions (expires_at)
    WHERE status IN ('PENDING', 'CALLING', 'RINGING', 'CALL_ENDED', 'CALL_FAILED');

CREATE TABLE audit_events (
    id UUID PRIMARY KEY,
    tenant_id UUID NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    session_id UUID REFERENCES verification_sessions (id) ON DELETE SET NULL,
    kind TEXT NOT NULL,
    ip TEXT,
    detail JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX audit_events_tenant_created_idx ON audit_events (tenant_id, created_at DESC, id DESC);
CREATE INDEX audit_events_tenant_session_idx ON audit_events (tenant_id, session_id, created_at)
    WHERE session_id IS NOT NULL;

-- JWT signing keys, shared by all tenants (the audience differs per tenant).
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    algorithm TEXT NOT NULL CHECK (algorithm IN ('EdDSA', 'ES256')),
    private_key_encrypted BYTEA NOT NULL,
    public_jwk JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    retired_at TIMESTAMPTZ
);
CREATE INDEX signing_keys_created_idx ON signing_keys (created_at DESC);
