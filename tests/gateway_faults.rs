//! Faults injected by `switchyard mock-upstream --misbehave` (its app, served on loopback)
//! behind a gateway: each one gets the error a client must get, in bounded time, with a
//! spend row, for whole answers and for streams.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use switchyard::gateway::mock_upstream::{Misbehaviour, misbehaving};
use switchyard::gateway::{Config, Gateway, app};
use tower::ServiceExt as _;

const MASTER: &str = "sk-master-for-fault-tests";

/// The longest any faulty call may take here: the gateway's deadlines are 1 s.
const BOUND: Duration = Duration::from_secs(20);

async fn upstream(fault: Misbehaviour) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(async move { axum::serve(listener, misbehaving(Duration::ZERO, Some(fault))).await });
    format!("http://{addr}/v1")
}

async fn gateway(api_base: &str) -> axum::Router {
    let config = format!(
        "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/echo, api_base: '{api_base}', api_key: sk-up}}\nrouter_settings: {{num_retries: 0, timeout: 1, stream_timeout: 1}}\n"
    );
    let config = Config::parse(&config).unwrap_or_else(|e| panic!("{e}"));
    let path = std::env::temp_dir().join(format!("switchyard-faults-{:016x}.db", fastrand::u64(..)));
    let database = format!("sqlite://{}", path.display());
    let env = move |name: &str| match name {
        "SWITCHYARD_MASTER_KEY" => Some(MASTER.to_string()),
        "SWITCHYARD_DATABASE_URL" => Some(database.clone()),
        _ => None,
    };
    app(Arc::new(Gateway::from_config(&config, &env).await.unwrap_or_else(|e| panic!("{e}"))))
}

/// Status, headers and body text of one call, which must end within [`BOUND`].
async fn call(app: &axum::Router, stream: bool) -> (StatusCode, axum::http::HeaderMap, String) {
    let body = json!({"model": "m", "stream": stream, "messages": [{"role": "user", "content": "hello there"}]});
    let request = Request::post("/v1/chat/completions")
        .header("authorization", format!("Bearer {MASTER}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap_or_else(|e| panic!("{e}"));
    let answered = async {
        let response = app.clone().oneshot(request).await.unwrap_or_else(|e| match e {});
        let (status, headers) = (response.status(), response.headers().clone());
        let bytes = to_bytes(response.into_body(), 64 << 20).await.unwrap_or_default();
        (status, headers, String::from_utf8_lossy(&bytes).into_owned())
    };
    tokio::time::timeout(BOUND, answered).await.unwrap_or_else(|_| panic!("no answer within {BOUND:?}"))
}

async fn spend_rows(app: &axum::Router) -> Vec<Value> {
    for _ in 0..250 {
        let request = Request::get("/spend/logs")
            .header("authorization", format!("Bearer {MASTER}"))
            .body(Body::empty())
            .unwrap_or_else(|e| panic!("{e}"));
        let response = app.clone().oneshot(request).await.unwrap_or_else(|e| match e {});
        let rows: Value = serde_json::from_slice(&to_bytes(response.into_body(), usize::MAX).await.unwrap_or_default())
            .unwrap_or_default();
        if rows.as_array().is_some_and(|r| r.len() >= 2) {
            return rows.as_array().cloned().unwrap_or_default();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no spend rows");
}

/// An OpenAI error envelope's type, from a whole body or a stream's error event.
fn error_type(text: &str) -> Option<String> {
    let json = text.rsplit("data: ").find(|e| e.contains("\"error\"")).unwrap_or(text);
    let value: Value = serde_json::from_str(json.trim()).ok()?;
    value["error"]["type"].as_str().map(str::to_string)
}

/// What the client must get for a fault: for the whole answer, and for the stream.
struct Expect {
    whole: &'static [u16],
    /// A stream fails before its first chunk (a status), or after (200 with an error event).
    stream: &'static [u16],
    kind: &'static [&'static str],
}

async fn check(fault: Misbehaviour, expect: Expect) {
    let base = upstream(fault).await;
    let app = gateway(&base).await;
    for stream in [false, true] {
        let (status, headers, text) = call(&app, stream).await;
        let wanted = if stream { expect.stream } else { expect.whole };
        assert!(wanted.contains(&status.as_u16()), "{fault:?} (stream {stream}): {status} {text:.300}");
        let kind = error_type(&text).unwrap_or_default();
        assert!(expect.kind.contains(&kind.as_str()), "{fault:?} (stream {stream}): type {kind}: {text:.300}");
        assert!(!text.contains("followed a redirect"), "{fault:?}: the redirect was followed");
        if let Some(wait) = headers.get("retry-after").and_then(|v| v.to_str().ok()) {
            assert!(wait.parse::<u64>().is_ok_and(|w| w <= 86_400), "{fault:?}: retry-after {wait}");
        }
    }
    let rows = spend_rows(&app).await;
    assert_eq!(rows.len(), 2, "{fault:?}: a spend row per call: {rows:?}");
    assert!(rows.iter().all(|r| r["status"] == "failure"), "{fault:?}: {rows:?}");
}

#[tokio::test]
async fn an_upstream_that_never_answers_times_out() {
    check(Misbehaviour::HangBeforeHeaders, Expect { whole: &[504], stream: &[504], kind: &["timeout"] }).await;
}

#[tokio::test]
async fn an_upstream_that_stalls_mid_body_times_out() {
    // The stream's first events came: it fails with an error event after them.
    check(Misbehaviour::StallMidBody, Expect { whole: &[504], stream: &[200], kind: &["timeout"] }).await;
}

#[tokio::test]
async fn an_upstream_that_drips_times_out() {
    check(Misbehaviour::Drip, Expect { whole: &[504], stream: &[504], kind: &["timeout"] }).await;
}

#[tokio::test]
async fn an_upstream_that_resets_is_a_bad_gateway() {
    check(Misbehaviour::Reset, Expect { whole: &[502], stream: &[200, 502], kind: &["server_error"] }).await;
}

#[tokio::test]
async fn an_upstream_line_that_never_ends_is_cut_at_the_limit() {
    // A whole answer hits the body limit or the deadline first, whichever comes first.
    check(
        Misbehaviour::OversizeLine,
        Expect { whole: &[502, 504], stream: &[502], kind: &["server_error", "timeout"] },
    )
    .await;
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    check(Misbehaviour::Redirect, Expect { whole: &[502], stream: &[502], kind: &["server_error"] }).await;
}

#[tokio::test]
async fn a_huge_retry_after_is_capped() {
    check(Misbehaviour::HugeRetryAfter, Expect { whole: &[429], stream: &[429], kind: &["rate_limit_error"] }).await;
}

#[tokio::test]
async fn an_html_page_for_an_answer_is_a_bad_gateway() {
    check(Misbehaviour::Html200, Expect { whole: &[502], stream: &[502], kind: &["server_error"] }).await;
}
