//! Budgets, rpm/tpm and parallel limits held on every path: calls cut short by a client
//! that goes away release what they reserved and get a spend row; refused calls count for
//! nothing; a burst cannot pass a budget or a minute's tokens; a stream is stopped at the
//! budget.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use switchyard::gateway::{Config, Gateway, app};
use tower::ServiceExt as _;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const MASTER: &str = "sk-master-for-limit-tests";

fn sqlite() -> String {
    let path = std::env::temp_dir().join(format!("switchyard-limits-{:016x}.db", fastrand::u64(..)));
    format!("sqlite://{}", path.display())
}

async fn gateway(config: &str) -> axum::Router {
    let config = Config::parse(config).unwrap_or_else(|e| panic!("{e}"));
    let database = sqlite();
    let env = move |name: &str| match name {
        "SWITCHYARD_MASTER_KEY" => Some(MASTER.to_string()),
        "SWITCHYARD_DATABASE_URL" => Some(database.clone()),
        _ => None,
    };
    app(Arc::new(Gateway::from_config(&config, &env).await.unwrap_or_else(|e| panic!("{e}"))))
}

fn request(method: &str, path: &str, key: &str, body: Option<&Value>) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn call(app: &axum::Router, method: &str, path: &str, key: &str, body: Option<Value>) -> (StatusCode, Value) {
    let response = app.clone().oneshot(request(method, path, key, body.as_ref())).await.unwrap_or_else(|e| match e {});
    let status = response.status();
    let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap_or_default();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// A call the client gives up on after `after`: its future (the connection) is dropped.
async fn cut(app: &axum::Router, key: &str, body: Value, after: Duration) {
    let sent = app.clone().oneshot(request("POST", "/v1/chat/completions", key, Some(&body)));
    assert!(tokio::time::timeout(after, sent).await.is_err(), "the call was to be cut before its answer");
}

async fn generate(app: &axum::Router, fields: Value) -> (String, String) {
    let (status, body) = call(app, "POST", "/key/generate", MASTER, Some(fields)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (body["key"].as_str().unwrap_or_default().to_string(), body["key_id"].as_str().unwrap_or_default().to_string())
}

async fn spend(app: &axum::Router, what: &str) -> f64 {
    let (_, body) = call(app, "GET", what, MASTER, None).await;
    body["info"]["spend"].as_f64().or_else(|| body["spend"].as_f64()).unwrap_or(-1.0)
}

async fn rows(app: &axum::Router) -> Vec<Value> {
    call(app, "GET", "/spend/logs?limit=1000", MASTER, None).await.1.as_array().cloned().unwrap_or_default()
}

/// Waits until `check` holds (spend rows are written in batches), failing after 5 s.
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

/// An OpenAI-format upstream answering as gpt-4o-mini with this usage, after `delay`.
async fn upstream(prompt: u64, completion: u64, delay: Duration) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({
                    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "priced"}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
                }))
                .set_delay(delay),
        )
        .mount(&server)
        .await;
    server
}

fn model(name: &str, server: &MockServer) -> String {
    format!(
        "  - model_name: {name}\n    litellm_params: {{model: openai/gpt-4o-mini, api_base: '{}/v1', api_key: sk-up}}\n",
        server.uri()
    )
}

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hello there"}]})
}

