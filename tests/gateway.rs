//! The gateway's HTTP surface through tower's `oneshot` (no socket), with the mock provider
//! and wiremock upstreams: answers, streams, headers, and every error envelope.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use switchyard::gateway::{Config, Gateway, app};
use tower::ServiceExt as _;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "sk-gateway-test";

fn env(name: &str) -> Option<String> {
    match name {
        "SWITCHYARD_MASTER_KEY" => Some(KEY.to_string()),
        "SWITCHYARD_DATABASE_URL" => Some(temp_database()),
        "UPSTREAM_KEY" => Some("sk-upstream".to_string()),
        _ => None,
    }
}

/// A SQLite file of its own for each gateway.
fn temp_database() -> String {
    let path = std::env::temp_dir().join(format!("switchyard-gateway-{:016x}.db", fastrand::u64(..)));
    format!("sqlite://{}", path.display())
}

async fn gateway(config: &str) -> axum::Router {
    let config = Config::parse(config).unwrap_or_else(|e| panic!("{e}"));
    app(Arc::new(Gateway::from_config(&config, &env).await.unwrap_or_else(|e| panic!("{e}"))))
}

async fn defaults() -> axum::Router {
    app(Arc::new(Gateway::with_defaults(&env).await.unwrap_or_else(|e| panic!("{e}"))))
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an OpenAI error envelope of this status and type.
    fn assert_error(&self, status: u16, kind: &str) -> Value {
        assert_eq!(self.status.as_u16(), status, "{}", String::from_utf8_lossy(&self.body));
        let body = self.json();
        let error = &body["error"];
        assert_eq!(error["type"], kind, "{body}");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
        assert!(error.get("param").is_some() && error.get("code").is_some(), "{body}");
        body
    }
}

async fn send(app: &axum::Router, request: Request<Body>) -> Answer {
    let response = app.clone().oneshot(request).await.unwrap_or_else(|e| match e {});
    let status = response.status();
    let headers = response.headers().clone();
    let body = to_bytes(response.into_body(), usize::MAX).await.unwrap_or_else(|e| panic!("{e}")).to_vec();
    Answer { status, headers, body }
}

fn post(path: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(path)
        .header("authorization", format!("Bearer {KEY}"))
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap_or_else(|e| panic!("{e}"))
}

fn chat(model: &str, text: &str) -> String {
    json!({"model": model, "messages": [{"role": "user", "content": text}]}).to_string()
}

#[tokio::test]
async fn chat_answers_with_the_asked_name_and_the_report_headers() {
    let app = defaults().await;
    let answer = send(&app, post("/v1/chat/completions", chat("echo", "hello gateway"))).await;
    assert_eq!(answer.status, StatusCode::OK);
    let body = answer.json();
    assert_eq!(body["choices"][0]["message"]["content"], "hello gateway");
    assert_eq!(body["model"], "echo");
    assert!(answer.header("x-switchyard-call-id").is_some_and(|id| id.starts_with("call-")));
    assert_eq!(answer.header("x-switchyard-model-id"), Some("echo/0"));
    assert_eq!(answer.header("x-switchyard-attempted-retries"), Some("0"));
    assert_eq!(answer.header("x-switchyard-attempted-fallbacks"), Some("0"));
    assert_eq!(answer.header("x-switchyard-cache-hit"), Some("false"));
    // Dollars with all twelve decimals (the receipt is in pico-dollars).
    let cost = answer.header("x-switchyard-response-cost").unwrap_or_default();
    let (whole, decimals) = cost.split_once('.').unwrap_or_default();
    assert!(!whole.is_empty() && whole.bytes().all(|b| b.is_ascii_digit()), "{cost}");
    assert!(decimals.len() == 12 && decimals.bytes().all(|b| b.is_ascii_digit()), "{cost}");
    assert!(answer.header("x-switchyard-overhead-duration-ms").is_some_and(|ms| ms.parse::<f64>().is_ok()));
    assert!(answer.header("x-request-id").is_some());
    assert_eq!(answer.header("x-switchyard-model-api-base"), None, "the upstream's URL is shown only on request");
    // Without the /v1 prefix too, as LiteLLM serves it.
    let answer = send(&app, post("/chat/completions", chat("echo", "again"))).await;
    assert_eq!(answer.status, StatusCode::OK);
}

