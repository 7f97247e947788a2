//! Virtual keys: the admin API that manages them (`/key/generate`, `/key/info`,
//! `/key/update`, `/key/delete`, `/key/list`), `/spend/logs` and `/model/info`. Who is
//! calling is the gateway's `auth` module's (re-exported here: [`Principal`], [`hash_secret`]).
//!
//! A key's secret (`sk-...`, 122 random bits from the OS) is shown once, at generation; the
//! store keeps its SHA-256 only, and logs name the key by its public id (`key_...`).

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

pub use super::auth::{Principal, hash_secret};
use super::store::{KeyRecord, KeyRole, now_ms};
use super::{ApiFailure, Gateway};
use crate::error::ErrorKind;

/// A new secret and a new public id, from the OS's random source.
fn new_secret() -> (String, String) {
    let secret = format!("sk-{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let id = format!("key_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
    (secret, id)
}

impl Gateway {
    /// Forgets what is cached of a key on this instance (others see a change within 10 s).
    async fn forget(&self, key: &KeyRecord) {
        self.keys.invalidate(&key.hash).await;
    }
}

/// `"30d"`, `"12h"`, `"15m"`, `"90s"`, `"2w"`, `"1mo"` or a number of seconds: one to nine
/// digits, not zero (the `Duration` schema of `openapi/switchyard.yaml`).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    if number.is_empty() || number.len() > 9 {
        return None;
    }
    let n: u64 = number.parse().ok()?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        "w" => n.checked_mul(7 * 86_400)?,
        "mo" => n.checked_mul(30 * 86_400)?,
        _ => return None,
    };
    (secs > 0).then(|| Duration::from_secs(secs))
}

pub(super) fn dollars_to_pico(dollars: f64, field: &str) -> Result<i64, ApiFailure> {
    if !dollars.is_finite() || !(0.0..=9_000_000.0).contains(&dollars) {
        return Err(ApiFailure::bad_request(format!("`{field}` must be a number of dollars from 0 to 9,000,000")));
    }
    Ok((dollars * 1e12).round() as i64)
}

pub(super) fn pico_to_dollars(pico: i64) -> f64 {
    pico as f64 / 1e12
}

/// The fields a key is made or changed with (LiteLLM's names).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct KeyFields {
    key: Option<String>,
    key_id: Option<String>,
    key_alias: Option<String>,
    team_id: Option<String>,
    models: Option<Vec<String>>,
    max_budget: Option<f64>,
    budget_duration: Option<String>,
    rpm_limit: Option<i64>,
    tpm_limit: Option<i64>,
    max_parallel_requests: Option<i64>,
    duration: Option<String>,
    metadata: Option<Value>,
    role: Option<KeyRole>,
    guardrails: Option<super::guardrails::KeyGuardrails>,
}

fn non_negative(value: Option<i64>, field: &str) -> Result<Option<i64>, ApiFailure> {
    match value {
        Some(v) if v < 0 => Err(ApiFailure::bad_request(format!("`{field}` must not be negative"))),
        other => Ok(other),
    }
}

pub(super) fn duration_field(text: &str, field: &str) -> Result<Duration, ApiFailure> {
    parse_duration(text).ok_or_else(|| {
        ApiFailure::bad_request(format!("`{field}` must be a duration like \"30d\", \"12h\", \"15m\" or \"90s\""))
    })
}

impl KeyFields {
    /// Applies the fields set to a key.
    fn apply(self, key: &mut KeyRecord, gateway: &Gateway) -> Result<(), ApiFailure> {
        if let Some(alias) = self.key_alias {
            key.alias = Some(alias);
        }
        if let Some(team) = self.team_id {
            key.team_id = Some(team);
        }
        if let Some(models) = self.models {
            let groups = gateway.router.groups();
            if let Some(unknown) = models.iter().find(|m| !groups.contains(&m.as_str())) {
                return Err(ApiFailure::bad_request(format!(
                    "`models` names `{}`, which this gateway does not serve (it serves: {})",
                    super::envelope::shown(unknown),
                    groups.join(", ")
                )));
            }
            key.models = models;
        }
        let budget =
            Budget { max_budget: self.max_budget, budget_duration: self.budget_duration, metadata: self.metadata };
        budget.apply(&mut key.max_budget_pico, &mut key.budget_duration_s, &mut key.metadata)?;
        if let Some(rpm) = non_negative(self.rpm_limit, "rpm_limit")? {
            key.rpm = Some(rpm);
        }
        if let Some(tpm) = non_negative(self.tpm_limit, "tpm_limit")? {
            key.tpm = Some(tpm);
        }
        if let Some(parallel) = non_negative(self.max_parallel_requests, "max_parallel_requests")? {
            key.max_parallel = Some(parallel);
        }
        if let Some(life) = self.duration {
            let life = duration_field(&life, "duration")?;
            key.expires_at = Some(now_ms().saturating_add(life.as_millis() as i64));
        }
        if let Some(role) = self.role {
            key.role = role;
        }
        if let Some(guardrails) = self.guardrails {
            gateway.guardrails.check_key(&guardrails)?;
            key.guardrails = guardrails;
        }
        Ok(())
    }
}

