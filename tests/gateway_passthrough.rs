//! `/v1/messages` to an Anthropic upstream (wiremock): the request goes out as the client
//! sent it with only the model and the credentials replaced, the client's version and betas
//! go with it (`?beta=true` kept), and the answer and every stream event come back as the
//! upstream sent them, while usage still reaches the spend log. A group that falls back to
//! an OpenAI-format deployment is translated there, and what only Anthropic can do is
//! refused by name.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, Request, StatusCode};
use serde_json::{Value, json};
use switchyard::gateway::{Config, Gateway, app};
use tower::ServiceExt as _;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const MASTER: &str = "sk-master-for-passthrough";

/// A whole Anthropic answer with what this version does not know: a server tool's blocks, a
/// top-level field from the future.
const ANSWER: &str = r#"{"id":"msg_01PT","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{"query":"paris"}},{"type":"web_search_tool_result","tool_use_id":"srvtoolu_1","content":[]},{"type":"text","text":"Sunny in Paris."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":1200,"output_tokens":34,"cache_read_input_tokens":1000,"server_tool_use":{"web_search_requests":1}},"container":null,"context_management":{"applied_edits":[]}}"#;

/// A stream with an event type and a delta type this version does not know.
const STREAM: &str = concat!(
    "event: message_start\n",
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01ST\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5-20250929\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":900,\"output_tokens\":1}}}\n\n",
    "event: ping\n",
    "data: {\"type\":\"ping\"}\n\n",
    "event: content_block_start\n",
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Sunny\"}}\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"citations_delta\",\"citation\":{\"type\":\"char_location\"}}}\n\n",
    "event: future_event\n",
    "data: {\"type\":\"future_event\",\"anything\":[1,2,3]}\n\n",
    "event: content_block_stop\n",
    "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: message_delta\n",
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":40}}\n\n",
    "event: message_stop\n",
    "data: {\"type\":\"message_stop\"}\n\n",
);

/// Claude Code's kind of request: a system-role message, adaptive thinking, effort,
/// context management, cache markers, a server tool; written oddly (spacing, key order) so
/// any re-serialisation would show.
const REQUEST: &str = r#"{"model":"claude-sonnet-4-5","max_tokens":32000,
  "messages":[{"role":"user","content":[{"type":"text","text":"hi","cache_control":{"type":"ephemeral"}}]},
              {"role":"system","content":[{"type":"text","text":"Be brief."}]}],
  "thinking":{"type":"adaptive","display":"omitted"},"output_config":{"effort":"high"},
  "context_management":{"edits":[{"type":"clear_thinking_20251015","keep":"all"}]},
  "metadata":{"user_id":"user_abc"},"zeta_future_field":{"b":2,"a":1},
  "tools":[{"type":"web_search_20250305","name":"web_search","max_uses":2}],
  "stream":STREAM}"#;

fn request(stream: bool) -> String {
    REQUEST.replace("STREAM", if stream { "true" } else { "false" })
}

async fn anthropic_upstream() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(wiremock::matchers::body_string_contains("\"stream\":true"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/event-stream")
                .insert_header("request-id", "req_01UpstreamStream")
                .insert_header("anthropic-ratelimit-tokens-remaining", "79000")
                .set_body_raw(STREAM, "text/event-stream"),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("request-id", "req_01UpstreamWhole")
                .insert_header("anthropic-ratelimit-requests-remaining", "49")
                .insert_header("x-upstream-internal", "not for the client")
                .set_body_raw(ANSWER, "application/json"),
        )
        .mount(&server)
        .await;
    server
}

async fn gateway(yaml: &str) -> axum::Router {
    let config = Config::parse(yaml).unwrap_or_else(|e| panic!("{e}"));
    let path = std::env::temp_dir().join(format!("switchyard-passthrough-{:016x}.db", fastrand::u64(..)));
    let database = format!("sqlite://{}", path.display());
    let env = move |name: &str| match name {
        "SWITCHYARD_MASTER_KEY" => Some(MASTER.to_string()),
        "SWITCHYARD_DATABASE_URL" => Some(database.clone()),
        _ => None,
    };
    app(Arc::new(Gateway::from_config(&config, &env).await.unwrap_or_else(|e| panic!("{e}"))))
}

fn config(anthropic: &str) -> String {
    format!(
        "model_list:\n  - model_name: claude-sonnet-4-5\n    litellm_params: {{model: anthropic/claude-sonnet-4-5-20250929, api_base: '{anthropic}', api_key: sk-ant-upstream, input_cost_per_token: 0.000003, output_cost_per_token: 0.000015, extra_headers: {{anthropic-beta: configured-beta-1}}}}\n"
    )
}

async fn post(app: &axum::Router, uri: &str, body: String) -> (StatusCode, HeaderMap, Vec<u8>) {
    let request = Request::post(uri)
        .header("authorization", format!("Bearer {MASTER}"))
        .header("anthropic-version", "2099-01-01")
        .header("anthropic-beta", "claude-code-20250219,interleaved-thinking-2025-05-14")
        .header("anthropic-beta", "context-management-2025-06-27")
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap_or_else(|e| panic!("{e}"));
    let response = app.clone().oneshot(request).await.unwrap_or_else(|e| match e {});
    let (status, headers) = (response.status(), response.headers().clone());
    (status, headers, to_bytes(response.into_body(), usize::MAX).await.unwrap_or_else(|e| panic!("{e}")).to_vec())
}

