//! Virtual keys, the admin API, budgets, limits and the spend log, through the HTTP surface;
//! two gateway instances sharing Redis and PostgreSQL; a graceful shutdown under load.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use switchyard::gateway::{Config, Gateway, app, serve_on_workers};
use tower::ServiceExt as _;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const MASTER: &str = "sk-master-for-tests";
const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";
const REDIS: &str = "redis://127.0.0.1:6379/0";

fn sqlite() -> String {
    let path = std::env::temp_dir().join(format!("switchyard-keys-{:016x}.db", fastrand::u64(..)));
    format!("sqlite://{}", path.display())
}

async fn build(config: &str, database: String) -> Gateway {
    let config = Config::parse(config).unwrap_or_else(|e| panic!("{e}"));
    let env = move |name: &str| match name {
        "SWITCHYARD_MASTER_KEY" => Some(MASTER.to_string()),
        "SWITCHYARD_DATABASE_URL" => Some(database.clone()),
        _ => None,
    };
    Gateway::from_config(&config, &env).await.unwrap_or_else(|e| panic!("{e}"))
}

const MOCKS: &str = "model_list:
  - model_name: echo
    litellm_params: {model: mock/echo}
  - model_name: slow
    litellm_params: {model: mock/slow-200}
";

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Value,
}

async fn call(app: &axum::Router, method: &str, path: &str, key: &str, body: Option<Value>) -> Answer {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap_or_else(|e| panic!("{e}"));
    let response = app.clone().oneshot(request).await.unwrap_or_else(|e| match e {});
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap_or_else(|e| panic!("{e}"));
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer { status, headers, body }
}

fn chat(model: &str) -> Value {
    json!({"model": model, "max_tokens": 100, "messages": [{"role": "user", "content": "hello there"}]})
}

