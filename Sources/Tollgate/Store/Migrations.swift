/// The schema, as numbered steps. A step is applied once, in its own transaction.
/// Statements are written in the subset of SQL that SQLite and PostgreSQL share.
enum Migrations {
    static let steps: [(version: Int, statements: [String])] = [
        (
            1,
            [
                """
                CREATE TABLE IF NOT EXISTS api_keys (
                    id TEXT PRIMARY KEY,
                    name TEXT NOT NULL,
                    secret_hash TEXT NOT NULL,
                    status TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    expires_at BIGINT,
                    updated_at BIGINT NOT NULL
                )
                """,
                "CREATE TABLE IF NOT EXISTS tollgate_meta (name TEXT PRIMARY KEY, value BIGINT NOT NULL)",
                "INSERT INTO tollgate_meta (name, value) VALUES ('key_generation', 0) ON CONFLICT DO NOTHING",
                """
                CREATE TABLE IF NOT EXISTS usage_records (
                    request_id TEXT PRIMARY KEY,
                    created_at BIGINT NOT NULL,
                    key_id TEXT,
                    endpoint TEXT NOT NULL,
                    model_requested TEXT,
                    model_served TEXT,
                    stream INTEGER NOT NULL,
                    http_status INTEGER NOT NULL,
                    outcome TEXT NOT NULL,
                    prompt_tokens BIGINT,
                    completion_tokens BIGINT,
                    usage_source TEXT NOT NULL,
                    latency_ms DOUBLE PRECISION NOT NULL,
                    ttfb_ms DOUBLE PRECISION,
                    client_address TEXT,
                    error TEXT
                )
                """,
                "CREATE INDEX IF NOT EXISTS usage_records_key_time ON usage_records (key_id, created_at)",
                "CREATE INDEX IF NOT EXISTS usage_records_time ON usage_records (created_at)",
            ]
        ),
        (
            2,
            [
                """
                CREATE TABLE IF NOT EXISTS users (
                    id TEXT PRIMARY KEY,
                    name TEXT NOT NULL,
                    email TEXT,
                    note TEXT,
                    daily_tokens BIGINT,
                    monthly_tokens BIGINT,
                    daily_requests BIGINT,
                    monthly_requests BIGINT,
                    created_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL
                )
                """,
                "ALTER TABLE api_keys ADD COLUMN user_id TEXT",
                "ALTER TABLE api_keys ADD COLUMN is_admin INTEGER NOT NULL DEFAULT 0",
                "ALTER TABLE api_keys ADD COLUMN daily_tokens BIGINT",
                "ALTER TABLE api_keys ADD COLUMN monthly_tokens BIGINT",
                "ALTER TABLE api_keys ADD COLUMN daily_requests BIGINT",
                "ALTER TABLE api_keys ADD COLUMN monthly_requests BIGINT",
                """
                CREATE TABLE IF NOT EXISTS quota_counters (
                    subject TEXT NOT NULL,
                    period TEXT NOT NULL,
                    window_start BIGINT NOT NULL,
                    requests BIGINT NOT NULL,
                    tokens_used BIGINT NOT NULL,
                    tokens_reserved BIGINT NOT NULL,
                    PRIMARY KEY (subject, period)
                )
                """,
                """
                CREATE TABLE IF NOT EXISTS quota_reservations (
                    request_id TEXT PRIMARY KEY,
                    subjects TEXT NOT NULL,
                    day_start BIGINT NOT NULL,
                    month_start BIGINT NOT NULL,
                    tokens BIGINT NOT NULL,
                    created_at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX IF NOT EXISTS quota_reservations_time ON quota_reservations (created_at)",
            ]
        ),
        (
            3,
            [
                "ALTER TABLE api_keys ADD COLUMN requests_per_minute BIGINT",
                "ALTER TABLE api_keys ADD COLUMN tokens_per_minute BIGINT",
                "ALTER TABLE api_keys ADD COLUMN max_concurrent BIGINT",
                "ALTER TABLE api_keys ADD COLUMN allowed_models TEXT",
                "ALTER TABLE api_keys ADD COLUMN output_cap_default BIGINT",
                "ALTER TABLE api_keys ADD COLUMN output_cap_max BIGINT",
                "ALTER TABLE users ADD COLUMN requests_per_minute BIGINT",
                "ALTER TABLE users ADD COLUMN tokens_per_minute BIGINT",
                "ALTER TABLE users ADD COLUMN max_concurrent BIGINT",
                "CREATE UNIQUE INDEX IF NOT EXISTS users_name ON users (name)",
                "CREATE INDEX IF NOT EXISTS api_keys_user ON api_keys (user_id)",
                "ALTER TABLE usage_records ADD COLUMN user_id TEXT",
                "CREATE INDEX IF NOT EXISTS usage_records_user_time ON usage_records (user_id, created_at)",
                "ALTER TABLE quota_reservations ADD COLUMN key_id TEXT",
                "ALTER TABLE quota_reservations ADD COLUMN user_id TEXT",
                "ALTER TABLE quota_reservations ADD COLUMN endpoint TEXT",
                "ALTER TABLE quota_reservations ADD COLUMN model TEXT",
                "ALTER TABLE quota_reservations ADD COLUMN prompt_estimate BIGINT",
                "CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at BIGINT NOT NULL)",
            ]
        ),
        (
            4,
            [
                // Which provider served the request, and its cost in nano-dollars (integers, never floating-point sums).
                "ALTER TABLE usage_records ADD COLUMN provider TEXT",
                "ALTER TABLE usage_records ADD COLUMN cost_nanos BIGINT",
            ]
        ),
        (
            5,
            [
                // Gateway-owned state that is not a setting (the generated admin password's hash).
                "CREATE TABLE IF NOT EXISTS admin_state (name TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at BIGINT NOT NULL)",
                // Failed admin logins per client address (the lockout survives a restart).
                "CREATE TABLE IF NOT EXISTS login_failures (address TEXT PRIMARY KEY, failures BIGINT NOT NULL, window_start BIGINT NOT NULL, locked_until BIGINT)",
            ]
        ),
        (
            6,
            [
                // Attribution tags: as text on the record (",a,b,") and one row per tag for filters and sums.
                "ALTER TABLE usage_records ADD COLUMN tags TEXT",
                "CREATE TABLE IF NOT EXISTS usage_tags (request_id TEXT NOT NULL, tag TEXT NOT NULL, created_at BIGINT NOT NULL, PRIMARY KEY (request_id, tag))",
                "CREATE INDEX IF NOT EXISTS usage_tags_tag_time ON usage_tags (tag, created_at)",
                "CREATE INDEX IF NOT EXISTS usage_tags_time ON usage_tags (created_at)",
                "CREATE INDEX IF NOT EXISTS usage_records_model_time ON usage_records (model_served, created_at)",
                "ALTER TABLE api_keys ADD COLUMN tags TEXT",
                "ALTER TABLE api_keys ADD COLUMN trusts_end_users INTEGER NOT NULL DEFAULT 0",
                // Users created from an Open WebUI identity (`openwebui:<id>`).
                "ALTER TABLE users ADD COLUMN external_id TEXT",
                "CREATE UNIQUE INDEX IF NOT EXISTS users_external_id ON users (external_id)",
                """
                CREATE TABLE IF NOT EXISTS audit_log (
                    id TEXT PRIMARY KEY,
                    created_at BIGINT NOT NULL,
                    actor TEXT NOT NULL,
                    action TEXT NOT NULL,
                    target TEXT,
                    detail TEXT
                )
                """,
                "CREATE INDEX IF NOT EXISTS audit_log_time ON audit_log (created_at)",
            ]
        ),
        (
            7,
            [
                // Providers added through the admin API (those from configuration are not stored).
                // The key is sealed with a key derived from the server secret, never stored in clear.
                """
                CREATE TABLE IF NOT EXISTS providers (
                    name TEXT PRIMARY KEY,
                    kind TEXT NOT NULL,
                    base_url TEXT NOT NULL,
                    api_key_sealed TEXT,
                    models TEXT,
                    max_concurrent BIGINT,
                    allow_private INTEGER NOT NULL DEFAULT 0,
                    created_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL
                )
                """,
            ]
        ),
        (
            8,
            [
                // Which gateway instance holds a reservation, and when each instance was last seen
                // (several instances on one PostgreSQL database settle only their own or a stopped one's).
                "ALTER TABLE quota_reservations ADD COLUMN owner TEXT",
                "CREATE TABLE IF NOT EXISTS gateway_instances (id TEXT PRIMARY KEY, seen_at BIGINT NOT NULL)",
            ]
        ),
        (
            9,
            [
                // Per-key address rules (comma-separated addresses and CIDR ranges).
                "ALTER TABLE api_keys ADD COLUMN allowed_addresses TEXT",
                "ALTER TABLE api_keys ADD COLUMN denied_addresses TEXT",
            ]
        ),
        (
            10,
            [
                // With usage recording off, the ids of settled requests (kept a day) make settlement exactly-once.
                "CREATE TABLE IF NOT EXISTS settled_requests (request_id TEXT PRIMARY KEY, created_at BIGINT NOT NULL)",
                "CREATE INDEX IF NOT EXISTS settled_requests_time ON settled_requests (created_at)",
            ]
        ),
        (
            11,
            [
                // Fair queuing: how long a request waited for a provider's slot, and each key's and
                // user's weight in the queue (null: 1).
                "ALTER TABLE usage_records ADD COLUMN queue_ms BIGINT",
                "ALTER TABLE api_keys ADD COLUMN fair_weight DOUBLE PRECISION",
                "ALTER TABLE users ADD COLUMN fair_weight DOUBLE PRECISION",
            ]
        ),
        (
            12,
            [
                // A key's own longest wait for a provider's slot (null: TOLLGATE_MAX_QUEUE_WAIT).
                "ALTER TABLE api_keys ADD COLUMN max_queue_wait_ms BIGINT",
            ]
        ),
        (
            13,
            [
                // Each model's slots on a provider added through the admin API (null: the kind's default).
                "ALTER TABLE providers ADD COLUMN model_slots BIGINT",
            ]
        ),
        (
            14,
            [
                // Spending limits (nano-dollars) and the spend counted against them, reserved and used.
                "ALTER TABLE api_keys ADD COLUMN daily_cost_nanos BIGINT",
                "ALTER TABLE api_keys ADD COLUMN monthly_cost_nanos BIGINT",
                "ALTER TABLE users ADD COLUMN daily_cost_nanos BIGINT",
                "ALTER TABLE users ADD COLUMN monthly_cost_nanos BIGINT",
                "ALTER TABLE quota_counters ADD COLUMN cost_used BIGINT NOT NULL DEFAULT 0",
                "ALTER TABLE quota_counters ADD COLUMN cost_reserved BIGINT NOT NULL DEFAULT 0",
                "ALTER TABLE quota_reservations ADD COLUMN cost BIGINT NOT NULL DEFAULT 0",
            ]
        ),
        (
            15,
            [
                // Rate windows other than a minute (null: 60 s).
                "ALTER TABLE api_keys ADD COLUMN request_window_seconds BIGINT",
                "ALTER TABLE api_keys ADD COLUMN token_window_seconds BIGINT",
                "ALTER TABLE users ADD COLUMN request_window_seconds BIGINT",
                "ALTER TABLE users ADD COLUMN token_window_seconds BIGINT",
            ]
        ),
        (
            16,
            [
                // Streams of this key end with OpenAI's usage chunk even when the client did not ask.
                "ALTER TABLE api_keys ADD COLUMN always_stream_usage INTEGER NOT NULL DEFAULT 0",
            ]
        ),
        (
            17,
            [
                // The prompt estimate's calibration: per provider, model and cell, decayed sums scaled
                // from a fixed epoch, which instances add their samples to (PromptCalibration).
                """
                CREATE TABLE IF NOT EXISTS estimate_calibration (
                    provider TEXT NOT NULL,
                    model TEXT NOT NULL,
                    cell TEXT NOT NULL,
                    weight DOUBLE PRECISION NOT NULL,
                    log_sum DOUBLE PRECISION NOT NULL,
                    updated_at BIGINT NOT NULL,
                    PRIMARY KEY (provider, model, cell)
                )
                """,
                // The raw prompt estimate of an inference request, kept beside the count it was charged.
                "ALTER TABLE usage_records ADD COLUMN prompt_estimate BIGINT",
            ]
        ),
    ]
}