async fn spend_rows(app: &axum::Router, at_least: usize) -> Vec<Value> {
    for _ in 0..250 {
        let request = Request::get("/spend/logs")
            .header("authorization", format!("Bearer {MASTER}"))
            .body(Body::empty())
            .unwrap_or_else(|e| panic!("{e}"));
        let response = app.clone().oneshot(request).await.unwrap_or_else(|e| match e {});
        let rows: Value = serde_json::from_slice(&to_bytes(response.into_body(), usize::MAX).await.unwrap_or_default())
            .unwrap_or_default();
        if rows.as_array().is_some_and(|r| r.len() >= at_least) {
            return rows.as_array().cloned().unwrap_or_default();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("fewer than {at_least} spend rows");
}

/// What the upstream received, in order.
async fn received(server: &MockServer) -> Vec<wiremock::Request> {
    server.received_requests().await.unwrap_or_default()
}

fn header<'a>(request: &'a wiremock::Request, name: &str) -> Option<&'a str> {
    request.headers.get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn a_whole_answer_passes_through_both_ways_and_is_still_metered() {
    let server = anthropic_upstream().await;
    let app = gateway(&config(&server.uri())).await;
    let (status, headers, body) = post(&app, "/v1/messages?beta=true", request(false)).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    // The upstream's bytes, unchanged: blocks and fields this version does not know included.
    assert_eq!(String::from_utf8_lossy(&body), ANSWER);
    assert_eq!(headers.get("content-type").and_then(|v| v.to_str().ok()), Some("application/json"));
    // The upstream's request id, for looking the call up on Anthropic's side.
    assert_eq!(headers.get("request-id").and_then(|v| v.to_str().ok()), Some("req_01UpstreamWhole"));
    // The limits the upstream reports, as a client of Anthropic sees them; nothing else of its.
    assert_eq!(headers.get("anthropic-ratelimit-requests-remaining").and_then(|v| v.to_str().ok()), Some("49"));
    assert_eq!(headers.get("x-upstream-internal"), None);

    let sent = received(&server).await;
    assert_eq!(sent.len(), 1);
    let upstream = &sent[0];
    assert_eq!(upstream.url.query(), Some("beta=true"));
    // Byte for byte but the model: the deployment's id in place of the client's name.
    let expected = request(false).replacen("\"claude-sonnet-4-5\"", "\"claude-sonnet-4-5-20250929\"", 1);
    assert_eq!(String::from_utf8_lossy(&upstream.body), expected);
    assert_eq!(header(upstream, "x-api-key"), Some("sk-ant-upstream"));
    assert_eq!(header(upstream, "authorization"), None, "the gateway's own key never goes upstream");
    assert_eq!(header(upstream, "anthropic-version"), Some("2099-01-01"));
    assert_eq!(
        header(upstream, "anthropic-beta"),
        Some("configured-beta-1,claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27")
    );

    // Usage read from the same bytes: the spend row has the tokens and the cost.
    let rows = spend_rows(&app, 1).await;
    let row = &rows[0];
    assert_eq!(row["status"], "success", "{row}");
    assert_eq!(row["prompt_tokens"], 2200, "input plus cache reads: {row}");
    assert_eq!(row["completion_tokens"], 34, "{row}");
    assert!(row["spend"].as_f64().is_some_and(|s| s > 0.0), "{row}");
}

/// A body our description of the format refuses (here one without `max_tokens`, which a
/// newer version of the API might not need) is the Anthropic upstream's to judge: it goes
/// out as it came and the upstream's answer comes back. Translated for a provider of another
/// format, the same body is refused with a 400 (`gateway_messages`).
#[tokio::test]
async fn a_body_our_description_refuses_is_the_upstreams_to_judge() {
    let server = anthropic_upstream().await;
    let app = gateway(&config(&server.uri())).await;
    let body = r#"{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"hi"}]}"#;
    let (status, _, answer) = post(&app, "/v1/messages", body.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&answer));
    assert_eq!(String::from_utf8_lossy(&answer), ANSWER);
    let sent = received(&server).await;
    let expected = body.replacen("\"claude-sonnet-4-5\"", "\"claude-sonnet-4-5-20250929\"", 1);
    assert_eq!(sent.first().map(|r| String::from_utf8_lossy(&r.body).into_owned()), Some(expected));
}

/// A body in shapes the translation cannot read: a `tool_choice` type and a system block
/// newer than this version.
const NEWER_SHAPES: &str = r#"{"model":"claude-sonnet-4-5","max_tokens":64,"system":[{"type":"text","text":"be brief"},{"type":"zeta_prompt_ref","id":"p1"}],"tool_choice":{"type":"zeta_choice"},"messages":[{"role":"user","content":"hi"}]}"#;

