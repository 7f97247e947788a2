//! The gateway's store: virtual keys, teams and the spend log, in SQLite (the embedded
//! default) or PostgreSQL, through one set of migrations (`migrations/`) run at start-up.
//!
//! Money is integer pico-dollars, times are epoch milliseconds, JSON is text, flags are 0/1:
//! one schema reads the same on both databases.

use std::fmt;

use serde::Serialize;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row as _};

use crate::error::{Error, Result};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A virtual key as stored (its secret only as a hash).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct KeyRecord {
    /// The public id (`key_...`): logs and admin calls name a key by it.
    pub id: String,
    /// SHA-256 of the secret, hex.
    #[serde(skip)]
    pub hash: String,
    /// A name for people.
    pub alias: Option<String>,
    /// The team it belongs to.
    pub team_id: Option<String>,
    /// The model names it may use; empty = all.
    pub models: Vec<String>,
    /// Budget per period, pico-dollars.
    pub max_budget_pico: Option<i64>,
    /// The budget period, seconds (none: the budget is for the key's lifetime).
    pub budget_duration_s: Option<i64>,
    /// Requests per minute.
    pub rpm: Option<i64>,
    /// Tokens per minute.
    pub tpm: Option<i64>,
    /// Calls in flight at once (per instance).
    pub max_parallel: Option<i64>,
    /// When it stops working, epoch ms.
    pub expires_at: Option<i64>,
    /// Free-form.
    pub metadata: serde_json::Value,
    /// When it was made, epoch ms.
    pub created_at: i64,
    /// What it may do.
    pub role: KeyRole,
    /// Its guardrail settings.
    pub guardrails: super::guardrails::KeyGuardrails,
}

/// What a key may do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyRole {
    /// The model routes (`/v1/...`).
    #[default]
    User,
    /// The model routes and the admin API.
    Admin,
}

impl KeyRole {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Admin => "admin",
        }
    }
}

/// A team: keys that share a budget.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TeamRecord {
    /// The team's id (`team_...`).
    pub id: String,
    /// A name for people.
    pub alias: Option<String>,
    /// Budget per period, pico-dollars, shared by the team's keys.
    pub max_budget_pico: Option<i64>,
    /// The budget period, seconds.
    pub budget_duration_s: Option<i64>,
    /// Free-form.
    pub metadata: serde_json::Value,
    /// When it was made, epoch ms.
    pub created_at: i64,
}

/// One row of the spend log.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SpendRow {
    /// The call's id.
    pub call_id: String,
    /// The key's public id (none for the master key).
    pub key_id: Option<String>,
    /// The key's team.
    pub team_id: Option<String>,
    /// The model name asked for.
    pub model: String,
    /// The deployment that answered.
    pub deployment: Option<String>,
    /// Its provider.
    pub provider: Option<String>,
    /// Tokens.
    pub prompt_tokens: i64,
    /// Tokens.
    pub completion_tokens: i64,
    /// Prompt tokens read from the provider's cache.
    pub cached_tokens: i64,
    /// Prompt tokens written to the provider's cache.
    pub cache_write_tokens: i64,
    /// Completion tokens spent reasoning.
    pub reasoning_tokens: i64,
    /// What it cost, pico-dollars.
    pub cost_pico: i64,
    /// `success` or `failure`.
    pub status: String,
    /// The error kind, for failures.
    pub error_kind: Option<String>,
    /// Microseconds from request to answer (or stream end).
    pub latency_us: i64,
    /// Microseconds to the first streamed chunk.
    pub ttft_us: Option<i64>,
    /// Answered from the response cache.
    pub cache_hit: bool,
    /// Epoch ms.
    pub created_at: i64,
    /// What the call's guardrails decided (a JSON list), when any ran.
    pub guardrails: Option<String>,
}

/// The store.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    url_kind: &'static str,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("database", &self.url_kind).finish_non_exhaustive()
    }
}

fn db(e: impl fmt::Display) -> Error {
    Error::Store(e.to_string())
}

/// Epoch milliseconds now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