async fn generate(app: &axum::Router, fields: Value) -> (String, String) {
    let answer = call(app, "POST", "/key/generate", MASTER, Some(fields)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let key = answer.body["key"].as_str().unwrap_or_else(|| panic!("a key: {}", answer.body)).to_string();
    let id = answer.body["key_id"].as_str().unwrap_or_else(|| panic!("an id")).to_string();
    assert!(key.starts_with("sk-") && key.len() > 60 && id.starts_with("key_"));
    (key, id)
}

/// Waits until `check` holds (async settlement and spend writing), failing after 5 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..250 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn the_admin_api_refuses_other_keys_and_checks_its_input() {
    let app = app(Arc::new(build(MOCKS, sqlite()).await));
    let (key, key_id) = generate(&app, json!({"models": ["echo"], "key_alias": "ci"})).await;
    for (method, path, body) in [
        ("POST", "/key/generate", Some(json!({}))),
        ("GET", "/key/info?key_id=x", None),
        ("POST", "/key/update", Some(json!({"key_id": "x"}))),
        ("POST", "/key/delete", Some(json!({"key_ids": ["x"]}))),
        ("GET", "/key/list", None),
        ("GET", "/spend/logs", None),
        ("GET", "/model/info", None),
        ("POST", "/team/new", Some(json!({}))),
        ("GET", "/team/info?team_id=x", None),
        ("POST", "/team/update", Some(json!({"team_id": "x"}))),
        ("POST", "/team/delete", Some(json!({"team_ids": ["x"]}))),
        ("GET", "/team/list", None),
    ] {
        let as_key = call(&app, method, path, &key, body.clone()).await;
        assert_eq!(as_key.status, StatusCode::FORBIDDEN, "{path} with a virtual key: {}", as_key.body);
        assert_eq!(as_key.body["error"]["type"], "permission_denied");
        let wrong = call(&app, method, path, "sk-wrong", body.clone()).await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{path} with a wrong key");
        assert_eq!(wrong.body["error"]["code"], "invalid_api_key");
        let request = Request::builder().method(method).uri(path).body(Body::empty()).unwrap_or_else(|e| panic!("{e}"));
        let none = app.clone().oneshot(request).await.unwrap_or_else(|e| match e {});
        assert_eq!(none.status(), StatusCode::UNAUTHORIZED, "{path} with no key");
    }
    let info = call(&app, "GET", &format!("/key/info?key_id={key_id}"), MASTER, None).await;
    assert_eq!(info.status, StatusCode::OK);
    assert_eq!(info.body["info"]["key_alias"], "ci");
    assert!(!info.body.to_string().contains(&key), "the secret is never shown again");
    let listed = call(&app, "GET", "/key/list", MASTER, None).await;
    assert!(listed.body["keys"].as_array().is_some_and(|k| k.iter().any(|k| k["key_id"] == key_id.as_str())));
    let models = call(&app, "GET", "/model/info", MASTER, None).await;
    assert_eq!(models.body["data"].as_array().map(Vec::len), Some(2));

    for (body, needle) in [
        (json!({"models": ["gpt-9"]}), "gpt-9"),
        (json!({"budget_duration": "soon"}), "budget_duration"),
        (json!({"max_budget": -1}), "max_budget"),
        (json!({"rpm_limit": -5}), "rpm_limit"),
        (json!({"colour": "blue"}), "colour"),
        (json!({"key": "sk-mine"}), "chosen by the gateway"),
        (json!({"metadata": [1]}), "metadata"),
    ] {
        let answer = call(&app, "POST", "/key/generate", MASTER, Some(body.clone())).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            answer.body["error"]["message"].as_str().is_some_and(|m| m.contains(needle)),
            "{body}: {}",
            answer.body
        );
    }
    let missing = call(&app, "POST", "/key/delete", MASTER, Some(json!({"key_ids": ["key_nope"]}))).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let unnamed = call(&app, "GET", "/key/info", MASTER, None).await;
    assert_eq!(unnamed.status, StatusCode::BAD_REQUEST);
    let bad_limit = call(&app, "GET", "/spend/logs?limit=0", MASTER, None).await;
    assert_eq!(bad_limit.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_key_is_limited_to_its_models_and_revoked_at_once() {
    let app = app(Arc::new(build(MOCKS, sqlite()).await));
    let (key, key_id) = generate(&app, json!({"models": ["echo"]})).await;
    assert_eq!(call(&app, "POST", "/v1/chat/completions", &key, Some(chat("echo"))).await.status, StatusCode::OK);
    let refused = call(&app, "POST", "/v1/chat/completions", &key, Some(chat("slow"))).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.body["error"]["code"], "model_not_allowed");
    let models = call(&app, "GET", "/v1/models", &key, None).await;
    assert_eq!(models.body["data"].as_array().map(Vec::len), Some(1), "only what the key may use");
    let updated = call(&app, "POST", "/key/update", MASTER, Some(json!({"key_id": key_id, "models": []}))).await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(call(&app, "POST", "/v1/chat/completions", &key, Some(chat("slow"))).await.status, StatusCode::OK);
    let deleted = call(&app, "POST", "/key/delete", MASTER, Some(json!({"key_ids": [key_id]}))).await;
    assert_eq!(deleted.body["deleted_keys"][0], key_id.as_str());
    let gone = call(&app, "POST", "/v1/chat/completions", &key, Some(chat("echo"))).await;
    assert_eq!(gone.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn expired_keys_are_refused() {
    let app = app(Arc::new(build(MOCKS, sqlite()).await));
    let (key, _) = generate(&app, json!({"duration": "1s"})).await;
    assert_eq!(call(&app, "POST", "/v1/chat/completions", &key, Some(chat("echo"))).await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let expired = call(&app, "POST", "/v1/chat/completions", &key, Some(chat("echo"))).await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert_eq!(expired.body["error"]["code"], "expired_api_key");
}

#[tokio::test]
async fn rpm_and_parallel_limits_answer_429_with_rate_limit_headers() {
    let app = app(Arc::new(build(MOCKS, sqlite()).await));
    // Keep the three calls inside one wall-clock minute.
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    if secs % 60 > 55 {
        tokio::time::sleep(Duration::from_secs(61 - secs % 60)).await;
    }
    let (key, _) = generate(&app, json!({"rpm_limit": 2})).await;
    let first = call(&app, "POST", "/v1/chat/completions", &key, Some(chat("echo"))).await;
    assert_eq!(first.headers.get("x-ratelimit-remaining-requests").and_then(|v| v.to_str().ok()), Some("1"));
    assert_eq!(first.headers.get("x-ratelimit-limit-requests").and_then(|v| v.to_str().ok()), Some("2"));
    call(&app, "POST", "/v1/chat/completions", &key, Some(chat("echo"))).await;
    let third = call(&app, "POST", "/v1/chat/completions", &key, Some(chat("echo"))).await;
    assert_eq!(third.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(third.body["error"]["code"], "rate_limit_exceeded");
    assert!(third.headers.get("retry-after").is_some());

    let (one_at_a_time, _) = generate(&app, json!({"max_parallel_requests": 1})).await;
    let (a, b) = tokio::join!(
        call(&app, "POST", "/v1/chat/completions", &one_at_a_time, Some(chat("slow"))),
        call(&app, "POST", "/v1/chat/completions", &one_at_a_time, Some(chat("slow")))
    );
    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 429]);
    let again = call(&app, "POST", "/v1/chat/completions", &one_at_a_time, Some(chat("echo"))).await;
    assert_eq!(again.status, StatusCode::OK, "the slot is free once the call ended");
}

/// An OpenAI-format upstream that bills 1000 prompt and 500 completion tokens of
/// gpt-4o-mini per call: $0.00015 + $0.0003 = $0.00045.
async fn priced_upstream() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "priced", "refusal": null}, "logprobs": null, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}
        })))
        .mount(&server)
        .await;
    server
}