#[tokio::test]
async fn streams_are_server_sent_events_ending_in_done() {
    let app = defaults().await;
    let body = json!({
        "model": "tools", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
    });
    let answer = send(&app, post("/v1/chat/completions", body.to_string())).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.header("content-type"), Some("text/event-stream"));
    let text = String::from_utf8_lossy(&answer.body).to_string();
    let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(events.last(), Some(&"data: [DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e.trim_start_matches("data: ")).unwrap_or_else(|err| panic!("{err}: {e}")))
        .collect();
    assert!(chunks.iter().all(|c| c["model"] == "tools"));
    let arguments: String = chunks
        .iter()
        .flat_map(|c| c["choices"].as_array().cloned().unwrap_or_default())
        .filter_map(|choice| choice["delta"]["tool_calls"][0]["function"]["arguments"].as_str().map(str::to_string))
        .collect();
    let parsed: Value = serde_json::from_str(&arguments).unwrap_or_else(|e| panic!("{e}: {arguments}"));
    assert!(parsed.is_object());
    assert!(chunks.last().is_some_and(|c| c["usage"]["total_tokens"].as_u64().is_some()), "usage last");
}

#[tokio::test]
async fn a_stream_cut_after_its_first_chunk_ends_with_an_error_event() {
    let app = gateway("model_list:\n  - model_name: cut\n    litellm_params: {model: mock/truncated}\n").await;
    let body = json!({"model": "cut", "stream": true, "messages": [{"role": "user", "content": "one two three four"}]});
    let answer = send(&app, post("/v1/chat/completions", body.to_string())).await;
    assert_eq!(answer.status, StatusCode::OK, "the stream had started");
    let text = String::from_utf8_lossy(&answer.body).to_string();
    let last = text.split("\n\n").filter(|e| !e.is_empty()).last().unwrap_or_default().to_string();
    let error: Value =
        serde_json::from_str(last.trim_start_matches("data: ")).unwrap_or_else(|e| panic!("{e}: {last}"));
    assert!(error["error"]["type"].as_str().is_some(), "{error}");
    assert!(!text.split("\n\n").any(|e| e == "data: [DONE]"), "no [DONE] after an error: {text}");
}

#[tokio::test]
async fn embeddings_and_models() {
    let app = defaults().await;
    let answer = send(&app, post("/v1/embeddings", json!({"model": "embed", "input": ["a", "b"]}).to_string())).await;
    assert_eq!(answer.status, StatusCode::OK);
    let body = answer.json();
    assert_eq!(body["data"].as_array().map(Vec::len), Some(2));
    assert_eq!(body["model"], "embed");
    let request =
        Request::get("/v1/models").header("x-api-key", KEY).body(Body::empty()).unwrap_or_else(|e| panic!("{e}"));
    let answer = send(&app, request).await;
    let ids: Vec<String> = answer.json()["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(ids, ["echo", "embed", "tools"]);
}

#[tokio::test]
async fn keys_are_required_and_checked() {
    let app = defaults().await;
    let bare =
        Request::post("/v1/chat/completions").body(Body::from(chat("echo", "hi"))).unwrap_or_else(|e| panic!("{e}"));
    let body = send(&app, bare).await.assert_error(401, "authentication_error");
    assert_eq!(body["error"]["code"], "missing_api_key");
    let wrong = Request::post("/v1/chat/completions")
        .header("authorization", "Bearer sk-wrong")
        .body(Body::from(chat("echo", "hi")))
        .unwrap_or_else(|e| panic!("{e}"));
    let body = send(&app, wrong).await.assert_error(401, "authentication_error");
    assert_eq!(body["error"]["code"], "invalid_api_key");
    let models = Request::get("/v1/models").body(Body::empty()).unwrap_or_else(|e| panic!("{e}"));
    send(&app, models).await.assert_error(401, "authentication_error");
    // Health needs no key and makes no call.
    let health = Request::get("/health/liveness").body(Body::empty()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(send(&app, health).await.status, StatusCode::OK);
    let ready = Request::get("/health/readiness").body(Body::empty()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(send(&app, ready).await.json()["status"], "ready");
}

#[tokio::test]
async fn bad_bodies_get_the_error_envelope() {
    let app = defaults().await;
    let body = send(&app, post("/v1/chat/completions", "{not json")).await.assert_error(400, "invalid_request_error");
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("not valid JSON")));
    send(&app, post("/v1/chat/completions", "")).await.assert_error(400, "invalid_request_error");
    send(&app, post("/v1/chat/completions", r#"{"model": 3, "messages": []}"#))
        .await
        .assert_error(400, "invalid_request_error");
    send(&app, post("/v1/chat/completions", r#"{"model": "echo", "messages": "hi"}"#))
        .await
        .assert_error(400, "invalid_request_error");
    send(&app, post("/v1/chat/completions", r#"{"model": "echo", "messages": [{"role": "robot", "content": "x"}]}"#))
        .await
        .assert_error(400, "invalid_request_error");
    send(&app, post("/v1/embeddings", r#"{"model": "embed"}"#)).await.assert_error(400, "invalid_request_error");
    let body = send(&app, post("/v1/chat/completions", chat("gpt-5", "hi"))).await.assert_error(404, "not_found_error");
    assert_eq!(body["error"]["code"], "model_not_found");
    let huge = chat("echo", &"x".repeat(33 * 1024 * 1024));
    let body = send(&app, post("/v1/chat/completions", huge)).await.assert_error(413, "invalid_request_error");
    assert_eq!(body["error"]["code"], "request_too_large");
    let body = send(&app, post("/v1/nothing-here", "{}")).await.assert_error(404, "not_found_error");
    assert_eq!(body["error"]["code"], "unknown_url");
    let get = Request::get("/v1/chat/completions").header("authorization", format!("Bearer {KEY}")).body(Body::empty());
    send(&app, get.unwrap_or_else(|e| panic!("{e}"))).await.assert_error(405, "invalid_request_error");
    let bad_cache = json!({"model": "echo", "messages": [{"role": "user", "content": "x"}], "cache": {"ttl": "soon"}});
    send(&app, post("/v1/chat/completions", bad_cache.to_string())).await.assert_error(400, "invalid_request_error");
    // The mock's own error models: what the provider said, in the envelope, with its status.
    let body = send(&app, post("/v1/chat/completions", chat("echo", "hi"))).await;
    assert_eq!(body.status, StatusCode::OK, "the gateway is unharmed");
}

#[tokio::test]
async fn upstream_errors_keep_their_kind_status_and_retry_after() {
    let limited = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "30").set_body_json(json!({
            "error": {"message": "slow down", "type": "rate_limit_exceeded", "param": null, "code": "rate_limit_exceeded"}
        })))
        .mount(&limited)
        .await;
    let broken = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(500).set_body_json(json!({"error": {"message": "boom", "type": "server_error"}})),
        )
        .mount(&broken)
        .await;
    let config = format!(
        "model_list:\n  - model_name: limited\n    litellm_params: {{model: openai/gpt-4o-mini, api_base: '{}/v1', api_key: os.environ/UPSTREAM_KEY}}\n  - model_name: broken\n    litellm_params: {{model: openai/gpt-4o-mini, api_base: '{}/v1', api_key: os.environ/UPSTREAM_KEY}}\nrouter_settings: {{num_retries: 0}}\n",
        limited.uri(),
        broken.uri()
    );
    let app = gateway(&config).await;
    let answer = send(&app, post("/v1/chat/completions", chat("limited", "hi"))).await;
    answer.assert_error(429, "rate_limit_error");
    assert!(answer.header("retry-after").is_some_and(|s| s.parse::<u64>().is_ok_and(|s| (25..=30).contains(&s))));
    let upstream = &limited.received_requests().await.unwrap_or_default()[0];
    assert_eq!(upstream.headers.get("authorization").and_then(|v| v.to_str().ok()), Some("Bearer sk-upstream"));
    send(&app, post("/v1/chat/completions", chat("broken", "hi"))).await.assert_error(502, "server_error");
}

#[tokio::test]
async fn the_response_cache_is_configured_and_controlled_per_request() {
    let app = gateway(
        "model_list:\n  - model_name: echo\n    litellm_params: {model: mock/echo}\nlitellm_settings: {cache: true, cache_params: {type: local, ttl: 60}}\n",
    )
    .await;
    let first = send(&app, post("/v1/chat/completions", chat("echo", "cache me"))).await;
    assert_eq!(first.header("x-switchyard-cache-hit"), Some("false"));
    let second = send(&app, post("/v1/chat/completions", chat("echo", "cache me"))).await;
    assert_eq!(second.header("x-switchyard-cache-hit"), Some("true"));
    assert_eq!(second.json()["model"], "echo");
    let no_cache =
        json!({"model": "echo", "messages": [{"role": "user", "content": "cache me"}], "cache": {"no-cache": true}});
    let third = send(&app, post("/v1/chat/completions", no_cache.to_string())).await;
    assert_eq!(third.header("x-switchyard-cache-hit"), Some("false"));
}

#[tokio::test]
async fn configs_fail_clearly() {
    let env = |name: &str| (name == "SWITCHYARD_DATABASE_URL").then(temp_database);
    let missing = Config::parse(
        "model_list:\n  - model_name: a\n    litellm_params: {model: openai/x, api_key: os.environ/NOPE}\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let err = Gateway::from_config(&missing, &env).await.err().unwrap_or_else(|| panic!("NOPE is unset"));
    assert!(
        err.to_string().contains("model_list[0].litellm_params.api_key") && err.to_string().contains("NOPE"),
        "{err}"
    );
    let strategy = Config::parse("router_settings: {routing_strategy: fastest}\n").unwrap_or_else(|e| panic!("{e}"));
    let err = Gateway::from_config(&strategy, &env).await.err().unwrap_or_else(|| panic!("unknown strategy"));
    assert!(err.to_string().contains("fastest"), "{err}");
    let fallback = Config::parse(
        "model_list:\n  - model_name: a\n    litellm_params: {model: mock/echo}\nrouter_settings: {fallbacks: [{a: [b]}]}\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let err = Gateway::from_config(&fallback, &env).await.err().unwrap_or_else(|| panic!("unknown fallback"));
    assert!(err.to_string().contains("`b`"), "{err}");
    // With no master key anywhere, one is generated (and printed by `switchyard serve`).
    let gateway = Gateway::with_defaults(&env).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(gateway.master_key_was_generated());
}

#[tokio::test]
async fn metrics_count_requests_tokens_latency_errors_and_cooldowns() {
    let app = gateway(
        "model_list:\n  - model_name: echo\n    litellm_params: {model: mock/echo}\n  - model_name: down\n    litellm_params: {model: mock/error-503}\nrouter_settings: {num_retries: 0, allowed_fails: 0, cooldown_time: 60}\n",
    )
    .await;
    for _ in 0..3 {
        assert_eq!(
            send(&app, post("/v1/chat/completions", chat("echo", "one two three"))).await.status,
            StatusCode::OK
        );
    }
    send(&app, post("/v1/chat/completions", chat("down", "hi"))).await.assert_error(503, "overloaded_error");
    // Made-up model names all count under one label: a client cannot add series at will.
    for name in ["made-up-1", "made-up-2"] {
        send(&app, post("/v1/chat/completions", chat(name, "hi"))).await.assert_error(404, "not_found_error");
    }
    let stream = json!({"model": "echo", "stream": true, "messages": [{"role": "user", "content": "a b c"}]});
    assert_eq!(send(&app, post("/v1/chat/completions", stream.to_string())).await.status, StatusCode::OK);
    let request = Request::get("/metrics").body(Body::empty()).unwrap_or_else(|e| panic!("{e}"));
    let answer = send(&app, request).await;
    assert_eq!(answer.status, StatusCode::OK);
    let text = String::from_utf8_lossy(&answer.body).to_string();
    let has = |line: &str| text.lines().any(|l| l == line);
    assert!(has(r#"switchyard_requests_total{model="echo",outcome="success",cache_hit="false"} 4"#), "{text}");
    assert!(has(r#"switchyard_requests_total{model="down",outcome="failure",cache_hit="false"} 1"#), "{text}");
    assert!(has(r#"switchyard_errors_total{model="down",kind="overloaded"} 1"#), "{text}");
    assert!(has(r#"switchyard_requests_total{model="(unknown)",outcome="failure",cache_hit="false"} 2"#), "{text}");
    assert!(has(r#"switchyard_errors_total{model="(unknown)",kind="not_found"} 2"#), "{text}");
    assert!(!text.contains("made-up"), "{text}");
    // The mock counts words: three calls of three prompt words (the stream asked for no usage).
    assert!(has(r#"switchyard_tokens_total{model="echo",kind="prompt"} 9"#), "{text}");
    assert!(has(r#"switchyard_tokens_total{model="echo",kind="completion"} 9"#), "{text}");
    assert!(text.contains(r#"switchyard_request_duration_seconds_count{model="echo"} 4"#), "{text}");
    assert!(text.contains(r#"switchyard_time_to_first_token_seconds_count{model="echo"} 1"#), "{text}");
    assert!(has(r#"switchyard_deployment_cooling_down{model="down",deployment="down/0"} 1"#), "{text}");
    assert!(has(r#"switchyard_deployment_cooling_down{model="echo",deployment="echo/0"} 0"#), "{text}");
}

#[tokio::test]
async fn openai_compatible_servers_declared_in_the_config_need_no_code() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "cmpl-1", "object": "chat.completion", "created": 1, "model": "llama",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "from in-house"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
        })))
        .mount(&server)
        .await;
    let config = format!(
        "providers:\n  - id: inhouse\n    api_base: '{}/v1'\n    api_key: os.environ/UPSTREAM_KEY\n    api_key_header: x-api-key\n    rename_params: {{seed: random_seed}}\n    drop_params: [logprobs]\nmodel_list:\n  - model_name: local\n    litellm_params: {{model: inhouse/llama}}\ngeneral_settings: {{model_api_base_header: true}}\n",
        server.uri()
    );
    let app = gateway(&config).await;
    let body = json!({"model": "local", "seed": 7, "logprobs": true, "messages": [{"role": "user", "content": "hi"}]});
    let answer = send(&app, post("/v1/chat/completions", body.to_string())).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", String::from_utf8_lossy(&answer.body));
    assert_eq!(answer.json()["choices"][0]["message"]["content"], "from in-house");
    assert_eq!(answer.header("x-switchyard-model-api-base"), Some(format!("{}/v1", server.uri()).as_str()));
    let received = &server.received_requests().await.unwrap_or_default()[0];
    assert_eq!(received.url.path(), "/v1/chat/completions");
    assert_eq!(received.headers.get("x-api-key").and_then(|v| v.to_str().ok()), Some("sk-upstream"));
    assert!(received.headers.get("authorization").is_none(), "the key goes only where the config says");
    let sent: Value = serde_json::from_slice(&received.body).unwrap_or(Value::Null);
    assert_eq!(sent["model"], "llama");
    assert_eq!(sent["random_seed"], 7);
    assert!(sent.get("seed").is_none() && sent.get("logprobs").is_none(), "{sent}");

    for (bad, needle) in [
        ("providers:\n  - {id: openai, api_base: 'http://x/v1'}\n", "built-in"),
        ("providers:\n  - {id: 'In House', api_base: 'http://x/v1'}\n", "lowercase"),
        ("providers:\n  - {id: a, api_base: 'ftp://x'}\n", "http(s)"),
    ] {
        let err = Config::parse(bad).err().unwrap_or_else(|| panic!("{bad} is invalid"));
        assert!(err.to_string().contains(needle), "{err}");
    }
    let extra = Config::parse("providers:\n  - {id: a, api_base: 'http://x/v1', timeout: 3}\n")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(extra.unsupported_keys(), ["providers[0].timeout"]);
}

/// Over real sockets (the mock upstream and the gateway each on a loopback port): a stream
/// the upstream sends in one burst reaches the client in far fewer writes than it has
/// events, nothing lost or reordered; and a stream whose chunks come apart in time is
/// passed on chunk by chunk, not held back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_events_that_arrive_together_leave_together() {
    use std::time::Duration;

    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
    let upstream_addr = upstream.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(async move { axum::serve(upstream, switchyard::gateway::mock_upstream::app(Duration::ZERO)).await });
    // An upstream that sends five chunks 50 ms apart.
    let paced = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
    let paced_addr = paced.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let paced_app = axum::Router::new().fallback(|| async {
        let events = futures_util::stream::unfold(0, |i| async move {
            let event = match i {
                0..5 => {
                    if i > 0 {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    let chunk = json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                        "choices": [{"index": 0, "delta": {"content": format!("p{i} ")}, "finish_reason": null}]});
                    format!("data: {chunk}\n\n")
                }
                5 => "data: [DONE]\n\n".to_string(),
                _ => return None,
            };
            Some((Ok::<_, std::convert::Infallible>(event), i + 1))
        });
        ([("content-type", "text/event-stream")], Body::from_stream(events))
    });
    tokio::spawn(async move { axum::serve(paced, paced_app).await });
    let config = format!(
        "model_list:\n  - model_name: burst\n    litellm_params: {{model: openai/echo, api_base: 'http://{upstream_addr}/v1', api_key: sk-mock}}\n  - model_name: paced\n    litellm_params: {{model: openai/m, api_base: 'http://{paced_addr}/v1', api_key: sk-mock}}\n"
    );
    let config = Config::parse(&config).unwrap_or_else(|e| panic!("{e}"));
    let gateway = Gateway::from_config(&config, &env).await.unwrap_or_else(|e| panic!("{e}"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(switchyard::gateway::serve_on(gateway, listener, std::future::pending()));
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    // Each frame the client's HTTP stack yields is one chunk of the gateway's answer.
    let frames = |model: &'static str, words: usize| {
        let client = client.clone();
        async move {
            let text = (0..words).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" ");
            let body = json!({"model": model, "stream": true, "messages": [{"role": "user", "content": text}]});
            let mut response = client
                .post(format!("http://{addr}/v1/chat/completions"))
                .bearer_auth(KEY)
                .json(&body)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(response.status(), StatusCode::OK);
            let mut frames = Vec::new();
            while let Some(frame) = response.chunk().await.unwrap_or_else(|e| panic!("{e}")) {
                frames.push(String::from_utf8(frame.to_vec()).unwrap_or_else(|e| panic!("{e}")));
            }
            frames
        }
    };

    let burst = frames("burst", 40).await;
    let joined = burst.concat();
    let events: Vec<&str> = joined.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(events.last(), Some(&"data: [DONE]"));
    let text: String = events[..events.len() - 1]
        .iter()
        .map(|e| {
            serde_json::from_str::<Value>(e.trim_start_matches("data: ")).unwrap_or_else(|err| panic!("{err}: {e}"))
        })
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str().map(str::to_string))
        .collect();
    assert_eq!(text, (0..40).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" "));
    assert!(burst.len() * 4 <= events.len(), "{} events in {} writes", events.len(), burst.len());

    // Chunks 50 ms apart: each is written when it comes (the last one with [DONE], which
    // follows it at once), so five writes; one fewer is allowed for a test machine that
    // stalls the gateway for 50 ms. A stream held back until more came would be one or two.
    let paced = frames("paced", 1).await;
    let events = paced.concat().split("\n\n").filter(|e| !e.is_empty()).count();
    assert_eq!(events, 6, "{paced:?}");
    assert!(paced.len() >= 4, "{events} events in {} writes: chunks were held back: {paced:?}", paced.len());
}

/// Defect: `retry-after-ms: 1e22` overflowed an `Instant`, `1e300` panicked in
/// `Duration::from_secs_f64`, and so did a client's `"cache": {"ttl": 1e300}`: each was a
/// caught panic (a 500) instead of an answer.
#[tokio::test]
async fn huge_durations_from_an_upstream_or_a_client_are_bounded_not_panics() {
    for (name, value) in [
        ("retry-after-ms", "1e22"),
        ("retry-after-ms", "1e300"),
        ("retry-after", "1e300"),
        ("retry-after", "Fri, 31 Dec 9999 23:59:59 GMT"),
    ] {
        let limited = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(429).insert_header(name, value).set_body_json(json!({
                "error": {"message": "slow down", "type": "rate_limit_exceeded", "param": null, "code": "rate_limit_exceeded"}
            })))
            .mount(&limited)
            .await;
        let config = format!(
            "model_list:\n  - model_name: limited\n    litellm_params: {{model: openai/gpt-4o-mini, api_base: '{}/v1', api_key: sk-up}}\nrouter_settings: {{num_retries: 0}}\n",
            limited.uri()
        );
        let app = gateway(&config).await;
        let answer = send(&app, post("/v1/chat/completions", chat("limited", "hi"))).await;
        answer.assert_error(429, "rate_limit_error");
        // The wait asked for is read as at most a day.
        let wait: u64 = answer.header("retry-after").and_then(|s| s.parse().ok()).unwrap_or(u64::MAX);
        assert!(wait <= 86_400, "{name}: {value}: retry after {wait}");
        // The deployment cools down for that day, and says so (not 8,000 years, no panic).
        let again = send(&app, post("/v1/chat/completions", chat("limited", "hi"))).await;
        again.assert_error(429, "rate_limit_error");
    }
    let app = defaults().await;
    let body = json!({"model": "echo", "messages": [{"role": "user", "content": "hi"}], "cache": {"ttl": 1e300}});
    let answer = send(&app, post("/v1/chat/completions", body.to_string())).await;
    let error = answer.assert_error(400, "invalid_request_error");
    assert_eq!(error["error"]["param"], "cache.ttl");
}

/// Defect: upstream error text reached the client verbatim, and an upstream that echoed its
/// credential leaked it.
#[tokio::test]
async fn an_upstream_that_echoes_its_credential_does_not_leak_it() {
    let echoing = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": {"message": "Incorrect API key provided: sk-upstream-echoed-secret. You can find your key at ...", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}
        })))
        .mount(&echoing)
        .await;
    let config = format!(
        "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/gpt-4o-mini, api_base: '{}/v1', api_key: sk-upstream-echoed-secret}}\n  - model_name: s\n    litellm_params: {{model: openai/gpt-4o-mini, api_base: '{}/v1', api_key: sk-upstream-echoed-secret}}\nrouter_settings: {{num_retries: 0}}\n",
        echoing.uri(),
        echoing.uri()
    );
    let app = gateway(&config).await;
    for stream in [false, true] {
        let body = json!({"model": if stream { "s" } else { "m" }, "stream": stream, "messages": [{"role": "user", "content": "hi"}]});
        let answer = send(&app, post("/v1/chat/completions", body.to_string())).await;
        let text = String::from_utf8_lossy(&answer.body);
        assert_eq!(answer.status.as_u16(), 401, "{text}");
        assert!(!text.contains("sk-upstream-echoed-secret"), "the credential leaked: {text}");
        assert!(text.contains("[redacted]"), "{text}");
    }
}

/// Defect: error messages echoed the offending value whole (a 1 MB model name came back
/// whole in the 404).
#[tokio::test]
async fn error_messages_do_not_echo_huge_values() {
    let app = defaults().await;
    let name = "m".repeat(1 << 20);
    let answer = send(&app, post("/v1/chat/completions", chat(&name, "hi"))).await;
    let body = answer.assert_error(404, "not_found_error");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.len() < 1000 && message.contains("1048576 bytes"), "{} bytes: {message:.200}", message.len());
    // A value serde quotes (a wrong type) is cut too.
    let bad =
        json!({"model": "echo", "messages": [{"role": "user", "content": "hi"}], "temperature": "t".repeat(1 << 20)});
    let answer = send(&app, post("/v1/chat/completions", bad.to_string())).await;
    let body = answer.assert_error(400, "invalid_request_error");
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.len() <= 2100), "{} bytes", answer.body.len());
    assert!(answer.body.len() < 4096);
    // A long unknown path, too.
    let path = format!("/v1/{}", "p".repeat(20_000));
    let answer = send(&app, post(&path, "{}")).await;
    answer.assert_error(404, "not_found_error");
    assert!(answer.body.len() < 1000);
}

/// Defect: empty `messages` answered 200; `max_tokens` of -1 or 0 and `n` of -1 or 1e6
/// were passed upstream; `/v1/messages` took the last of duplicate keys where chat refuses
/// them.
#[tokio::test]
async fn out_of_range_requests_are_refused_before_the_upstream() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(500)).mount(&server).await;
    let config = format!(
        "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/gpt-4o-mini, api_base: '{}/v1', api_key: sk-up}}\n",
        server.uri()
    );
    let app = gateway(&config).await;
    let message = json!([{"role": "user", "content": "hi"}]);
    for (field, value, param) in [
        ("messages", json!([]), "messages"),
        ("max_tokens", json!(-1), "max_tokens"),
        ("max_tokens", json!(0), "max_tokens"),
        ("max_completion_tokens", json!(0), "max_completion_tokens"),
        ("n", json!(-1), "n"),
        ("n", json!(1_000_000), "n"),
        ("temperature", json!(7), "temperature"),
    ] {
        let mut body = json!({"model": "m", "messages": message});
        body[field] = value.clone();
        let answer = send(&app, post("/v1/chat/completions", body.to_string())).await;
        let error = answer.assert_error(400, "invalid_request_error");
        assert_eq!(error["error"]["param"], param, "{field} = {value}: {error}");
    }
    assert_eq!(server.received_requests().await.map_or(0, |r| r.len()), 0, "nothing went upstream");
    let duplicated =
        r#"{"model": "m", "max_tokens": 10, "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}"#;
    for path in ["/v1/chat/completions", "/v1/messages"] {
        let answer = send(&app, post(path, duplicated)).await;
        assert_eq!(answer.status.as_u16(), 400, "{path}: {}", String::from_utf8_lossy(&answer.body));
        assert!(String::from_utf8_lossy(&answer.body).contains("duplicate field"), "{path}");
    }
}