const KEY_COLUMNS: &str = "id, hash, alias, team_id, models, max_budget_pico, budget_duration_s, rpm, tpm, max_parallel, expires_at, metadata, created_at, role, guardrails";

impl Store {
    /// Connects (`sqlite://path` creates the file; `postgres://...`) and runs the migrations.
    pub async fn connect(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let (url, url_kind, max) = if let Some(path) = url.strip_prefix("sqlite://") {
            let sep = if path.contains('?') { '&' } else { '?' };
            let url = if path.contains("mode=") { url.to_string() } else { format!("{url}{sep}mode=rwc") };
            // One writer at a time is SQLite's way; a few readers beside it.
            (url, "sqlite", 4)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (url.to_string(), "postgres", 16)
        } else {
            return Err(Error::Config(format!("database_url `{url}`: use sqlite://PATH or postgres://...")));
        };
        let pool = AnyPoolOptions::new()
            .after_connect(move |connection, _| {
                Box::pin(async move {
                    if url_kind == "sqlite" {
                        // With WAL, NORMAL is durable against a crash of the gateway (a power
                        // loss may lose the last commits) and spares an fsync per commit.
                        sqlx::query("PRAGMA synchronous = NORMAL").execute(connection).await?;
                    }
                    Ok(())
                })
            })
            .max_connections(max)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect(&url)
            .await
            .map_err(|e| Error::Config(format!("cannot open the database ({url_kind}): {e}")))?;
        if url_kind == "sqlite" {
            // WAL lets readers work beside the spend writer.
            sqlx::query("PRAGMA journal_mode = WAL").execute(&pool).await.map_err(db)?;
        }
        MIGRATOR.run(&pool).await.map_err(|e| Error::Config(format!("database migrations: {e}")))?;
        Ok(Self { pool, url_kind })
    }