fn priced_config(server: &MockServer, extra: &str) -> String {
    format!(
        "model_list:\n  - model_name: mini\n    litellm_params: {{model: openai/gpt-4o-mini, api_base: '{}/v1', api_key: sk-up}}\n{extra}",
        server.uri()
    )
}

async fn spend_of(app: &axum::Router, key_id: &str) -> f64 {
    call(app, "GET", &format!("/key/info?key_id={key_id}"), MASTER, None).await.body["info"]["spend"]
        .as_f64()
        .unwrap_or(-1.0)
}

#[tokio::test]
async fn budgets_are_reserved_settled_and_enforced_and_spend_is_logged() {
    let server = priced_upstream().await;
    let gateway = build(&priced_config(&server, ""), sqlite()).await;
    let app = app(Arc::new(gateway));
    let (key, key_id) = generate(&app, json!({"max_budget": 0.001, "budget_duration": "30d"})).await;
    // $0.00045 a call: the third passes (0.0009 + its estimate is under $0.001), the fourth
    // finds $0.00135 spent.
    for n in 1..=3 {
        let answer = call(&app, "POST", "/v1/chat/completions", &key, Some(chat("mini"))).await;
        assert_eq!(answer.status, StatusCode::OK, "call {n}: {}", answer.body);
        let cost: f64 =
            answer.headers.get("x-switchyard-response-cost").and_then(|v| v.to_str().ok()?.parse().ok()).unwrap_or(0.0);
        assert!((cost - 0.00045).abs() < 1e-12, "{cost}");
        let expected = 0.00045 * f64::from(n);
        eventually("the call's cost to settle", || async { (spend_of(&app, &key_id).await - expected).abs() < 1e-12 })
            .await;
    }
    let refused = call(&app, "POST", "/v1/chat/completions", &key, Some(chat("mini"))).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{}", refused.body);
    assert_eq!(refused.body["error"]["code"], "insufficient_quota");
    assert_eq!(server.received_requests().await.map_or(0, |r| r.len()), 3, "a refused call never reaches the upstream");

    eventually("three spend rows", || async {
        call(&app, "GET", &format!("/spend/logs?key_id={key_id}"), MASTER, None)
            .await
            .body
            .as_array()
            .map_or(0, Vec::len)
            == 3
    })
    .await;
    let rows = call(&app, "GET", &format!("/spend/logs?key_id={key_id}"), MASTER, None).await.body;
    let row = &rows[0];
    assert_eq!(row["model"], "mini");
    assert_eq!(row["deployment"], "mini/0");
    assert_eq!(row["provider"], "openai");
    assert_eq!((row["prompt_tokens"].as_i64(), row["completion_tokens"].as_i64()), (Some(1000), Some(500)));
    assert_eq!(row["cost_pico"].as_i64(), Some(450_000_000));
    assert_eq!(row["status"], "success");
    assert!(row["latency_us"].as_i64().is_some_and(|l| l > 0));
}