#[tokio::test]
async fn shapes_the_translation_cannot_read_still_pass_through_as_they_came() {
    let server = anthropic_upstream().await;
    let app = gateway(&config(&server.uri())).await;
    let (status, _, answer) = post(&app, "/v1/messages", NEWER_SHAPES.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&answer));
    assert_eq!(String::from_utf8_lossy(&answer), ANSWER);
    let sent = received(&server).await;
    let expected = NEWER_SHAPES.replacen("\"claude-sonnet-4-5\"", "\"claude-sonnet-4-5-20250929\"", 1);
    assert_eq!(sent.first().map(|r| String::from_utf8_lossy(&r.body).into_owned()), Some(expected));
}

#[tokio::test]
async fn a_body_whose_messages_the_translation_cannot_read_at_all_still_passes_through() {
    let server = anthropic_upstream().await;
    let app = gateway(&config(&server.uri())).await;
    let body = r#"{"model":"claude-sonnet-4-5","max_tokens":64,"messages":[{"role":"user","content":[{"type":"zeta_note","text":"hi"}]}]}"#;
    let (status, _, answer) = post(&app, "/v1/messages", body.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&answer));
    let sent = received(&server).await;
    let expected = body.replacen("\"claude-sonnet-4-5\"", "\"claude-sonnet-4-5-20250929\"", 1);
    assert_eq!(sent.first().map(|r| String::from_utf8_lossy(&r.body).into_owned()), Some(expected));
}

#[tokio::test]
async fn shapes_the_translation_cannot_read_are_refused_by_name_where_they_would_be_translated() {
    let (anthropic, openai) = (MockServer::start().await, MockServer::start().await);
    let app = falling_back(&anthropic, &openai).await;
    let (status, _, answer) = post(&app, "/v1/messages", NEWER_SHAPES.to_string()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{}", String::from_utf8_lossy(&answer));
    let answer: Value = serde_json::from_slice(&answer).unwrap_or_default();
    assert_eq!(answer["error"]["type"], "invalid_request_error", "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    // The first thing the translation could not carry is named.
    assert!(message.contains("zeta_prompt_ref"), "{message}");
    assert!(received(&openai).await.is_empty(), "nothing was sent to the OpenAI deployment");
}

#[tokio::test]
async fn every_stream_event_passes_through_as_it_came() {
    let server = anthropic_upstream().await;
    let app = gateway(&config(&server.uri())).await;
    let (status, headers, body) = post(&app, "/v1/messages", request(true)).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers.get("content-type").and_then(|v| v.to_str().ok()), Some("text/event-stream"));
    assert_eq!(headers.get("request-id").and_then(|v| v.to_str().ok()), Some("req_01UpstreamStream"));
    assert_eq!(headers.get("anthropic-ratelimit-tokens-remaining").and_then(|v| v.to_str().ok()), Some("79000"));
    assert_eq!(String::from_utf8_lossy(&body), STREAM);
    let sent = received(&server).await;
    assert_eq!(sent[0].url.query(), None, "no `?beta=true` when the client did not send it");
    let expected = request(true).replacen("\"claude-sonnet-4-5\"", "\"claude-sonnet-4-5-20250929\"", 1);
    assert_eq!(String::from_utf8_lossy(&sent[0].body), expected);

    let rows = spend_rows(&app, 1).await;
    assert_eq!(rows[0]["prompt_tokens"], 900, "{}", rows[0]);
    assert_eq!(rows[0]["completion_tokens"], 40, "{}", rows[0]);
}

#[tokio::test]
async fn our_guardrail_fields_are_taken_out_before_the_body_goes_upstream() {
    let server = anthropic_upstream().await;
    let app = gateway(&config(&server.uri())).await;
    let body = request(false).replacen("{\"model\"", "{\"disable_guardrails\":[],\"model\"", 1);
    let (status, _, answer) = post(&app, "/v1/messages", body).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&answer));
    let sent: Value = serde_json::from_slice(&received(&server).await[0].body).unwrap_or_default();
    assert!(sent.get("disable_guardrails").is_none(), "{sent}");
    assert_eq!(sent["model"], "claude-sonnet-4-5-20250929");
    assert_eq!(sent["zeta_future_field"], json!({"a": 1, "b": 2}));
}

/// A group whose Anthropic deployment is overloaded and falls back to an OpenAI-format one.
async fn falling_back(anthropic: &MockServer, openai: &MockServer) -> axum::Router {
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(529).set_body_raw(
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            "application/json",
        ))
        .mount(anthropic)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "From OpenAI."}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}
        })))
        .mount(openai)
        .await;
    let yaml = format!(
        "model_list:\n  - model_name: claude-sonnet-4-5\n    litellm_params: {{model: anthropic/claude-sonnet-4-5-20250929, api_base: '{}', api_key: sk-ant}}\n  - model_name: backup\n    litellm_params: {{model: openai/gpt-4o, api_base: '{}/v1', api_key: sk-oa}}\nrouter_settings: {{num_retries: 0, fallbacks: [{{claude-sonnet-4-5: [backup]}}]}}\n",
        anthropic.uri(),
        openai.uri()
    );
    gateway(&yaml).await
}