/// The budget and metadata fields keys and teams share.
pub(super) struct Budget {
    pub max_budget: Option<f64>,
    pub budget_duration: Option<String>,
    pub metadata: Option<Value>,
}

impl Budget {
    /// Checks the fields set and writes them to a key's or team's record.
    pub(super) fn apply(
        self,
        max_budget_pico: &mut Option<i64>,
        budget_duration_s: &mut Option<i64>,
        metadata: &mut Value,
    ) -> Result<(), ApiFailure> {
        if let Some(budget) = self.max_budget {
            *max_budget_pico = Some(dollars_to_pico(budget, "max_budget")?);
        }
        if let Some(period) = self.budget_duration {
            *budget_duration_s = Some(duration_field(&period, "budget_duration")?.as_secs() as i64);
        }
        if let Some(value) = self.metadata {
            if !value.is_object() {
                return Err(ApiFailure::bad_request("`metadata` must be an object"));
            }
            *metadata = value;
        }
        Ok(())
    }
}

/// What the admin API shows of a key (never its secret or hash).
async fn describe(gateway: &Gateway, key: &KeyRecord) -> Value {
    let spend = gateway.limits.period_spend(key).await.ok();
    json!({
        "key_id": key.id,
        "key_alias": key.alias,
        "team_id": key.team_id,
        "models": key.models,
        "max_budget": key.max_budget_pico.map(pico_to_dollars),
        "budget_duration_s": key.budget_duration_s,
        "spend": spend.map(pico_to_dollars),
        "rpm_limit": key.rpm,
        "tpm_limit": key.tpm,
        "max_parallel_requests": key.max_parallel,
        "expires_at": key.expires_at,
        "metadata": key.metadata,
        "created_at": key.created_at,
        "role": key.role.as_str(),
        "guardrails": key.guardrails,
    })
}

/// A query string parsed into `T`, or OpenAI's envelope saying what is wrong with it (axum's
/// own rejection is plain text).
#[derive(Debug)]
pub(super) struct AdminQuery<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for AdminQuery<T> {
    type Rejection = ApiFailure;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiFailure::bad_request(format!("invalid query: {}", rejection.body_text()))),
        }
    }
}

pub(super) fn admin_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiFailure> {
    let body = if body.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { body };
    serde_json::from_slice(body).map_err(|e| ApiFailure::bad_request(format!("invalid request: {e}")))
}

pub(super) async fn generate(
    State(gateway): State<Arc<Gateway>>,
    body: axum::body::Bytes,
) -> Result<Response, ApiFailure> {
    let fields: KeyFields = admin_json(&body)?;
    if fields.key.is_some() || fields.key_id.is_some() {
        return Err(ApiFailure::bad_request("`key` and `key_id` are chosen by the gateway; leave them out"));
    }
    let (secret, id) = new_secret();
    let mut key =
        KeyRecord { id, hash: hash_secret(&secret), metadata: json!({}), created_at: now_ms(), ..KeyRecord::default() };
    fields.apply(&mut key, &gateway)?;
    check_team(&gateway, &key).await?;
    gateway.store.insert_key(&key).await?;
    let mut out = describe(&gateway, &key).await;
    out["key"] = Value::String(secret);
    Ok(Json(out).into_response())
}

