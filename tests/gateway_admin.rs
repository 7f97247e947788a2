//! The admin API as a contract (`openapi/switchyard.yaml`): the document lists exactly the
//! routes served and is served itself; every admin route refuses no key, a wrong key and a
//! normal key, and serves an admin key and the master key; query and body errors are OpenAI
//! envelopes; deletions are all or nothing; the generated client works over loopback.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use switchyard::gateway::{Config, Gateway, admin_api_routes, app, serve_on};
use tower::ServiceExt as _;

const MASTER: &str = "sk-master-for-admin-tests";

const MOCKS: &str = "model_list:
  - model_name: echo
    litellm_params: {model: mock/echo}
  - model_name: slow
    litellm_params: {model: mock/slow-200}
";

fn sqlite() -> String {
    let path = std::env::temp_dir().join(format!("switchyard-admin-{:016x}.db", fastrand::u64(..)));
    format!("sqlite://{}", path.display())
}

async fn build() -> Gateway {
    let config = Config::parse(MOCKS).unwrap_or_else(|e| panic!("{e}"));
    let database = sqlite();
    let env = move |name: &str| match name {
        "SWITCHYARD_MASTER_KEY" => Some(MASTER.to_string()),
        "SWITCHYARD_DATABASE_URL" => Some(database.clone()),
        _ => None,
    };
    Gateway::from_config(&config, &env).await.unwrap_or_else(|e| panic!("{e}"))
}

struct Answer {
    status: StatusCode,
    content_type: Option<String>,
    body: Value,
}

async fn call(app: &axum::Router, method: &str, path: &str, key: Option<&str>, body: Option<&Value>) -> Answer {
    let mut request = Request::builder().method(method).uri(path).header("content-type", "application/json");
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    let request =
        request.body(body.map_or_else(Body::empty, |b| Body::from(b.to_string()))).unwrap_or_else(|e| panic!("{e}"));
    let response = app.clone().oneshot(request).await.unwrap_or_else(|e| match e {});
    let status = response.status();
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).map(ToString::to_string);
    let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap_or_else(|e| panic!("{e}"));
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    Answer { status, content_type, body }
}