    /// `sqlite` or `postgres`.
    pub fn kind(&self) -> &'static str {
        self.url_kind
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ()).map_err(db)
    }

    /// Stores a new key.
    pub async fn insert_key(&self, key: &KeyRecord) -> Result<()> {
        let sql = format!(
            "INSERT INTO api_keys ({KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        );
        bind_key(sqlx::query(&sql), key).execute(&self.pool).await.map(|_| ()).map_err(db)
    }

    /// Replaces a key's settings (by id).
    pub async fn update_key(&self, key: &KeyRecord) -> Result<bool> {
        let sql = "UPDATE api_keys SET hash = $2, alias = $3, team_id = $4, models = $5, max_budget_pico = $6, \
                   budget_duration_s = $7, rpm = $8, tpm = $9, max_parallel = $10, expires_at = $11, metadata = $12, \
                   created_at = $13, role = $14, guardrails = $15 WHERE id = $1";
        let done = bind_key(sqlx::query(sql), key).execute(&self.pool).await.map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes a key; false when there was none.
    pub async fn delete_key(&self, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM api_keys WHERE id = $1").bind(id).execute(&self.pool).await.map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    /// The key with this secret's hash.
    pub async fn key_by_hash(&self, hash: &str) -> Result<Option<KeyRecord>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE hash = $1");
        let row = sqlx::query(&sql).bind(hash).fetch_optional(&self.pool).await.map_err(db)?;
        row.map(|r| key_from_row(&r)).transpose()
    }

    /// The key with this public id.
    pub async fn key_by_id(&self, id: &str) -> Result<Option<KeyRecord>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1");
        let row = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await.map_err(db)?;
        row.map(|r| key_from_row(&r)).transpose()
    }

    /// Every key, newest first.
    pub async fn list_keys(&self) -> Result<Vec<KeyRecord>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at DESC, id");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await.map_err(db)?;
        rows.iter().map(key_from_row).collect()
    }

    /// Stores a new team.
    pub async fn insert_team(&self, team: &TeamRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO teams (id, alias, max_budget_pico, budget_duration_s, metadata, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&team.id)
        .bind(&team.alias)
        .bind(team.max_budget_pico)
        .bind(team.budget_duration_s)
        .bind(team.metadata.to_string())
        .bind(team.created_at)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(db)
    }

    /// Replaces a team's settings; false when there is no such team.
    pub async fn update_team(&self, team: &TeamRecord) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE teams SET alias = $2, max_budget_pico = $3, budget_duration_s = $4, metadata = $5 WHERE id = $1",
        )
        .bind(&team.id)
        .bind(&team.alias)
        .bind(team.max_budget_pico)
        .bind(team.budget_duration_s)
        .bind(team.metadata.to_string())
        .execute(&self.pool)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes a team; false when there was none.
    /// Its keys leave it (they keep working, with no team budget).
    pub async fn delete_team(&self, id: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        sqlx::query("UPDATE api_keys SET team_id = NULL WHERE team_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let done = sqlx::query("DELETE FROM teams WHERE id = $1").bind(id).execute(&mut *tx).await.map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    /// The team with this id.
    pub async fn team_by_id(&self, id: &str) -> Result<Option<TeamRecord>> {
        let row = sqlx::query(
            "SELECT id, alias, max_budget_pico, budget_duration_s, metadata, created_at FROM teams WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.map(|r| team_from_row(&r)).transpose()
    }

    /// Every team, newest first.
    pub async fn list_teams(&self) -> Result<Vec<TeamRecord>> {
        let rows = sqlx::query(
            "SELECT id, alias, max_budget_pico, budget_duration_s, metadata, created_at FROM teams ORDER BY created_at DESC, id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter().map(team_from_row).collect()
    }

    /// The spend of a team since `since_ms`, pico-dollars.
    pub async fn team_spend_since(&self, team_id: &str, since_ms: i64) -> Result<i64> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(cost_pico), 0) AS BIGINT) AS total FROM spend_logs WHERE team_id = $1 AND created_at >= $2",
        )
        .bind(team_id)
        .bind(since_ms)
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        row.try_get::<i64, _>("total").map_err(db)
    }

    /// Writes spend rows in one transaction; a row already written (same call id) is kept.
    pub async fn write_spend(&self, rows: &[SpendRow]) -> Result<()> {
        // One multi-row INSERT per batch (at most SPEND_ROWS_PER_STATEMENT rows, well under
        // SQLite's and PostgreSQL's limits on bound parameters): one round trip to the
        // database's worker per batch rather than one per row.
        let mut tx = self.pool.begin().await.map_err(db)?;
        let mut rest = rows;
        while !rest.is_empty() {
            // Statements of 64, 32, ... 1 rows: seven shapes, each prepared once and cached.
            let take = 1usize << rest.len().min(SPEND_ROWS_PER_STATEMENT).ilog2();
            let (chunk, after) = rest.split_at(take);
            rest = after;
            let sql = spend_insert_sql(chunk.len(), self.url_kind == "sqlite");
            let mut query = sqlx::query(&sql);
            for row in chunk {
                query = query
                    .bind(&row.call_id)
                    .bind(&row.key_id)
                    .bind(&row.team_id)
                    .bind(&row.model)
                    .bind(&row.deployment)
                    .bind(&row.provider)
                    .bind(row.prompt_tokens)
                    .bind(row.completion_tokens)
                    .bind(row.cached_tokens)
                    .bind(row.cache_write_tokens)
                    .bind(row.reasoning_tokens)
                    .bind(row.cost_pico)
                    .bind(&row.status)
                    .bind(&row.error_kind)
                    .bind(row.latency_us)
                    .bind(row.ttft_us)
                    .bind(i64::from(row.cache_hit))
                    .bind(row.created_at)
                    .bind(&row.guardrails);
            }
            query.execute(&mut *tx).await.map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    /// Records what a call's guardrails decided (after its row was written).
    pub async fn set_spend_guardrails(&self, updates: &[(String, String)]) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        for (call_id, guardrails) in updates {
            sqlx::query("UPDATE spend_logs SET guardrails = $1 WHERE call_id = $2")
                .bind(guardrails)
                .bind(call_id)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    /// Spend rows, newest first, optionally of one key.
    pub async fn spend_logs(&self, key_id: Option<&str>, limit: i64) -> Result<Vec<SpendRow>> {
        let columns = "call_id, key_id, team_id, model, deployment, provider, prompt_tokens, completion_tokens, \
                       cached_tokens, cache_write_tokens, reasoning_tokens, cost_pico, status, error_kind, latency_us, \
                       ttft_us, cache_hit, created_at, guardrails";
        let rows = match key_id {
            Some(id) => {
                let sql =
                    format!("SELECT {columns} FROM spend_logs WHERE key_id = $1 ORDER BY created_at DESC LIMIT $2");
                sqlx::query(&sql).bind(id).bind(limit).fetch_all(&self.pool).await
            }
            None => {
                let sql = format!("SELECT {columns} FROM spend_logs ORDER BY created_at DESC LIMIT $1");
                sqlx::query(&sql).bind(limit).fetch_all(&self.pool).await
            }
        }
        .map_err(db)?;
        rows.iter().map(spend_from_row).collect()
    }

    /// The spend of a key since `since_ms`, pico-dollars.
    pub async fn key_spend_since(&self, key_id: &str, since_ms: i64) -> Result<i64> {
        let row = sqlx::query("SELECT CAST(COALESCE(SUM(cost_pico), 0) AS BIGINT) AS total FROM spend_logs WHERE key_id = $1 AND created_at >= $2")
            .bind(key_id)
            .bind(since_ms)
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        row.try_get::<i64, _>("total").map_err(db)
    }

    /// How many spend rows there are (for tests and readiness reports).
    pub async fn spend_count(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM spend_logs").fetch_one(&self.pool).await.map_err(db)?;
        row.try_get::<i64, _>("n").map_err(db)
    }
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

fn bind_key<'q>(query: AnyQuery<'q>, key: &'q KeyRecord) -> AnyQuery<'q> {
    query
        .bind(&key.id)
        .bind(&key.hash)
        .bind(&key.alias)
        .bind(&key.team_id)
        .bind(serde_json::to_string(&key.models).unwrap_or_else(|_| "[]".into()))
        .bind(key.max_budget_pico)
        .bind(key.budget_duration_s)
        .bind(key.rpm)
        .bind(key.tpm)
        .bind(key.max_parallel)
        .bind(key.expires_at)
        .bind(key.metadata.to_string())
        .bind(key.created_at)
        .bind(key.role.as_str())
        .bind(serde_json::to_string(&key.guardrails).unwrap_or_else(|_| "{}".into()))
}

fn key_from_row(row: &AnyRow) -> Result<KeyRecord> {
    let text = |name: &str| row.try_get::<String, _>(name).map_err(db);
    Ok(KeyRecord {
        id: text("id")?,
        hash: text("hash")?,
        alias: row.try_get("alias").map_err(db)?,
        team_id: row.try_get("team_id").map_err(db)?,
        models: serde_json::from_str(&text("models")?).map_err(db)?,
        max_budget_pico: row.try_get("max_budget_pico").map_err(db)?,
        budget_duration_s: row.try_get("budget_duration_s").map_err(db)?,
        rpm: row.try_get("rpm").map_err(db)?,
        tpm: row.try_get("tpm").map_err(db)?,
        max_parallel: row.try_get("max_parallel").map_err(db)?,
        expires_at: row.try_get("expires_at").map_err(db)?,
        metadata: serde_json::from_str(&text("metadata")?).map_err(db)?,
        created_at: row.try_get("created_at").map_err(db)?,
        role: match text("role")?.as_str() {
            "admin" => KeyRole::Admin,
            _ => KeyRole::User,
        },
        guardrails: serde_json::from_str(&text("guardrails")?).map_err(db)?,
    })
}

fn team_from_row(row: &AnyRow) -> Result<TeamRecord> {
    Ok(TeamRecord {
        id: row.try_get("id").map_err(db)?,
        alias: row.try_get("alias").map_err(db)?,
        max_budget_pico: row.try_get("max_budget_pico").map_err(db)?,
        budget_duration_s: row.try_get("budget_duration_s").map_err(db)?,
        metadata: serde_json::from_str(&row.try_get::<String, _>("metadata").map_err(db)?).map_err(db)?,
        created_at: row.try_get("created_at").map_err(db)?,
    })
}

fn spend_from_row(row: &AnyRow) -> Result<SpendRow> {
    Ok(SpendRow {
        call_id: row.try_get("call_id").map_err(db)?,
        key_id: row.try_get("key_id").map_err(db)?,
        team_id: row.try_get("team_id").map_err(db)?,
        model: row.try_get("model").map_err(db)?,
        deployment: row.try_get("deployment").map_err(db)?,
        provider: row.try_get("provider").map_err(db)?,
        prompt_tokens: row.try_get("prompt_tokens").map_err(db)?,
        completion_tokens: row.try_get("completion_tokens").map_err(db)?,
        cached_tokens: row.try_get("cached_tokens").map_err(db)?,
        cache_write_tokens: row.try_get("cache_write_tokens").map_err(db)?,
        reasoning_tokens: row.try_get("reasoning_tokens").map_err(db)?,
        cost_pico: row.try_get("cost_pico").map_err(db)?,
        status: row.try_get("status").map_err(db)?,
        error_kind: row.try_get("error_kind").map_err(db)?,
        latency_us: row.try_get("latency_us").map_err(db)?,
        ttft_us: row.try_get("ttft_us").map_err(db)?,
        cache_hit: row.try_get::<i64, _>("cache_hit").map_err(db)? != 0,
        created_at: row.try_get("created_at").map_err(db)?,
        guardrails: row.try_get("guardrails").map_err(db)?,
    })
}

/// The most spend rows bound in one INSERT statement (19 parameters each).
const SPEND_ROWS_PER_STATEMENT: usize = 64;

const SPEND_COLUMNS: usize = 19;

/// `INSERT INTO spend_logs (...) VALUES ($1, ..., $18), ($19, ...)` for `rows` rows, with
/// `?` placeholders for SQLite: it looks numbered parameters up by name with a linear scan,
/// quadratic over a statement with a thousand of them.
fn spend_insert_sql(rows: usize, anonymous: bool) -> String {
    use std::fmt::Write as _;
    let mut sql = String::with_capacity(300 + rows * SPEND_COLUMNS * 6);
    sql.push_str(
        "INSERT INTO spend_logs (call_id, key_id, team_id, model, deployment, provider, prompt_tokens, \
         completion_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, cost_pico, status, error_kind, \
         latency_us, ttft_us, cache_hit, created_at, guardrails) VALUES ",
    );
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..SPEND_COLUMNS {
            sql.push_str(if column == 0 { "" } else { ", " });
            if anonymous {
                sql.push('?');
            } else {
                let _ = write!(sql, "${}", row * SPEND_COLUMNS + column + 1);
            }
        }
        sql.push(')');
    }
    sql.push_str(" ON CONFLICT (call_id) DO NOTHING");
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spend log's key and team indexes are partial (rows with a key, rows with a team):
    /// the queries that name a key or a team still use them.
    #[tokio::test]
    async fn spend_queries_use_the_partial_indexes() {
        let path = std::env::temp_dir().join(format!("switchyard-store-plan-{:016x}.db", fastrand::u64(..)));
        let store = Store::connect(&format!("sqlite://{}", path.display())).await.unwrap_or_else(|e| panic!("{e}"));
        for (query, index) in [
            ("SELECT SUM(cost_pico) FROM spend_logs WHERE key_id = 'k' AND created_at >= 0", "spend_logs_key_time"),
            ("SELECT SUM(cost_pico) FROM spend_logs WHERE team_id = 't' AND created_at >= 0", "spend_logs_team_time"),
            (
                "SELECT call_id FROM spend_logs WHERE key_id = 'k' ORDER BY created_at DESC LIMIT 5",
                "spend_logs_key_time",
            ),
        ] {
            let rows = sqlx::query(&format!("EXPLAIN QUERY PLAN {query}"))
                .fetch_all(&store.pool)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let plan: Vec<String> = rows.iter().filter_map(|r| r.try_get::<String, _>("detail").ok()).collect();
            assert!(plan.iter().any(|step| step.contains(index)), "{query}: {plan:?}");
        }
        drop(store);
        let _ = std::fs::remove_file(&path);
    }
}