#[tokio::test]
async fn a_fallback_to_another_format_is_translated_and_answers_in_anthropics_shape() {
    let (anthropic, openai) = (MockServer::start().await, MockServer::start().await);
    let app = falling_back(&anthropic, &openai).await;
    // No server tool: everything left out of the translation is a hint.
    let body = request(false).replace(r#"{"type":"web_search_20250305","name":"web_search","max_uses":2}"#, "");
    let (status, _, answer) = post(&app, "/v1/messages", body.replace("\"tools\":[],", "")).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&answer));
    let answer: Value = serde_json::from_slice(&answer).unwrap_or_default();
    assert_eq!(answer["type"], "message", "{answer}");
    assert_eq!(answer["content"][0]["text"], "From OpenAI.", "{answer}");
    let sent: Value = serde_json::from_slice(&received(&openai).await[0].body).unwrap_or_default();
    assert_eq!(sent["model"], "gpt-4o");
    assert_eq!(sent["messages"][1]["role"], "system", "the system-role message stays where it stood: {sent}");
    assert!(sent.get("context_management").is_none(), "{sent}");
}

#[tokio::test]
async fn what_only_anthropic_can_do_is_refused_by_name_where_it_would_be_translated() {
    let (anthropic, openai) = (MockServer::start().await, MockServer::start().await);
    let app = falling_back(&anthropic, &openai).await;
    let (status, _, answer) = post(&app, "/v1/messages", request(false)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{}", String::from_utf8_lossy(&answer));
    let answer: Value = serde_json::from_slice(&answer).unwrap_or_default();
    assert_eq!(answer["type"], "error", "{answer}");
    assert_eq!(answer["error"]["type"], "invalid_request_error", "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("web_search_20250305"), "{message}");
    assert!(received(&openai).await.is_empty(), "nothing was sent to the OpenAI deployment");
}

#[tokio::test]
async fn count_tokens_is_forwarded_for_an_exact_count_and_estimated_when_the_upstream_fails() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages/count_tokens"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"input_tokens": 4321})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/messages/count_tokens"))
        .respond_with(
            ResponseTemplate::new(500)
                .set_body_raw(r#"{"type":"error","error":{"type":"api_error","message":"boom"}}"#, "application/json"),
        )
        .mount(&server)
        .await;
    let app = gateway(&config(&server.uri())).await;
    let body = r#"{"model":"claude-sonnet-4-5", "messages":[{"role":"user","content":"count me"}],"system":"s"}"#;
    let (status, headers, answer) = post(&app, "/v1/messages/count_tokens?beta=true", body.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&answer));
    assert_eq!(serde_json::from_slice::<Value>(&answer).unwrap_or_default(), json!({"input_tokens": 4321}));
    assert_eq!(headers.get("x-switchyard-token-count").and_then(|v| v.to_str().ok()), Some("exact"));
    let sent = received(&server).await;
    assert_eq!(sent[0].url.path(), "/v1/messages/count_tokens");
    assert_eq!(sent[0].url.query(), Some("beta=true"));
    assert_eq!(String::from_utf8_lossy(&sent[0].body), body.replace("claude-sonnet-4-5", "claude-sonnet-4-5-20250929"));
    assert_eq!(header(&sent[0], "x-api-key"), Some("sk-ant-upstream"));
    assert_eq!(header(&sent[0], "anthropic-version"), Some("2099-01-01"));

    // The upstream fails: the tokenizer's count, marked as such, rather than an error.
    let (status, headers, answer) = post(&app, "/v1/messages/count_tokens", body.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&answer));
    assert_eq!(headers.get("x-switchyard-token-count").and_then(|v| v.to_str().ok()), Some("estimate"));
    let counted = serde_json::from_slice::<Value>(&answer).unwrap_or_default()["input_tokens"].as_u64();
    assert!(counted.is_some_and(|n| n > 0 && n < 100), "{counted:?}");
}

#[tokio::test]
async fn the_mock_upstream_speaks_anthropic_on_v1_messages_for_the_pass_through_route() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(async move { axum::serve(listener, switchyard::gateway::mock_upstream::app(Duration::ZERO)).await });
    let yaml = format!(
        "model_list:\n  - model_name: fast\n    litellm_params: {{model: anthropic/echo, api_base: 'http://{addr}', api_key: sk-mock}}\n"
    );
    let app = gateway(&yaml).await;
    let body = |stream: bool| {
        json!({"model": "fast", "max_tokens": 64, "stream": stream, "messages": [{"role": "user", "content": "one two three"}]})
            .to_string()
    };
    let (status, _, answer) = post(&app, "/v1/messages", body(false)).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&answer));
    let answer: Value = serde_json::from_slice(&answer).unwrap_or_default();
    assert_eq!(answer["content"][0]["text"], "one two three", "{answer}");
    assert_eq!(answer["model"], "echo", "the upstream's own answer, passed through: {answer}");
    let (status, _, stream) = post(&app, "/v1/messages", body(true)).await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8_lossy(&stream);
    assert!(
        text.starts_with("event: message_start") && text.trim_end().ends_with("{\"type\":\"message_stop\"}"),
        "{text}"
    );
    let rows = spend_rows(&app, 2).await;
    assert!(rows.iter().all(|r| r["completion_tokens"].as_i64().is_some_and(|n| n > 0)), "{rows:?}");
}

