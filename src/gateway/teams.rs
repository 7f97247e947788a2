//! Teams: keys that share a budget. `/team/new`, `/team/info`, `/team/update`,
//! `/team/delete`, `/team/list` (master key). A key joins a team with `team_id` at
//! `/key/generate` or `/key/update`; a call then reserves against both budgets.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::keys::{AdminQuery, Budget, admin_json, pico_to_dollars};
use super::store::{TeamRecord, now_ms};
use super::{ApiFailure, Gateway};
use crate::error::ErrorKind;

impl Gateway {
    /// A team, cached for 10 s.
    pub(super) async fn team(&self, id: &str) -> Result<Option<Arc<TeamRecord>>, ApiFailure> {
        let store = self.store.clone();
        let key = id.to_string();
        self.teams
            .try_get_with(key.clone(), async move { store.team_by_id(&key).await.map(|t| t.map(Arc::new)) })
            .await
            .map_err(|e| ApiFailure::new(ErrorKind::Server, format!("cannot read the team: {e}")))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TeamFields {
    team_id: Option<String>,
    team_alias: Option<String>,
    max_budget: Option<f64>,
    budget_duration: Option<String>,
    metadata: Option<Value>,
}

impl TeamFields {
    fn apply(self, team: &mut TeamRecord) -> Result<(), ApiFailure> {
        if let Some(alias) = self.team_alias {
            team.alias = Some(alias);
        }
        let budget =
            Budget { max_budget: self.max_budget, budget_duration: self.budget_duration, metadata: self.metadata };
        budget.apply(&mut team.max_budget_pico, &mut team.budget_duration_s, &mut team.metadata)
    }
}

async fn describe(gateway: &Gateway, team: &TeamRecord) -> Value {
    let spend = gateway.limits.period_spend(team).await.ok();
    json!({
        "team_id": team.id,
        "team_alias": team.alias,
        "max_budget": team.max_budget_pico.map(pico_to_dollars),
        "budget_duration_s": team.budget_duration_s,
        "spend": spend.map(pico_to_dollars),
        "metadata": team.metadata,
        "created_at": team.created_at,
    })
}

async fn find(gateway: &Gateway, id: Option<&str>) -> Result<TeamRecord, ApiFailure> {
    let id = id.ok_or_else(|| ApiFailure::bad_request("name the team with `team_id`"))?;
    gateway.store.team_by_id(id).await?.ok_or_else(|| {
        ApiFailure::new(ErrorKind::NotFound, format!("no team `{}`", super::envelope::shown(id))).code("team_not_found")
    })
}

pub(super) async fn new(State(gateway): State<Arc<Gateway>>, body: axum::body::Bytes) -> Result<Response, ApiFailure> {
    let fields: TeamFields = admin_json(&body)?;
    if fields.team_id.is_some() {
        return Err(ApiFailure::bad_request("`team_id` is chosen by the gateway; leave it out"));
    }
    let mut team = TeamRecord {
        id: format!("team_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]),
        metadata: json!({}),
        created_at: now_ms(),
        ..TeamRecord::default()
    };
    fields.apply(&mut team)?;
    gateway.store.insert_team(&team).await?;
    Ok(Json(describe(&gateway, &team).await).into_response())
}

#[derive(Debug, Deserialize)]
pub(super) struct Which {
    team_id: Option<String>,
}

pub(super) async fn info(
    State(gateway): State<Arc<Gateway>>,
    AdminQuery(which): AdminQuery<Which>,
) -> Result<Response, ApiFailure> {
    let team = find(&gateway, which.team_id.as_deref()).await?;
    Ok(Json(describe(&gateway, &team).await).into_response())
}

pub(super) async fn update(
    State(gateway): State<Arc<Gateway>>,
    body: axum::body::Bytes,
) -> Result<Response, ApiFailure> {
    let fields: TeamFields = admin_json(&body)?;
    let mut team = find(&gateway, fields.team_id.as_deref()).await?;
    fields.apply(&mut team)?;
    gateway.store.update_team(&team).await?;
    gateway.teams.invalidate(&team.id).await;
    Ok(Json(describe(&gateway, &team).await).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DeleteBody {
    team_ids: Vec<String>,
}

pub(super) async fn delete(
    State(gateway): State<Arc<Gateway>>,
    body: axum::body::Bytes,
) -> Result<Response, ApiFailure> {
    let which: DeleteBody = admin_json(&body)?;
    if which.team_ids.is_empty() {
        return Err(ApiFailure::bad_request("`team_ids` must name at least one team"));
    }
    // Every team is found before any is deleted: one unknown team deletes nothing.
    let mut found = Vec::new();
    for id in &which.team_ids {
        found.push(find(&gateway, Some(id)).await?);
    }
    let mut deleted = Vec::new();
    for team in found {
        if gateway.store.delete_team(&team.id).await? {
            deleted.push(team.id.clone());
        }
        gateway.teams.invalidate(&team.id).await;
    }
    Ok(Json(json!({"deleted_teams": deleted})).into_response())
}

pub(super) async fn list(State(gateway): State<Arc<Gateway>>) -> Result<Response, ApiFailure> {
    let mut teams = Vec::new();
    for team in gateway.store.list_teams().await? {
        teams.push(describe(&gateway, &team).await);
    }
    Ok(Json(json!({"teams": teams})).into_response())
}