#[tokio::test]
async fn two_instances_sharing_redis_and_postgres_hold_one_rpm_and_one_budget() {
    let server = priced_upstream().await;
    let shared =
        format!("router_settings: {{redis_url: '{REDIS}'}}\ngeneral_settings: {{database_url: '{POSTGRES}'}}\n");
    let config = priced_config(&server, &shared);
    let one = app(Arc::new(build(&config, POSTGRES.to_string()).await));
    let two = app(Arc::new(build(&config, POSTGRES.to_string()).await));
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    if secs % 60 > 55 {
        tokio::time::sleep(Duration::from_secs(61 - secs % 60)).await;
    }
    // Made on one, used on both.
    let (key, key_id) = generate(&one, json!({"rpm_limit": 4, "max_budget": 0.001})).await;
    assert_eq!(call(&one, "POST", "/v1/chat/completions", &key, Some(chat("mini"))).await.status, StatusCode::OK);
    eventually("the first cost to settle", || async { (spend_of(&two, &key_id).await - 0.00045).abs() < 1e-12 }).await;
    assert_eq!(call(&two, "POST", "/v1/chat/completions", &key, Some(chat("mini"))).await.status, StatusCode::OK);
    eventually("both costs, seen from the first", || async { (spend_of(&one, &key_id).await - 0.0009).abs() < 1e-12 })
        .await;
    // The third is within budget with its estimate: the last the budget allows.
    assert_eq!(call(&one, "POST", "/v1/chat/completions", &key, Some(chat("mini"))).await.status, StatusCode::OK);
    eventually("three costs", || async { (spend_of(&two, &key_id).await - 0.00135).abs() < 1e-12 }).await;
    let over_budget = call(&two, "POST", "/v1/chat/completions", &key, Some(chat("mini"))).await;
    assert_eq!(over_budget.body["error"]["code"], "insufficient_quota", "{}", over_budget.body);
    // rpm: one count across both instances (calls refused for their budget are not counted:
    // the key above has made three of its four).
    let (limited, _) = generate(&one, json!({"rpm_limit": 2})).await;
    assert_eq!(call(&one, "POST", "/v1/chat/completions", &limited, Some(chat("mini"))).await.status, StatusCode::OK);
    assert_eq!(call(&two, "POST", "/v1/chat/completions", &limited, Some(chat("mini"))).await.status, StatusCode::OK);
    let over_rpm = call(&one, "POST", "/v1/chat/completions", &limited, Some(chat("mini"))).await;
    assert_eq!(over_rpm.body["error"]["code"], "rate_limit_exceeded", "{}", over_rpm.body);
}

#[tokio::test]
async fn a_graceful_shutdown_under_load_logs_every_answered_request() {
    graceful_shutdown_under_load(1).await;
}

/// As `switchyard serve` runs: connections spread over three event loops, two of them
/// threads of their own; the shutdown finishes every worker's requests before the drain.
#[tokio::test]
async fn a_graceful_shutdown_with_several_workers_logs_every_answered_request() {
    graceful_shutdown_under_load(3).await;
}