#[tokio::test]
async fn a_block_type_this_version_does_not_know_passes_through_and_is_named_where_it_cannot() {
    let server = anthropic_upstream().await;
    let app = gateway(&config(&server.uri())).await;
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what does it say?"},
        {"type": "search_result", "source": "https://example.com", "title": "t", "content": [{"type": "text", "text": "x"}]},
    ]}]})
    .to_string();
    let (status, _, answer) = post(&app, "/v1/messages", body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&answer));
    let sent = received(&server).await;
    assert_eq!(String::from_utf8_lossy(&sent[0].body), body.replace("claude-sonnet-4-5", "claude-sonnet-4-5-20250929"));

    let (anthropic, openai) = (MockServer::start().await, MockServer::start().await);
    let app = falling_back(&anthropic, &openai).await;
    let (status, _, answer) = post(&app, "/v1/messages", body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{}", String::from_utf8_lossy(&answer));
    assert!(String::from_utf8_lossy(&answer).contains("search_result"), "{}", String::from_utf8_lossy(&answer));
}

/// [`config`] with a pre-call `pii` guardrail, `settings` its further `litellm_params`.
fn with_pii_guardrail(anthropic: &str, settings: &str) -> String {
    format!(
        "{}guardrails:\n  - guardrail_name: pii\n    litellm_params: {{guardrail: pii, mode: pre_call, {settings}}}\n",
        config(anthropic)
    )
}

#[tokio::test]
async fn a_guardrail_that_masks_the_request_makes_the_call_translated_so_nothing_unmasked_leaves() {
    let server = anthropic_upstream().await;
    let app = gateway(&with_pii_guardrail(&server.uri(), "action: mask")).await;
    let email = "jane.doe@example.com";
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 100, "guardrails": ["pii"],
        "messages": [{"role": "user", "content": format!("mail {email} please")}]})
    .to_string();
    let (status, headers, answer) = post(&app, "/v1/messages", body).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&answer));
    assert!(headers.get("x-switchyard-guardrails").is_some(), "{headers:?}");
    let sent = received(&server).await;
    let upstream = String::from_utf8_lossy(&sent[0].body);
    assert!(!upstream.contains(email), "the masked request went upstream, not the client's bytes: {upstream}");
    // Translated back: the answer is in Anthropic's shape, under the name asked for.
    let answer: Value = serde_json::from_slice(&answer).unwrap_or_default();
    assert_eq!(answer["model"], "claude-sonnet-4-5", "{answer}");
}

#[tokio::test]
async fn content_the_guardrails_cannot_read_is_not_sent_past_them() {
    let server = anthropic_upstream().await;
    let app = gateway(&with_pii_guardrail(&server.uri(), "action: block, default_on: true")).await;
    // A user block type newer than this version, holding text the guardrail never sees.
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": [{"role": "user",
        "content": [{"type": "text", "text": "hi"}, {"type": "zeta_note", "text": "mail jane.doe@example.com"}]}]})
    .to_string();
    let (status, _, answer) = post(&app, "/v1/messages", body.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{}", String::from_utf8_lossy(&answer));
    let answer: Value = serde_json::from_slice(&answer).unwrap_or_default();
    assert_eq!(answer["error"]["type"], "invalid_request_error", "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("zeta_note") && message.contains("guardrails"), "{message}");
    assert!(received(&server).await.is_empty(), "nothing went upstream");

    // Without guardrails the same request passes through as it came.
    let app = gateway(&config(&server.uri())).await;
    let (status, _, answer) = post(&app, "/v1/messages", body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&answer));
    assert_eq!(received(&server).await.len(), 1);

    // So it does with a guardrail configured that does not run for this request.
    let app = gateway(&with_pii_guardrail(&server.uri(), "action: block, default_on: false")).await;
    let (status, _, answer) = post(&app, "/v1/messages", body).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&answer));
    assert_eq!(received(&server).await.len(), 2);
}

/// Where Claude on Vertex AI answers (project `p`, location `us-east5`).
const VERTEX: &str = "/v1/projects/p/locations/us-east5/publishers/anthropic/models";

/// A gateway whose `claude-sonnet-4-5` is Claude on Vertex AI (wiremock), signed in with a
/// service account whose token comes from the same server.
async fn vertex_gateway(server: &MockServer) -> axum::Router {
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "ya29.vertex", "expires_in": 3599, "token_type": "Bearer"
        })))
        .mount(server)
        .await;
    let key =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/vertex/service_account.json"))
            .unwrap_or_else(|e| panic!("{e}"))
            .replace("{TOKEN_URI}", &format!("{}/token", server.uri()));
    let key_path = std::env::temp_dir().join(format!("switchyard-vertex-key-{:016x}.json", fastrand::u64(..)));
    std::fs::write(&key_path, key).unwrap_or_else(|e| panic!("{e}"));
    gateway(&format!(
        "model_list:\n  - model_name: claude-sonnet-4-5\n    litellm_params: {{model: vertex_ai/claude-sonnet-4-5@20250929, api_base: '{}', vertex_project: p, vertex_location: us-east5, vertex_credentials: '{}', input_cost_per_token: 0.000003, output_cost_per_token: 0.000015}}\n",
        server.uri(),
        key_path.display()
    ))
    .await
}

/// What went to Vertex AI's model paths (the token exchange left out).
async fn model_calls(server: &MockServer) -> Vec<wiremock::Request> {
    received(server).await.into_iter().filter(|r| r.url.path() != "/token").collect()
}

