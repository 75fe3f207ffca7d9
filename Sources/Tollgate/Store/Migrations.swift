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
        )
    ]
}