async fn graceful_shutdown_under_load(workers: usize) {
    let database = sqlite();
    let gateway = build(MOCKS, database.clone()).await;
    let store = gateway.store().clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_on_workers(gateway, listener, workers, async {
        let _ = stopped.await;
    }));
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/v1/chat/completions");
    let (mut fast, mut slow) = (Vec::new(), Vec::new());
    for i in 0..40 {
        let (client, url) = (client.clone(), url.clone());
        let model = if i % 2 == 0 { "echo" } else { "slow" };
        let call = tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(MASTER)
                .header("content-type", "application/json")
                .body(chat(model).to_string())
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        });
        if i % 2 == 0 { fast.push(call) } else { slow.push(call) }
    }
    let mut answered = 0;
    for call in fast {
        if call.await.unwrap_or(0) == 200 {
            answered += 1;
        }
    }
    // Stop while the slow half (200 ms each, sent with the fast half) is still in flight.
    let _ = stop.send(());
    for call in slow {
        if call.await.unwrap_or(0) == 200 {
            answered += 1;
        }
    }
    server.await.unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answered, 40, "in-flight requests finish during a graceful shutdown");
    let logged = store.spend_count().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(logged, answered, "every answered request is in the spend log once the server has returned");
}

#[tokio::test]
async fn a_team_budget_is_shared_by_its_keys() {
    let server = priced_upstream().await;
    let app = app(Arc::new(build(&priced_config(&server, ""), sqlite()).await));
    let team =
        call(&app, "POST", "/team/new", MASTER, Some(json!({"team_alias": "search", "max_budget": 0.001}))).await;
    assert_eq!(team.status, StatusCode::OK, "{}", team.body);
    let team_id = team.body["team_id"].as_str().unwrap_or_else(|| panic!("a team id")).to_string();
    let unknown = call(&app, "POST", "/key/generate", MASTER, Some(json!({"team_id": "team_nope"}))).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "a key joins only a team that exists");
    let (a, _) = generate(&app, json!({"team_id": team_id})).await;
    let (b, _) = generate(&app, json!({"team_id": team_id})).await;
    let team_spend = |app: axum::Router, id: String| async move {
        call(&app, "GET", &format!("/team/info?team_id={id}"), MASTER, None).await.body["spend"]
            .as_f64()
            .unwrap_or(-1.0)
    };
    // $0.00045 a call, from either key, against the team's $0.001.
    for (n, key) in [(1, &a), (2, &b), (3, &a)] {
        let answer = call(&app, "POST", "/v1/chat/completions", key, Some(chat("mini"))).await;
        assert_eq!(answer.status, StatusCode::OK, "call {n}: {}", answer.body);
        let expected = 0.00045 * f64::from(n);
        eventually("the team's spend", || {
            let (app, id) = (app.clone(), team_id.clone());
            async move { (team_spend(app, id).await - expected).abs() < 1e-12 }
        })
        .await;
    }
    let refused = call(&app, "POST", "/v1/chat/completions", &b, Some(chat("mini"))).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.body["error"]["message"].as_str().is_some_and(|m| m.contains("team's budget")), "{}", refused.body);
    let listed = call(&app, "GET", "/team/list", MASTER, None).await;
    assert!(listed.body["teams"].as_array().is_some_and(|t| t.iter().any(|t| t["team_id"] == team_id.as_str())));
    let updated =
        call(&app, "POST", "/team/update", MASTER, Some(json!({"team_id": team_id, "max_budget": 1.0}))).await;
    assert_eq!(updated.status, StatusCode::OK);
    assert_eq!(call(&app, "POST", "/v1/chat/completions", &b, Some(chat("mini"))).await.status, StatusCode::OK);
    // The spend log is written in batches (a row waits up to 250 ms for company).
    eventually("the team's rows in the spend log", || {
        let (app, id) = (app.clone(), team_id.clone());
        async move {
            let rows = call(&app, "GET", "/spend/logs?limit=10", MASTER, None).await.body;
            rows.as_array().is_some_and(|r| r.iter().any(|row| row["team_id"] == id.as_str()))
        }
    })
    .await;
    let deleted = call(&app, "POST", "/team/delete", MASTER, Some(json!({"team_ids": [team_id]}))).await;
    assert_eq!(deleted.body["deleted_teams"].as_array().map(Vec::len), Some(1));
}