/// The client's body as Vertex AI takes it: the model member gives way to the version.
fn as_vertex_sends_it(body: &str) -> String {
    body.replacen(r#""model":"claude-sonnet-4-5""#, r#""anthropic_version":"vertex-2023-10-16""#, 1)
}

#[tokio::test]
async fn claude_on_vertex_ai_gets_the_clients_body_with_the_model_in_the_url_and_answers_unchanged() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("{VERTEX}/claude-sonnet-4-5@20250929:rawPredict")))
        .respond_with(ResponseTemplate::new(200).set_body_raw(ANSWER, "application/json"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{VERTEX}/claude-sonnet-4-5@20250929:streamRawPredict")))
        .respond_with(ResponseTemplate::new(200).set_body_raw(STREAM, "text/event-stream"))
        .mount(&server)
        .await;
    let app = vertex_gateway(&server).await;

    let (status, _, body) = post(&app, "/v1/messages?beta=true", request(false)).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(String::from_utf8_lossy(&body), ANSWER);
    let (status, _, body) = post(&app, "/v1/messages", request(true)).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(String::from_utf8_lossy(&body), STREAM);

    let sent = model_calls(&server).await;
    assert_eq!(sent.len(), 2);
    for (call, stream) in sent.iter().zip([false, true]) {
        assert_eq!(String::from_utf8_lossy(&call.body), as_vertex_sends_it(&request(stream)));
        assert_eq!(call.url.query(), None, "`?beta=true` is Anthropic's, not Vertex AI's");
        assert_eq!(header(call, "authorization"), Some("Bearer ya29.vertex"));
        assert_eq!(header(call, "x-api-key"), None);
        assert_eq!(header(call, "anthropic-version"), None, "the version is in the body");
        assert_eq!(
            header(call, "anthropic-beta"),
            Some("claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27")
        );
    }
    let rows = spend_rows(&app, 2).await;
    let mut tokens: Vec<(i64, i64)> = rows
        .iter()
        .map(|r| (r["prompt_tokens"].as_i64().unwrap_or(-1), r["completion_tokens"].as_i64().unwrap_or(-1)))
        .collect();
    tokens.sort_unstable();
    assert_eq!(tokens, [(900, 40), (2200, 34)], "{rows:?}");
    assert!(rows.iter().all(|r| r["spend"].as_f64().is_some_and(|s| s > 0.0)), "{rows:?}");
}

#[tokio::test]
async fn claude_on_vertex_ai_counts_tokens_exactly_and_takes_translated_chat_calls() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("{VERTEX}/count-tokens:rawPredict")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"input_tokens": 77})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{VERTEX}/claude-sonnet-4-5@20250929:rawPredict")))
        .respond_with(ResponseTemplate::new(200).set_body_raw(ANSWER, "application/json"))
        .mount(&server)
        .await;
    let app = vertex_gateway(&server).await;
    let body = r#"{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"count me"}]}"#;
    let (status, headers, answer) = post(&app, "/v1/messages/count_tokens", body.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&answer));
    assert_eq!(serde_json::from_slice::<Value>(&answer).unwrap_or_default(), json!({"input_tokens": 77}));
    assert_eq!(headers.get("x-switchyard-token-count").and_then(|v| v.to_str().ok()), Some("exact"));
    let counted = &model_calls(&server).await[0];
    assert_eq!(
        String::from_utf8_lossy(&counted.body),
        r#"{"anthropic_version":"vertex-2023-10-16","model":"claude-sonnet-4-5@20250929","messages":[{"role":"user","content":"count me"}]}"#
    );

    // The OpenAI route to the same deployment: translated to Anthropic's body, Vertex's way.
    let chat = json!({"model": "claude-sonnet-4-5", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]});
    let request = Request::post("/v1/chat/completions")
        .header("authorization", format!("Bearer {MASTER}"))
        .header("content-type", "application/json")
        .body(Body::from(chat.to_string()))
        .unwrap_or_else(|e| panic!("{e}"));
    let response = app.clone().oneshot(request).await.unwrap_or_else(|e| match e {});
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = serde_json::from_slice(&to_bytes(response.into_body(), usize::MAX).await.unwrap_or_default())
        .unwrap_or_default();
    assert_eq!(answer["choices"][0]["message"]["content"], "Sunny in Paris.", "{answer}");
    let sent: Value = serde_json::from_slice(&model_calls(&server).await[1].body).unwrap_or_default();
    assert_eq!(sent["anthropic_version"], "vertex-2023-10-16", "{sent}");
    assert_eq!(sent.get("model"), None, "{sent}");
    assert_eq!(sent["messages"][0]["content"], json!([{"type": "text", "text": "hi"}]), "{sent}");
}

/// Where Claude on Bedrock answers (the model id is one percent-encoded path segment).
const BEDROCK: &str = "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0";

/// [`STREAM`] as InvokeModel sends it: each event's JSON, base64-encoded in a `chunk` frame.
fn bedrock_stream() -> Vec<u8> {
    STREAM
        .split("\n\n")
        .filter_map(|event| event.lines().find_map(|l| l.strip_prefix("data: ")))
        .flat_map(switchyard::provider::bedrock::invoke::chunk_frame)
        .collect()
}

