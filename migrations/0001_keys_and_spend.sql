-- One schema for SQLite and PostgreSQL: integer money (pico-dollars), epoch milliseconds,
-- JSON as text, 0/1 for flags.
CREATE TABLE IF NOT EXISTS teams (
    id TEXT PRIMARY KEY,
    alias TEXT,
    max_budget_pico BIGINT,
    budget_duration_s BIGINT,
    metadata TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    alias TEXT,
    team_id TEXT,
    models TEXT NOT NULL,
    max_budget_pico BIGINT,
    budget_duration_s BIGINT,
    rpm BIGINT,
    tpm BIGINT,
    max_parallel BIGINT,
    expires_at BIGINT,
    metadata TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS spend_logs (
    call_id TEXT PRIMARY KEY,
    key_id TEXT,
    team_id TEXT,
    model TEXT NOT NULL,
    deployment TEXT,
    provider TEXT,
    prompt_tokens BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    cached_tokens BIGINT NOT NULL,
    cache_write_tokens BIGINT NOT NULL,
    reasoning_tokens BIGINT NOT NULL,
    cost_pico BIGINT NOT NULL,
    status TEXT NOT NULL,
    error_kind TEXT,
    latency_us BIGINT NOT NULL,
    ttft_us BIGINT,
    cache_hit BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE INDEX IF NOT EXISTS spend_logs_key_time ON spend_logs (key_id, created_at);
CREATE INDEX IF NOT EXISTS spend_logs_team_time ON spend_logs (team_id, created_at);