/// A key may join only a team that exists.
async fn check_team(gateway: &Gateway, key: &KeyRecord) -> Result<(), ApiFailure> {
    match &key.team_id {
        Some(id) if gateway.store.team_by_id(id).await?.is_none() => Err(ApiFailure::new(
            ErrorKind::NotFound,
            format!("`team_id` names `{}`, which does not exist (make it with /team/new)", super::envelope::shown(id)),
        )
        .code("team_not_found")),
        _ => Ok(()),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct Which {
    key: Option<String>,
    key_id: Option<String>,
}

async fn find(gateway: &Gateway, key: Option<&str>, key_id: Option<&str>) -> Result<KeyRecord, ApiFailure> {
    let found = match (key, key_id) {
        (_, Some(id)) => gateway.store.key_by_id(id).await?,
        (Some(secret), None) => gateway.store.key_by_hash(&hash_secret(secret)).await?,
        (None, None) => return Err(ApiFailure::bad_request("name the key with `key_id` (or `key`)")),
    };
    found.ok_or_else(|| ApiFailure::new(ErrorKind::NotFound, "no such key").code("key_not_found"))
}

pub(super) async fn info(
    State(gateway): State<Arc<Gateway>>,
    AdminQuery(which): AdminQuery<Which>,
) -> Result<Response, ApiFailure> {
    let key = find(&gateway, which.key.as_deref(), which.key_id.as_deref()).await?;
    Ok(Json(json!({"key_id": key.id, "info": describe(&gateway, &key).await})).into_response())
}

pub(super) async fn update(
    State(gateway): State<Arc<Gateway>>,
    body: axum::body::Bytes,
) -> Result<Response, ApiFailure> {
    let fields: KeyFields = admin_json(&body)?;
    let mut key = find(&gateway, fields.key.as_deref(), fields.key_id.as_deref()).await?;
    fields.apply(&mut key, &gateway)?;
    check_team(&gateway, &key).await?;
    gateway.store.update_key(&key).await?;
    gateway.forget(&key).await;
    Ok(Json(describe(&gateway, &key).await).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DeleteBody {
    keys: Option<Vec<String>>,
    key_ids: Option<Vec<String>>,
}

pub(super) async fn delete(
    State(gateway): State<Arc<Gateway>>,
    body: axum::body::Bytes,
) -> Result<Response, ApiFailure> {
    let which: DeleteBody = admin_json(&body)?;
    if which.keys.is_none() && which.key_ids.is_none() {
        return Err(ApiFailure::bad_request("name the keys to delete in `key_ids` (or `keys`)"));
    }
    if which.keys.as_ref().is_some_and(Vec::is_empty) || which.key_ids.as_ref().is_some_and(Vec::is_empty) {
        return Err(ApiFailure::bad_request("`key_ids` and `keys`, when given, must name at least one key"));
    }
    // Every key is found before any is deleted: one unknown key deletes nothing.
    let mut found = Vec::new();
    for secret in which.keys.iter().flatten() {
        found.push(find(&gateway, Some(secret), None).await?);
    }
    for id in which.key_ids.iter().flatten() {
        found.push(find(&gateway, None, Some(id)).await?);
    }
    let mut deleted = Vec::new();
    for key in found {
        if gateway.store.delete_key(&key.id).await? {
            deleted.push(key.id.clone());
        }
        gateway.forget(&key).await;
    }
    Ok(Json(json!({"deleted_keys": deleted})).into_response())
}

pub(super) async fn list(State(gateway): State<Arc<Gateway>>) -> Result<Response, ApiFailure> {
    let mut keys = Vec::new();
    for key in gateway.store.list_keys().await? {
        keys.push(describe(&gateway, &key).await);
    }
    Ok(Json(json!({"keys": keys})).into_response())
}

#[derive(Debug, Deserialize)]
pub(super) struct SpendQuery {
    key_id: Option<String>,
    limit: Option<i64>,
}

pub(super) async fn spend_logs(
    State(gateway): State<Arc<Gateway>>,
    AdminQuery(q): AdminQuery<SpendQuery>,
) -> Result<Response, ApiFailure> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiFailure::bad_request("`limit` must be from 1 to 10000"));
    }
    let rows = gateway.store.spend_logs(q.key_id.as_deref(), limit).await?;
    let rows: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            let mut v = serde_json::to_value(&r).unwrap_or(Value::Null);
            v["spend"] = json!(pico_to_dollars(r.cost_pico));
            // Stored as JSON text; shown as the list it is.
            v["guardrails"] = r.guardrails.as_deref().and_then(|g| serde_json::from_str(g).ok()).unwrap_or(Value::Null);
            v
        })
        .collect();
    Ok(Json(rows).into_response())
}

pub(super) async fn model_info(State(gateway): State<Arc<Gateway>>) -> Response {
    let data: Vec<Value> = gateway
        .router
        .groups()
        .into_iter()
        .flat_map(|group| {
            gateway
                .router
                .deployments(group)
                .into_iter()
                .map(move |id| json!({"model_name": group, "model_info": {"id": id}}))
        })
        .collect();
    (StatusCode::OK, Json(json!({"data": data}))).into_response()
}