/// A gateway whose one group is Claude on Bedrock at `server`, with a Bedrock API key.
async fn bedrock_gateway(server: &MockServer) -> axum::Router {
    gateway(&format!(
        "model_list:\n  - model_name: claude-sonnet-4-5\n    litellm_params: {{model: bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0, api_base: '{}', aws_region_name: us-east-1, api_key: bedrock-api-key, input_cost_per_token: 0.000003}}\n",
        server.uri()
    ))
    .await
}

#[tokio::test]
async fn claude_on_bedrock_gets_the_clients_body_on_invoke_model_and_streams_come_back_as_anthropics() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("{BEDROCK}/invoke")))
        .respond_with(ResponseTemplate::new(200).set_body_raw(ANSWER, "application/json"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{BEDROCK}/invoke-with-response-stream")))
        .respond_with(ResponseTemplate::new(200).set_body_raw(bedrock_stream(), "application/vnd.amazon.eventstream"))
        .mount(&server)
        .await;
    let app = bedrock_gateway(&server).await;

    let (status, _, body) = post(&app, "/v1/messages?beta=true", request(false)).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(String::from_utf8_lossy(&body), ANSWER);
    let (status, headers, body) = post(&app, "/v1/messages", request(true)).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(headers.get("content-type").and_then(|v| v.to_str().ok()), Some("text/event-stream"));
    // Anthropic's events, as Anthropic's API would have sent them, unknown ones included.
    assert_eq!(String::from_utf8_lossy(&body), STREAM);

    let sent = received(&server).await;
    assert_eq!(sent.len(), 2);
    let betas = r#""anthropic_version":"bedrock-2023-05-31","anthropic_beta":["claude-code-20250219","interleaved-thinking-2025-05-14","context-management-2025-06-27"]"#;
    for (call, stream) in sent.iter().zip([false, true]) {
        // Byte for byte but the model (in the URL) and `stream` (the URL says it).
        let expected = request(stream).replacen(r#""model":"claude-sonnet-4-5""#, betas, 1).replacen(
            &format!(",\n  \"stream\":{stream}"),
            "",
            1,
        );
        assert_eq!(String::from_utf8_lossy(&call.body), expected);
        assert_eq!(header(call, "authorization"), Some("Bearer bedrock-api-key"));
        assert_eq!(call.url.query(), None);
    }
    assert_eq!(sent[1].url.path(), format!("{BEDROCK}/invoke-with-response-stream"));
    let rows = spend_rows(&app, 2).await;
    let mut tokens: Vec<(i64, i64)> = rows
        .iter()
        .map(|r| (r["prompt_tokens"].as_i64().unwrap_or(-1), r["completion_tokens"].as_i64().unwrap_or(-1)))
        .collect();
    tokens.sort_unstable();
    assert_eq!(tokens, [(900, 40), (2200, 34)], "{rows:?}");
}

#[tokio::test]
async fn a_bedrock_exception_mid_stream_ends_the_pass_through_stream_with_an_error_event() {
    let server = MockServer::start().await;
    // Cut after the first content delta, then the model's own failure.
    let mut frames: Vec<u8> = STREAM
        .split("\n\n")
        .take(4)
        .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
        .flat_map(switchyard::provider::bedrock::invoke::chunk_frame)
        .collect();
    frames.extend(switchyard::transport::eventstream::exception_frame(
        "throttlingException",
        br#"{"message":"Too many tokens, please wait before trying again."}"#,
    ));
    Mock::given(method("POST"))
        .and(path(format!("{BEDROCK}/invoke-with-response-stream")))
        .respond_with(ResponseTemplate::new(200).set_body_raw(frames, "application/vnd.amazon.eventstream"))
        .mount(&server)
        .await;
    let app = gateway(&format!(
        "model_list:\n  - model_name: claude-sonnet-4-5\n    litellm_params: {{model: bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0, api_base: '{}', aws_region_name: us-east-1, api_key: k}}\nrouter_settings: {{num_retries: 0}}\n",
        server.uri()
    ))
    .await;
    let (status, _, body) = post(&app, "/v1/messages", request(true)).await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8_lossy(&body);
    let head: String = STREAM.split_inclusive("\n\n").take(4).collect();
    assert!(text.starts_with(&head), "{text}");
    let tail = &text[head.len()..];
    assert!(tail.starts_with("event: error\ndata: "), "{tail}");
    assert!(tail.contains("Too many tokens"), "{tail}");
}

/// A passed-through answer is read for its usage only, unless the response cache keeps it:
/// then it is decoded whole, and the cache hit that follows answers with its content
/// (translated back to Anthropic's shape, as any cached answer).
#[tokio::test]
async fn a_cached_pass_through_answer_is_kept_whole() {
    let server = anthropic_upstream().await;
    let yaml = format!("{}litellm_settings:\n  cache: true\n  cache_params: {{type: local}}\n", config(&server.uri()));
    let app = gateway(&yaml).await;
    let (status, _, first) = post(&app, "/v1/messages", request(false)).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&first));
    assert_eq!(String::from_utf8_lossy(&first), ANSWER);
    let (status, headers, second) = post(&app, "/v1/messages", request(false)).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&second));
    assert_eq!(headers.get("x-switchyard-cache-hit").and_then(|v| v.to_str().ok()), Some("true"));
    let cached: Value = serde_json::from_slice(&second).unwrap_or_default();
    assert_eq!(cached["content"][0]["text"], "Sunny in Paris.", "{cached}");
    assert_eq!(cached["usage"]["output_tokens"], 34, "{cached}");
    assert_eq!(received(&server).await.len(), 1, "the second answer came from the cache");
}