/// Defect: a call cut before its answer kept its budget reservation, so a few of them
/// locked the key (and every key of its team) out until a restart, with no spend rows.
#[tokio::test]
async fn calls_cut_before_the_answer_release_their_budget_and_get_a_spend_row() {
    let slow = upstream(10, 10, Duration::from_secs(30)).await;
    let fast = upstream(10, 10, Duration::ZERO).await;
    let app = gateway(&format!("model_list:\n{}{}", model("slow", &slow), model("fast", &fast))).await;
    let (_, team) = call(&app, "POST", "/team/new", MASTER, Some(json!({"max_budget": 0.005}))).await;
    let team_id = team["team_id"].as_str().unwrap_or_default().to_string();
    let (key, key_id) = generate(&app, json!({"max_budget": 0.005, "team_id": team_id})).await;
    let (other, _) = generate(&app, json!({"team_id": team_id})).await;
    for n in 0..12 {
        let mut body = chat("slow");
        if n % 2 == 1 {
            body["stream"] = json!(true);
        }
        cut(&app, &key, body, Duration::from_millis(150)).await;
    }
    // Each cut call is charged its prompt (an estimate: the upstream had it), nothing more.
    let spent = spend(&app, &format!("/key/info?key_id={key_id}")).await;
    assert!((0.0..0.0001).contains(&spent), "the key's budget is free again: {spent}");
    let team_spent = spend(&app, &format!("/team/info?team_id={team_id}")).await;
    assert!((0.0..0.0001).contains(&team_spent), "the team's budget is free again: {team_spent}");
    for key in [&key, &other] {
        let (status, body) = call(&app, "POST", "/v1/chat/completions", key, Some(chat("fast"))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    eventually("a spend row for each cut call", || async {
        rows(&app).await.iter().filter(|r| r["status"] == "cancelled").count() == 12
    })
    .await;
    let rows = rows(&app).await;
    let cancelled: Vec<&Value> = rows.iter().filter(|r| r["status"] == "cancelled").collect();
    for row in &cancelled {
        assert_eq!(row["key_id"], key_id.as_str(), "{row}");
        assert_eq!(row["deployment"], "slow/0", "{row}");
        assert!(row["prompt_tokens"].as_i64().is_some_and(|t| t > 0), "the prompt is counted: {row}");
    }
}

/// Defect: calls refused for the parallel limit still counted toward rpm, so a burst of
/// ten with rpm 10 and parallel 1 ran one call and then everything was rate-limited.
#[tokio::test]
async fn calls_refused_for_another_limit_do_not_count_toward_rpm() {
    let app = gateway("model_list:\n  - model_name: slow\n    litellm_params: {model: mock/slow-300}\n  - model_name: echo\n    litellm_params: {model: mock/echo}\n").await;
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    if secs % 60 > 50 {
        tokio::time::sleep(Duration::from_secs(61 - secs % 60)).await;
    }
    let (key, _) = generate(&app, json!({"rpm_limit": 10, "max_parallel_requests": 1})).await;
    let burst = (0..10).map(|_| call(&app, "POST", "/v1/chat/completions", &key, Some(chat("slow"))));
    let answers = futures_util::future::join_all(burst).await;
    let ok = answers.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    let parallel = answers.iter().filter(|(_, b)| b["error"]["code"] == "max_parallel_requests").count();
    assert_eq!((ok, parallel), (1, 9), "{answers:?}");
    // Nine of the minute's ten requests are left.
    for n in 0..9 {
        let (status, body) = call(&app, "POST", "/v1/chat/completions", &key, Some(chat("echo"))).await;
        assert_eq!(status, StatusCode::OK, "call {n}: {body}");
    }
    let (status, body) = call(&app, "POST", "/v1/chat/completions", &key, Some(chat("echo"))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("rate_limit_exceeded")));
}

/// Defect: tpm 2,000 let more through in a burst (each call held only its prompt before it
/// ran when `max_tokens` was unset). Now each holds its prompt and reserved output (the
/// model's most), capped at what is left of the minute, and gives back what it did not use:
/// a burst passes the minute by at most the one call that took the rest.
#[tokio::test]
async fn a_burst_passes_the_tokens_per_minute_by_at_most_one_call() {
    let server = upstream(100, 300, Duration::from_millis(200)).await;
    let app = gateway(&format!("model_list:\n{}", model("mini", &server))).await;
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    if secs % 60 > 50 {
        tokio::time::sleep(Duration::from_secs(61 - secs % 60)).await;
    }
    let (key, _) = generate(&app, json!({"tpm_limit": 2000})).await;
    let burst = (0..12).map(|_| call(&app, "POST", "/v1/chat/completions", &key, Some(chat("mini"))));
    let answers = futures_util::future::join_all(burst).await;
    let ok = answers.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    let limited = answers.iter().filter(|(_, b)| b["error"]["code"] == "rate_limit_exceeded").count();
    assert_eq!(ok + limited, 12, "{answers:?}");
    eprintln!("{ok} of 12 calls admitted: {} tokens of a 2,000-token minute", ok * 400);
    assert!(ok >= 1 && ok * 400 <= 2000 + 400, "{ok} calls of 400 tokens in a 2,000-token minute");
    // What the admitted calls did not use went back: another call fits.
    let (status, body) = call(&app, "POST", "/v1/chat/completions", &key, Some(chat("mini"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Defect: the budget estimate assumed 1,024 output tokens when `max_tokens` was unset; 50
/// concurrent calls with longer answers spent $0.125 of a $0.05 budget. Now a call reserves
/// the model's most output (capped at what is left), so a burst overshoots by at most the
/// one call that took the rest.
#[tokio::test]
async fn a_burst_overshoots_a_budget_by_at_most_one_call() {
    // 1,000 prompt and 4,000 completion tokens of gpt-4o-mini: $0.00015 + $0.0024.
    let server = upstream(1000, 4000, Duration::from_millis(200)).await;
    let app = gateway(&format!("model_list:\n{}", model("mini", &server))).await;
    let (key, key_id) = generate(&app, json!({"max_budget": 0.05})).await;
    let burst = (0..50).map(|_| call(&app, "POST", "/v1/chat/completions", &key, Some(chat("mini"))));
    let answers = futures_util::future::join_all(burst).await;
    let ok = answers.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    let refused = answers.iter().filter(|(_, b)| b["error"]["code"] == "insufficient_quota").count();
    assert_eq!(ok + refused, 50, "{answers:?}");
    let per_call = 0.00255;
    let spent = spend(&app, &format!("/key/info?key_id={key_id}")).await;
    assert!((spent - per_call * ok as f64).abs() < 1e-9, "{spent} for {ok} calls");
    assert!(spent <= 0.05 + per_call, "the burst spent ${spent} of a $0.05 budget");
}

/// A stream is stopped when it passes its reservation and the budget has no room left.
#[tokio::test]
async fn a_stream_is_stopped_at_the_budget() {
    let server = MockServer::start().await;
    let words: String = (0..200).map(|i| format!("data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{}\"}},\"finish_reason\":null}}]}}\n\n", "word ".repeat(20 + i % 3))).collect();
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/event-stream")
                .set_body_string(format!("{words}data: [DONE]\n\n")),
        )
        .mount(&server)
        .await;
    let app = gateway(&format!("model_list:\n{}", model("mini", &server))).await;
    // $0.0002 is about 330 output tokens of gpt-4o-mini: some 1,300 bytes of text.
    let (key, key_id) = generate(&app, json!({"max_budget": 0.0002})).await;
    let mut body = chat("mini");
    body["stream"] = json!(true);
    let response = app.clone().oneshot(request("POST", "/v1/chat/completions", &key, Some(&body))).await;
    let response = response.unwrap_or_else(|e| match e {});
    assert_eq!(response.status(), StatusCode::OK);
    let text = String::from_utf8(to_bytes(response.into_body(), usize::MAX).await.unwrap_or_default().to_vec())
        .unwrap_or_default();
    let events: Vec<&str> = text.split("\n\n").filter(|e| e.starts_with("data: ")).collect();
    assert!(events.len() < 100, "the stream was stopped early ({} events)", events.len());
    let last = events.last().copied().unwrap_or_default();
    assert!(last.contains("insufficient_quota"), "{last}");
    let spent = spend(&app, &format!("/key/info?key_id={key_id}")).await;
    // What was streamed is charged (an estimate), and it is about the budget.
    assert!(spent > 0.0 && spent < 0.0002 * 1.5, "{spent}");
    eventually("the stopped stream's spend row", || async {
        rows(&app).await.iter().any(|r| r["error_kind"] == "budget_exceeded")
    })
    .await;
}

/// A mid-stream disconnect: the upstream is dropped, the hold released, and what was seen
/// charged.
#[tokio::test]
async fn a_client_that_leaves_mid_stream_is_charged_for_what_it_saw() {
    let app = gateway("model_list:\n  - model_name: drip\n    litellm_params: {model: mock/drip-100}\n").await;
    let (key, key_id) = generate(&app, json!({"max_budget": 1.0, "max_parallel_requests": 1})).await;
    let body = json!({"model": "drip", "stream": true, "messages": [{"role": "user", "content": "one two three four five six seven eight"}]});
    let response = app.clone().oneshot(request("POST", "/v1/chat/completions", &key, Some(&body))).await;
    let mut body = response.unwrap_or_else(|e| match e {}).into_body();
    let first = body.frame().await;
    assert!(first.is_some_and(|f| f.is_ok()));
    drop(body);
    // The parallel slot is free again at once.
    let (status, answer) = call(
        &app,
        "POST",
        "/v1/chat/completions",
        &key,
        Some(json!({"model": "drip", "messages": [{"role": "user", "content": "x"}]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    eventually("the cut stream's row", || async {
        rows(&app).await.iter().any(|r| r["status"] == "cancelled" && r["key_id"] == key_id.as_str())
    })
    .await;
}

/// Defect: exact token counting ran inline on the event loop: a 20 MB prompt of one
/// repeated character took 11-13 s of CPU, and two at once stalled every other request. Now
/// large prompts are counted on blocking threads (in segments: linear time) and the largest
/// estimated, so the loop keeps answering.
#[tokio::test(flavor = "current_thread")]
async fn large_prompts_are_counted_off_the_event_loop() {
    let app = gateway("model_list:\n  - model_name: echo\n    litellm_params: {model: mock/echo}\n").await;
    let (key, _) = generate(&app, json!({"max_budget": 10.0, "tpm_limit": 100_000_000})).await;
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let big = |name: &'static str, bytes: usize| {
        let (app, key, order) = (app.clone(), key.clone(), order.clone());
        async move {
            let body =
                json!({"model": "echo", "max_tokens": 5, "messages": [{"role": "user", "content": "a".repeat(bytes)}]});
            let (status, answer) = call(&app, "POST", "/v1/chat/completions", &key, Some(body)).await;
            // 20 MB is past the mock's window by the estimate: refused, and at once.
            let expected = if bytes > 4 << 20 { StatusCode::BAD_REQUEST } else { StatusCode::OK };
            assert_eq!(status, expected, "{}", answer.to_string().chars().take(300).collect::<String>());
            order.lock().unwrap_or_else(|e| e.into_inner()).push(name);
        }
    };
    let live = {
        let (app, order) = (app.clone(), order.clone());
        async move {
            let (status, _) = call(&app, "GET", "/health/liveness", MASTER, None).await;
            assert_eq!(status, StatusCode::OK);
            order.lock().unwrap_or_else(|e| e.into_inner()).push("liveness");
        }
    };
    // Two large prompts counted (1 MB each) and one estimated (20 MB), with a
    // liveness check behind them on the same single-threaded loop.
    tokio::join!(big("counted", 1 << 20), big("counted", 1 << 20), big("estimated", 20 << 20), live);
    let order = order.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let at = |name: &str| order.iter().position(|n| *n == name).unwrap_or(usize::MAX);
    assert!(at("liveness") < at("counted"), "the loop answered while the prompts were counted: {order:?}");
}

/// The worst case of the one-call bound: answers as long as the model's most output. The
/// call that took what was left of the budget ends above it by at most one answer's cost.
#[tokio::test]
async fn a_burst_of_longest_answers_passes_a_budget_by_at_most_one_answer() {
    // 16,384 completion tokens (gpt-4o-mini's most) and 1,000 prompt: $0.0098304 + $0.00015.
    let server = upstream(1000, 16_384, Duration::from_millis(200)).await;
    let app = gateway(&format!("model_list:\n{}", model("mini", &server))).await;
    let (key, key_id) = generate(&app, json!({"max_budget": 0.05})).await;
    let burst = (0..50).map(|_| call(&app, "POST", "/v1/chat/completions", &key, Some(chat("mini"))));
    let answers = futures_util::future::join_all(burst).await;
    let ok = answers.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    let per_call = 0.000_15 + 0.009_830_4;
    let spent = spend(&app, &format!("/key/info?key_id={key_id}")).await;
    eprintln!("{ok} of 50 calls admitted; ${spent:.6} spent of $0.05 (over by ${:.6})", (spent - 0.05).max(0.0));
    assert!(spent <= 0.05 + per_call + 1e-9, "the burst spent ${spent} of a $0.05 budget");
}