/// Makes a key with the master key; returns (secret, id).
async fn generate(app: &axum::Router, fields: Value) -> (String, String) {
    let answer = call(app, "POST", "/key/generate", Some(MASTER), Some(&fields)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let text = |name: &str| answer.body[name].as_str().unwrap_or_else(|| panic!("{name}: {}", answer.body)).to_string();
    (text("key"), text("key_id"))
}

fn document() -> Value {
    let text = std::fs::read_to_string("openapi/switchyard.yaml").unwrap_or_else(|e| panic!("{e}"));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{e}"))
}

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

#[test]
fn the_document_lists_exactly_the_routes_the_gateway_serves() {
    let doc = document();
    let paths = doc["paths"].as_object().unwrap_or_else(|| panic!("paths"));
    let documented: BTreeSet<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            let item = item.as_object().unwrap_or_else(|| panic!("{path}"));
            item.keys()
                .filter(|m| METHODS.contains(&m.as_str()))
                .map(|m| (m.to_uppercase(), path.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    let served: BTreeSet<(String, String)> =
        admin_api_routes().into_iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    assert_eq!(documented, served);
    // Only the health checks and the document itself are open.
    let open: BTreeSet<&str> = paths
        .iter()
        .filter(|(_, item)| {
            item.as_object().is_some_and(|ops| {
                ops.values().any(|op| op.get("security").and_then(Value::as_array).is_some_and(Vec::is_empty))
            })
        })
        .map(|(path, _)| path.as_str())
        .collect();
    assert_eq!(open, BTreeSet::from(["/health/liveness", "/health/readiness", "/openapi.json"]));
}

#[tokio::test]
async fn the_gateway_serves_its_document_with_the_models_it_serves() {
    let app = app(Arc::new(build().await));
    let answer = call(&app, "GET", "/openapi.json", None, None).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.content_type.as_deref(), Some("application/json"));
    assert_eq!(answer.body["openapi"], "3.0.3");
    assert_eq!(answer.body["paths"], document()["paths"], "the paths as written");
    assert_eq!(answer.body["components"]["schemas"]["KeyInfo"], document()["components"]["schemas"]["KeyInfo"]);
    for request in ["KeyGenerateRequest", "KeyUpdateRequest"] {
        let items = &answer.body["components"]["schemas"][request]["properties"]["models"]["items"];
        let models: BTreeSet<&str> = items["enum"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        assert_eq!(models, BTreeSet::from(["echo", "slow"]), "{request}");
    }
}

#[tokio::test]
async fn every_admin_route_needs_the_master_key_or_an_admin_key() {
    let app = app(Arc::new(build().await));
    let (user, _) = generate(&app, json!({"key_alias": "user"})).await;
    let (admin, admin_id) = generate(&app, json!({"key_alias": "ops", "role": "admin"})).await;
    let (_, victim) = generate(&app, json!({"key_alias": "victim"})).await;
    let team = call(&app, "POST", "/team/new", Some(MASTER), Some(&json!({"team_alias": "t"}))).await;
    let team = team.body["team_id"].as_str().unwrap_or_else(|| panic!("team")).to_string();
    // Each admin route with a request that succeeds (or, for deletions, names nothing that
    // exists, so that the matrix can run it for every key).
    let routes: Vec<(&str, String, Option<Value>, StatusCode)> = vec![
        ("POST", "/key/generate".into(), Some(json!({})), StatusCode::OK),
        ("GET", format!("/key/info?key_id={victim}"), None, StatusCode::OK),
        ("POST", "/key/update".into(), Some(json!({"key_id": victim, "key_alias": "renamed"})), StatusCode::OK),
        ("POST", "/key/delete".into(), Some(json!({"key_ids": ["key_none"]})), StatusCode::NOT_FOUND),
        ("GET", "/key/list".into(), None, StatusCode::OK),
        ("GET", "/spend/logs?limit=5".into(), None, StatusCode::OK),
        ("GET", "/model/info".into(), None, StatusCode::OK),
        ("POST", "/team/new".into(), Some(json!({})), StatusCode::OK),
        ("GET", format!("/team/info?team_id={team}"), None, StatusCode::OK),
        ("POST", "/team/update".into(), Some(json!({"team_id": team, "team_alias": "u"})), StatusCode::OK),
        ("POST", "/team/delete".into(), Some(json!({"team_ids": ["team_none"]})), StatusCode::NOT_FOUND),
        ("GET", "/team/list".into(), None, StatusCode::OK),
    ];
    let covered: BTreeSet<(&str, &str)> =
        routes.iter().map(|(m, p, _, _)| (*m, p.split('?').next().unwrap_or(p))).collect();
    let admin_routes: BTreeSet<(&str, &str)> =
        admin_api_routes().into_iter().filter(|(_, p)| !p.starts_with("/health") && *p != "/openapi.json").collect();
    assert_eq!(covered, admin_routes, "the matrix covers every admin route");

    for (method, path, body, expected) in &routes {
        let none = call(&app, method, path, None, body.as_ref()).await;
        assert_eq!(none.status, StatusCode::UNAUTHORIZED, "{method} {path} with no key");
        assert_eq!(none.body["error"]["code"], "missing_api_key", "{method} {path}");
        let wrong = call(&app, method, path, Some("sk-not-a-key"), body.as_ref()).await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{method} {path} with a wrong key");
        assert_eq!(wrong.body["error"]["code"], "invalid_api_key", "{method} {path}");
        let normal = call(&app, method, path, Some(&user), body.as_ref()).await;
        assert_eq!(normal.status, StatusCode::FORBIDDEN, "{method} {path} with a normal key: {}", normal.body);
        assert_eq!(normal.body["error"]["type"], "permission_denied", "{method} {path}");
        assert_eq!(normal.body["error"]["code"], "admin_only", "{method} {path}");
        for (who, key) in [("an admin key", admin.as_str()), ("the master key", MASTER)] {
            let answer = call(&app, method, path, Some(key), body.as_ref()).await;
            assert_eq!(answer.status, *expected, "{method} {path} with {who}: {}", answer.body);
        }
    }
    // An admin key can use the model routes too, and loses the admin API with its role.
    let chat = json!({"model": "echo", "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(call(&app, "POST", "/v1/chat/completions", Some(&admin), Some(&chat)).await.status, StatusCode::OK);
    let demoted =
        call(&app, "POST", "/key/update", Some(MASTER), Some(&json!({"key_id": admin_id, "role": "user"}))).await;
    assert_eq!(demoted.body["role"], "user");
    assert_eq!(call(&app, "GET", "/key/list", Some(&admin), None).await.status, StatusCode::FORBIDDEN);
    // A normal key cannot make itself an admin: it cannot reach /key/update at all.
    let (_, user_id) = generate(&app, json!({})).await;
    let climb =
        call(&app, "POST", "/key/update", Some(&user), Some(&json!({"key_id": user_id, "role": "admin"}))).await;
    assert_eq!(climb.status, StatusCode::FORBIDDEN);
    // The open routes need no key.
    for path in ["/health/liveness", "/health/readiness", "/openapi.json"] {
        assert_eq!(call(&app, "GET", path, None, None).await.status, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn bad_queries_and_bodies_are_envelopes_and_deletions_are_all_or_nothing() {
    let app = app(Arc::new(build().await));
    for path in ["/spend/logs?limit=abc", "/spend/logs?limit=0", "/spend/logs?limit=1.5", "/key/info", "/team/info"] {
        let answer = call(&app, "GET", path, Some(MASTER), None).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{path}: {}", answer.body);
        assert_eq!(answer.content_type.as_deref(), Some("application/json"), "{path}");
        assert_eq!(answer.body["error"]["type"], "invalid_request_error", "{path}: {}", answer.body);
    }
    for (path, body) in [
        ("/key/delete", json!({})),
        ("/key/delete", json!({"key_ids": []})),
        ("/key/delete", json!({"keys": [], "key_ids": ["x"]})),
        ("/team/delete", json!({"team_ids": []})),
        ("/key/generate", json!({"budget_duration": " 30d"})),
        ("/key/generate", json!({"duration": "1000000000s"})),
        ("/key/generate", json!({"duration": "0d"})),
        ("/key/generate", json!({"role": "root"})),
        ("/key/update", json!({"key_alias": "no id"})),
    ] {
        let answer = call(&app, "POST", path, Some(MASTER), Some(&body)).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{path} {body}: {}", answer.body);
        assert_eq!(answer.body["error"]["type"], "invalid_request_error", "{path} {body}");
    }
    let (_, kept) = generate(&app, json!({})).await;
    let partly = call(&app, "POST", "/key/delete", Some(MASTER), Some(&json!({"key_ids": [kept, "key_none"]}))).await;
    assert_eq!(partly.status, StatusCode::NOT_FOUND);
    let still = call(&app, "GET", &format!("/key/info?key_id={kept}"), Some(MASTER), None).await;
    assert_eq!(still.status, StatusCode::OK, "one unknown key deletes nothing");

    let team = call(&app, "POST", "/team/new", Some(MASTER), Some(&json!({}))).await;
    let team = team.body["team_id"].as_str().unwrap_or_else(|| panic!("team")).to_string();
    let (member, member_id) = generate(&app, json!({"team_id": team})).await;
    let partly =
        call(&app, "POST", "/team/delete", Some(MASTER), Some(&json!({"team_ids": [team, "team_none"]}))).await;
    assert_eq!(partly.status, StatusCode::NOT_FOUND);
    assert_eq!(
        call(&app, "GET", &format!("/team/info?team_id={team}"), Some(MASTER), None).await.status,
        StatusCode::OK
    );
    let deleted = call(&app, "POST", "/team/delete", Some(MASTER), Some(&json!({"team_ids": [team]}))).await;
    assert_eq!(deleted.body["deleted_teams"], json!([team]));
    let info = call(&app, "GET", &format!("/key/info?key_id={member_id}"), Some(MASTER), None).await;
    assert_eq!(info.body["info"]["team_id"], Value::Null, "the team's keys leave it");
    let chat = json!({"model": "echo", "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(call(&app, "POST", "/v1/chat/completions", Some(&member), Some(&chat)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_generated_client_manages_keys_over_loopback() {
    use switchyard::admin::{Client, Error, types};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
    let base = format!("http://{}", listener.local_addr().unwrap_or_else(|e| panic!("{e}")));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_on(build().await, listener, async {
        let _ = stopped.await;
    }));
    let admin = Client::with_key(&base, MASTER).unwrap_or_else(|e| panic!("{e}"));

    let made = admin
        .key_generate()
        .body_map(|b| b.key_alias("client".to_string()).max_budget(5.0).models(vec!["echo".to_string()]))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert!(made.key.starts_with("sk-"));
    assert_eq!(made.max_budget, Some(5.0));
    assert_eq!(made.role, types::KeyRole::User);
    let info = admin.key_info().key_id(&made.key_id).send().await.unwrap_or_else(|e| panic!("{e}")).into_inner();
    assert_eq!(info.info.key_alias.as_deref(), Some("client"));
    assert_eq!(info.info.models, vec!["echo".to_string()]);

    let missing = admin.key_info().key_id("key_none").send().await;
    match missing {
        Err(Error::ErrorResponse(answer)) => {
            assert_eq!(answer.status().as_u16(), 404);
            assert_eq!(answer.error.type_, "not_found_error");
        }
        other => panic!("expected a typed 404, got {other:?}"),
    }
    let wrong = Client::with_key(&base, "sk-wrong").unwrap_or_else(|e| panic!("{e}"));
    match wrong.key_list().send().await {
        Err(Error::ErrorResponse(answer)) => assert_eq!(answer.status().as_u16(), 401),
        other => panic!("expected a typed 401, got {other:?}"),
    }

    let deleted = admin
        .key_delete()
        .body_map(|b| b.key_ids(vec![made.key_id.clone()]))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_inner();
    assert_eq!(deleted.deleted_keys, vec![made.key_id.clone()]);
    let ready = admin.health_readiness().send().await.unwrap_or_else(|e| panic!("{e}")).into_inner();
    assert_eq!(ready.database, "sqlite");
    let _ = stop.send(());
    server.await.unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|e| panic!("{e}"));
}