/// Claude on Bedrock counts a Messages body exactly with CountTokens: the body it would
/// send to InvokeModel, base64-encoded, and the count it answers (`inputTokens`) comes
/// back in Anthropic's shape.
#[tokio::test]
async fn claude_on_bedrock_counts_tokens_exactly_with_count_tokens() {
    use base64::Engine as _;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("{BEDROCK}/count-tokens")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"inputTokens": 61})))
        .mount(&server)
        .await;
    let app = bedrock_gateway(&server).await;
    let body = r#"{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"count me"}]}"#;
    let (status, headers, answer) = post(&app, "/v1/messages/count_tokens", body.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&answer));
    assert_eq!(serde_json::from_slice::<Value>(&answer).unwrap_or_default(), json!({"input_tokens": 61}));
    assert_eq!(headers.get("x-switchyard-token-count").and_then(|v| v.to_str().ok()), Some("exact"));
    let sent = received(&server).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(header(&sent[0], "authorization"), Some("Bearer bedrock-api-key"));
    let outer: Value = serde_json::from_slice(&sent[0].body).unwrap_or_default();
    let encoded = outer["input"]["invokeModel"]["body"].as_str().unwrap_or_default();
    let inner = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap_or_default();
    let betas = r#""anthropic_version":"bedrock-2023-05-31","anthropic_beta":["claude-code-20250219","interleaved-thinking-2025-05-14","context-management-2025-06-27"]"#;
    assert_eq!(
        String::from_utf8_lossy(&inner),
        format!(r#"{{{betas},"messages":[{{"role":"user","content":"count me"}}]}}"#)
    );
}

/// An upstream that sends a stream's events one step at a time, each when the test says.
async fn stepped_upstream(steps: Vec<&'static str>) -> (String, Vec<tokio::sync::oneshot::Sender<()>>) {
    use futures_util::StreamExt as _;
    let mut gates = Vec::new();
    let mut waits = Vec::new();
    for _ in 1..steps.len() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        gates.push(tx);
        waits.push(rx);
    }
    let parts = std::sync::Mutex::new(Some((steps, waits)));
    let handler = move || {
        let taken = parts.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        async move {
            let (steps, waits) = taken.unwrap_or_default();
            let first = steps.first().copied().unwrap_or_default();
            let rest = steps.into_iter().skip(1).zip(waits).map(|(step, wait)| async move {
                let _ = wait.await;
                step
            });
            let body = futures_util::stream::once(async move { first })
                .chain(futures_util::stream::iter(rest).then(|step| step))
                .map(|step| Ok::<_, std::convert::Infallible>(axum::body::Bytes::from_static(step.as_bytes())));
            ([("content-type", "text/event-stream")], Body::from_stream(body))
        }
    };
    let handler = Arc::new(handler);
    let app = axum::Router::new().route("/v1/messages", axum::routing::post(move || (handler.clone())()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), gates)
}

/// A passed-through stream reaches the client as it comes: a ping the upstream sends while
/// it thinks (and decodes to nothing) is not held back until the next event that does.
#[tokio::test]
async fn pings_reach_the_client_while_the_upstream_thinks() {
    use futures_util::StreamExt as _;
    let events: Vec<&'static str> = STREAM.split_inclusive("\n\n").collect();
    let (start, ping, rest) = (events[0], events[1], events[2..].concat());
    let rest: &'static str = Box::leak(rest.into_boxed_str());
    let (uri, mut gates) = stepped_upstream(vec![start, ping, rest]).await;
    let app = gateway(&config(&uri)).await;
    let request = Request::post("/v1/messages")
        .header("authorization", format!("Bearer {MASTER}"))
        .header("content-type", "application/json")
        .body(Body::from(request(true)))
        .unwrap_or_else(|e| panic!("{e}"));
    let response = app.clone().oneshot(request).await.unwrap_or_else(|e| match e {});
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body().into_data_stream();
    let mut seen = String::new();
    let mut read_until = async |needle: &str, seen: &mut String| {
        let found = tokio::time::timeout(Duration::from_secs(10), async {
            while !seen.contains(needle) {
                match body.next().await {
                    Some(Ok(bytes)) => seen.push_str(&String::from_utf8_lossy(&bytes)),
                    _ => return false,
                }
            }
            true
        })
        .await;
        found == Ok(true)
    };
    assert!(read_until("event: message_start", &mut seen).await, "{seen}");
    let _ = gates.remove(0).send(());
    assert!(read_until("event: ping", &mut seen).await, "the ping was held back: {seen}");
    let _ = gates.remove(0).send(());
    assert!(read_until("event: message_stop", &mut seen).await, "{seen}");
    assert_eq!(seen, STREAM);
}
