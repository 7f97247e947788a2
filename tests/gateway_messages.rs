//! `/v1/messages` (Anthropic format in) through every provider: each provider's recorded
//! tool-call and reasoning answers (the conformance cases) are played back by wiremock, and
//! the Anthropic-format answer must keep the tool call (name and parsed input), the thinking
//! and the usage, whole and streamed.

use std::path::Path;
use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use switchyard::ProviderKind;
use switchyard::conformance::replay::{provider_settings, upstream};
use switchyard::conformance::{Case, discover};
use switchyard::gateway::messages::COUNT_HEADER;
use switchyard::gateway::{Config, Gateway, app};
use switchyard::router::Deployment;
use tower::ServiceExt as _;

const KEY: &str = "sk-messages-test";

fn env(name: &str) -> Option<String> {
    match name {
        "SWITCHYARD_MASTER_KEY" => Some(KEY.to_string()),
        "SWITCHYARD_DATABASE_URL" => {
            let path = std::env::temp_dir().join(format!("switchyard-messages-{:016x}.db", fastrand::u64(..)));
            Some(format!("sqlite://{}", path.display()))
        }
        _ => None,
    }
}

fn cases() -> Vec<Case> {
    discover(Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance").as_path()).unwrap_or_else(|e| panic!("{e}"))
}

/// A gateway whose model `m` is the case's deployment, answered by the case's recording.
/// Bedrock's recordings are Converse's: the deployment says so (`bedrock/converse/<id>`), as
/// `/v1/messages` would otherwise go to InvokeModel, passed through
/// (`tests/gateway_passthrough.rs`).
async fn gateway_for(case: &Case) -> (axum::Router, wiremock::MockServer) {
    let kind = ProviderKind::from_id(&case.provider).unwrap_or_else(|| panic!("{}", case.provider));
    let server = upstream(case).await;
    let settings = provider_settings(case, kind, &server.uri());
    let model = if kind == ProviderKind::Bedrock {
        case.spec.model.replacen("bedrock/", "bedrock/converse/", 1)
    } else {
        case.spec.model.clone()
    };
    let deployment = Deployment::new(model).settings(settings);
    let gateway = Gateway::from_config_with(&Config::default(), &env, vec![("m".into(), deployment)])
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", case.id()));
    (app(Arc::new(gateway)), server)
}

/// A gateway whose model `m` is `openai/gpt-4o-mini` at `server`.
async fn openai_gateway(server: &wiremock::MockServer) -> axum::Router {
    let config = Config::parse(&format!(
        "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/gpt-4o-mini, api_base: '{}/v1', api_key: sk-up}}\n",
        server.uri()
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    app(Arc::new(Gateway::from_config(&config, &env).await.unwrap_or_else(|e| panic!("{e}"))))
}

fn weather_request(stream: bool) -> Value {
    json!({
        "model": "m", "max_tokens": 2048, "stream": stream,
        "messages": [{"role": "user", "content": "What's the weather in Paris right now?"}],
        "tools": [{
            "name": "get_weather", "description": "Get the current weather for a city.",
            "input_schema": {"type": "object", "properties": {"location": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["location"]}
        }]
    })
}

async fn post(app: &axum::Router, body: &Value) -> (StatusCode, Vec<u8>) {
    let request = Request::post("/v1/messages")
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap_or_else(|e| panic!("{e}"));
    let response = app.clone().oneshot(request).await.unwrap_or_else(|e| match e {});
    let status = response.status();
    (status, to_bytes(response.into_body(), usize::MAX).await.unwrap_or_else(|e| panic!("{e}")).to_vec())
}

/// The events of an Anthropic stream, in order.
fn events(body: &[u8]) -> Vec<(String, Value)> {
    String::from_utf8_lossy(body)
        .split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|event| {
            let mut name = String::new();
            let mut data = Value::Null;
            for line in event.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n.to_string();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(d).unwrap_or_else(|e| panic!("{e}: {d}"));
                }
            }
            assert_eq!(data["type"], name.as_str(), "the event name and its type agree");
            (name, data)
        })
        .collect()
}

/// Rebuilds the message a stream describes, checking the event grammar on the way.
fn assemble(events: &[(String, Value)], id: &str) -> Value {
    assert_eq!(events.first().map(|e| e.0.as_str()), Some("message_start"), "{id}");
    assert_eq!(events.last().map(|e| e.0.as_str()), Some("message_stop"), "{id}");
    let mut blocks: Vec<Value> = Vec::new();
    let mut partial: Vec<String> = Vec::new();
    let mut open: Option<usize> = None;
    let mut message = Value::Null;
    for (name, data) in events {
        match name.as_str() {
            "message_start" => message = data["message"].clone(),
            "content_block_start" => {
                assert!(open.is_none(), "{id}: a block starts while another is open");
                let index = data["index"].as_u64().unwrap_or(u64::MAX) as usize;
                assert_eq!(index, blocks.len(), "{id}: blocks are numbered in order");
                blocks.push(data["content_block"].clone());
                partial.push(String::new());
                open = Some(index);
            }
            "content_block_delta" => {
                let index = data["index"].as_u64().unwrap_or(u64::MAX) as usize;
                assert_eq!(open, Some(index), "{id}: a delta for the open block");
                let delta = &data["delta"];
                match delta["type"].as_str().unwrap_or_default() {
                    "text_delta" => {
                        let text = format!(
                            "{}{}",
                            blocks[index]["text"].as_str().unwrap_or(""),
                            delta["text"].as_str().unwrap_or("")
                        );
                        blocks[index]["text"] = json!(text);
                    }
                    "thinking_delta" => {
                        let text = format!(
                            "{}{}",
                            blocks[index]["thinking"].as_str().unwrap_or(""),
                            delta["thinking"].as_str().unwrap_or("")
                        );
                        blocks[index]["thinking"] = json!(text);
                    }
                    "signature_delta" => blocks[index]["signature"] = delta["signature"].clone(),
                    "input_json_delta" => partial[index].push_str(delta["partial_json"].as_str().unwrap_or("")),
                    other => panic!("{id}: unexpected delta {other}"),
                }
            }
            "content_block_stop" => {
                let index = data["index"].as_u64().unwrap_or(u64::MAX) as usize;
                assert_eq!(open, Some(index), "{id}");
                if blocks[index]["type"] == "tool_use" {
                    let json = if partial[index].is_empty() { "{}" } else { partial[index].as_str() };
                    blocks[index]["input"] = serde_json::from_str(json)
                        .unwrap_or_else(|e| panic!("{id}: tool input is not JSON ({e}): {json}"));
                }
                open = None;
            }
            "message_delta" => {
                message["stop_reason"] = data["delta"]["stop_reason"].clone();
                // Anthropic's own streams give the input tokens at the start and only the
                // output tokens here: the counts at the end update those at the start.
                for (name, count) in data["usage"].as_object().into_iter().flatten() {
                    message["usage"][name] = count.clone();
                }
            }
            "message_stop" => assert!(open.is_none(), "{id}: every block was closed"),
            // Anthropic's keep-alive, passed through from Anthropic upstreams.
            "ping" => {}
            other => panic!("{id}: unexpected event {other}"),
        }
    }
    message["content"] = Value::Array(blocks);
    message
}

fn check_tool_answer(message: &Value, id: &str) {
    let tool = message["content"]
        .as_array()
        .and_then(|blocks| blocks.iter().find(|b| b["type"] == "tool_use"))
        .unwrap_or_else(|| panic!("{id}: a tool_use block in {message}"));
    assert_eq!(tool["name"], "get_weather", "{id}");
    assert!(tool["input"]["location"].as_str().is_some_and(|l| !l.is_empty()), "{id}: input {}", tool["input"]);
    assert!(tool["id"].as_str().is_some(), "{id}");
    assert_eq!(message["stop_reason"], "tool_use", "{id}");
    assert!(message["usage"]["output_tokens"].as_i64().is_some_and(|n| n > 0), "{id}: usage {}", message["usage"]);
    assert!(message["usage"]["input_tokens"].as_i64().is_some_and(|n| n > 0), "{id}: usage {}", message["usage"]);
}

#[tokio::test]
async fn tool_calls_and_usage_survive_the_round_trip_through_every_provider() {
    let mut checked = Vec::new();
    for case in cases().iter().filter(|c| c.name == "tools_auto" || c.name == "stream_tools_usage") {
        let id = case.id();
        let stream = case.name.starts_with("stream");
        let (app, _server) = gateway_for(case).await;
        let (status, body) = post(&app, &weather_request(stream)).await;
        assert_eq!(status, StatusCode::OK, "{id}: {}", String::from_utf8_lossy(&body));
        let message = if stream {
            assemble(&events(&body), &id)
        } else {
            serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{id}: {e}"))
        };
        assert_eq!(message["type"], "message", "{id}");
        // Translated answers name the model asked for; an Anthropic upstream's answer passes
        // through as it came, with the model that answered.
        let model = if case.provider == "anthropic" { case.spec.model.trim_start_matches("anthropic/") } else { "m" };
        assert_eq!(message["model"], model, "{id}");
        check_tool_answer(&message, &id);
        checked.push(id);
    }
    for provider in ["openai", "anthropic", "gemini", "vertex_ai", "bedrock", "cohere", "groq"] {
        assert!(checked.iter().any(|c| c.starts_with(&format!("{provider}/"))), "{provider} was checked: {checked:?}");
    }
}

#[tokio::test]
async fn thinking_survives_the_round_trip_through_every_provider_that_reasons() {
    let mut checked = Vec::new();
    for case in cases().iter().filter(|c| c.name == "reasoning" || c.name == "stream_reasoning") {
        let id = case.id();
        let stream = case.name.starts_with("stream");
        let (app, _server) = gateway_for(case).await;
        let body = json!({
            "model": "m", "max_tokens": 4096, "stream": stream,
            "thinking": {"type": "enabled", "budget_tokens": 2048},
            "messages": [{"role": "user", "content": "Is 1009 prime?"}]
        });
        let (status, bytes) = post(&app, &body).await;
        assert_eq!(status, StatusCode::OK, "{id}: {}", String::from_utf8_lossy(&bytes));
        let message =
            if stream { assemble(&events(&bytes), &id) } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
        let blocks = message["content"].as_array().cloned().unwrap_or_default();
        let thinking =
            blocks.iter().find(|b| b["type"] == "thinking").unwrap_or_else(|| panic!("{id}: thinking in {message}"));
        assert!(thinking["thinking"].as_str().is_some_and(|t| !t.is_empty()), "{id}");
        assert!(
            blocks.iter().any(|b| b["type"] == "text" && b["text"].as_str().is_some_and(|t| !t.is_empty())),
            "{id}"
        );
        if case.provider == "anthropic" {
            assert!(
                thinking["signature"].as_str().is_some_and(|s| !s.is_empty()),
                "{id}: Anthropic's signature survives"
            );
        }
        assert!(message["usage"]["output_tokens"].as_i64().is_some_and(|n| n > 0), "{id}");
        checked.push(id);
    }
    assert!(checked.len() >= 8, "{checked:?}");
}

#[tokio::test]
async fn a_tool_result_turn_reaches_the_upstream_as_tool_messages() {
    let server = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "It is 18°C in Paris.", "refusal": null}, "logprobs": null, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 50, "completion_tokens": 9, "total_tokens": 59, "prompt_tokens_details": {"cached_tokens": 20}}
        })))
        .mount(&server)
        .await;
    let app = openai_gateway(&server).await;
    let body = json!({
        "model": "m", "max_tokens": 512, "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
        "tools": weather_request(false)["tools"],
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"location": "Paris"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "18°C, clear"}]},
                {"type": "text", "text": "Thanks. Summarise."}
            ]}
        ]
    });
    let (status, bytes) = post(&app, &body).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&bytes));
    let message: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    assert_eq!(message["content"][0], json!({"type": "text", "text": "It is 18°C in Paris."}));
    assert_eq!(message["stop_reason"], "end_turn");
    assert_eq!(
        message["usage"],
        json!({"input_tokens": 30, "output_tokens": 9, "cache_read_input_tokens": 20, "cache_creation_input_tokens": 0})
    );
    let sent: Value =
        serde_json::from_slice(&server.received_requests().await.unwrap_or_default()[0].body).unwrap_or(Value::Null);
    let messages = sent["messages"].as_array().cloned().unwrap_or_default();
    let roles: Vec<&str> = messages.iter().filter_map(|m| m["role"].as_str()).collect();
    assert_eq!(roles, ["system", "user", "assistant", "tool", "user"]);
    assert_eq!(messages[2]["tool_calls"][0]["function"]["arguments"], r#"{"location":"Paris"}"#);
    assert_eq!(messages[3], json!({"role": "tool", "tool_call_id": "toolu_1", "content": "18°C, clear"}));
    assert_eq!(sent["tool_choice"], "required");
    assert_eq!(sent["parallel_tool_calls"], false);
    assert_eq!(sent["max_tokens"], 512);
}

#[tokio::test]
async fn errors_come_back_in_anthropics_envelope() {
    let gateway = Gateway::with_defaults(&env).await.unwrap_or_else(|e| panic!("{e}"));
    let app = app(Arc::new(gateway));
    let check = |status: StatusCode, bytes: &[u8], expected: u16, kind: &str| {
        assert_eq!(status.as_u16(), expected, "{}", String::from_utf8_lossy(bytes));
        let body: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
        assert_eq!(body["type"], "error", "{body}");
        assert_eq!(body["error"]["type"], kind, "{body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    };
    let (status, bytes) = post(&app, &json!({"model": "echo", "messages": [{"role": "user", "content": "hi"}]})).await;
    check(status, &bytes, 400, "invalid_request_error");
    // What happens on Anthropic's side (remote MCP servers) cannot be translated: refused, named.
    let mcp = json!({"model": "echo", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}],
        "mcp_servers": [{"type": "url", "url": "https://mcp.example.com/sse", "name": "example"}]});
    let (status, bytes) = post(&app, &mcp).await;
    check(status, &bytes, 400, "invalid_request_error");
    assert!(String::from_utf8_lossy(&bytes).contains("mcp_servers"), "{}", String::from_utf8_lossy(&bytes));
    let (status, bytes) =
        post(&app, &json!({"model": "nope", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]})).await;
    check(status, &bytes, 404, "not_found_error");
    let server_tool = json!({"model": "echo", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "web_search_20250305", "name": "web_search"}]});
    let (status, bytes) = post(&app, &server_tool).await;
    check(status, &bytes, 400, "invalid_request_error");
    let request = Request::post("/v1/messages").body(Body::from("{}")).unwrap_or_else(|e| panic!("{e}"));
    let response = app.clone().oneshot(request).await.unwrap_or_else(|e| match e {});
    let status = response.status();
    let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap_or_else(|e| panic!("{e}"));
    check(status, &bytes, 401, "authentication_error");
    // And the mock answers in Anthropic's shape.
    let (status, bytes) =
        post(&app, &json!({"model": "echo", "max_tokens": 10, "messages": [{"role": "user", "content": "hello"}]}))
            .await;
    assert_eq!(status, StatusCode::OK);
    let message: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    assert_eq!(message["content"], json!([{"type": "text", "text": "hello"}]));
    assert!(message["id"].as_str().is_some_and(|i| i.starts_with("msg_")));
}

/// Claude Code's first request, in the shape its 2.1 releases send (a system-role message
/// among the messages, adaptive thinking with its display omitted, an effort, context
/// management, metadata, cache markers, betas and `?beta=true`): accepted, and translated for
/// an OpenAI-format upstream with the hints dropped and the effort kept.
#[tokio::test]
async fn claude_codes_first_request_is_accepted_and_translated_for_an_openai_upstream() {
    let server = wiremock::MockServer::start().await;
    let sse = concat!(
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hello.\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":40,\"completion_tokens\":2,\"total_tokens\":42}}\n\n",
        "data: [DONE]\n\n",
    );
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .insert_header("content-type", "text/event-stream")
                .set_body_string(sse),
        )
        .mount(&server)
        .await;
    let app = openai_gateway(&server).await;
    let cached = json!({"type": "ephemeral"});
    let body = json!({
        "model": "m", "max_tokens": 32000, "stream": true,
        "system": [
            {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
            {"type": "text", "text": "You are an interactive CLI tool.", "cache_control": cached}
        ],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "<system-reminder>Context.</system-reminder>"}, {"type": "text", "text": "say hello", "cache_control": cached}]},
            {"role": "system", "content": [{"type": "text", "text": "The user's working directory is /tmp/project."}]},
            {"role": "user", "content": [{"type": "text", "text": "and nothing else"}]}
        ],
        "thinking": {"type": "adaptive", "display": "omitted"},
        "output_config": {"effort": "high"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "metadata": {"user_id": "user_abc_account__session_1"},
        "tools": [
            {"name": "Read", "description": "Reads a file.", "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}, "required": ["file_path"]}},
            {"name": "Bash", "description": "Runs a command.", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}, "defer_loading": false, "cache_control": cached}
        ]
    });
    let request = Request::post("/v1/messages?beta=true")
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01")
        .header(
            "anthropic-beta",
            "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27,effort-2025-11-24",
        )
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap_or_else(|e| panic!("{e}"));
    let response = app.clone().oneshot(request).await.unwrap_or_else(|e| match e {});
    let status = response.status();
    let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap_or_else(|e| panic!("{e}")).to_vec();
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&bytes));
    let message = assemble(&events(&bytes), "claude code");
    assert_eq!(message["content"], json!([{"type": "text", "text": "Hello."}]));
    assert_eq!(message["stop_reason"], "end_turn");

    let sent: Value =
        serde_json::from_slice(&server.received_requests().await.unwrap_or_default()[0].body).unwrap_or(Value::Null);
    let roles: Vec<&str> =
        sent["messages"].as_array().into_iter().flatten().filter_map(|m| m["role"].as_str()).collect();
    assert_eq!(roles, ["system", "user", "system", "user"], "{sent}");
    assert_eq!(
        sent["messages"][2]["content"],
        json!([{"type": "text", "text": "The user's working directory is /tmp/project."}])
    );
    // Effort is a hint, and gpt-4o-mini does not reason (it would refuse `reasoning_effort`):
    // dropped. A reasoning model gets it (`tests/ingress.rs`, o3-mini: `"high"`).
    assert!(sent.get("reasoning_effort").is_none(), "{sent}");
    assert!(sent.get("user").is_none(), "the user id is a hint, not OpenAI's deprecated `user`: {sent}");
    for hint in ["context_management", "thinking", "output_config", "metadata"] {
        assert!(sent.get(hint).is_none(), "`{hint}` is not sent to an OpenAI upstream: {sent}");
    }
    let tools: Vec<&str> =
        sent["tools"].as_array().into_iter().flatten().filter_map(|t| t["function"]["name"].as_str()).collect();
    assert_eq!(tools, ["Read", "Bash"]);
}

/// An Anthropic client (it sends `anthropic-version`) gets the model list in Anthropic's
/// shape, with its paging; an OpenAI client the OpenAI list.
#[tokio::test]
async fn the_model_list_answers_in_the_shape_the_client_speaks() {
    let gateway = Gateway::with_defaults(&env).await.unwrap_or_else(|e| panic!("{e}"));
    let app = app(Arc::new(gateway));
    let get = |path: &str, anthropic: bool| {
        let mut request = Request::get(path).header("x-api-key", KEY);
        if anthropic {
            request = request.header("anthropic-version", "2023-06-01");
        }
        let request = request.body(Body::empty()).unwrap_or_else(|e| panic!("{e}"));
        let app = app.clone();
        async move {
            let response = app.oneshot(request).await.unwrap_or_else(|e| match e {});
            let status = response.status();
            let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap_or_else(|e| panic!("{e}"));
            (status, serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null))
        }
    };
    let (status, openai) = get("/v1/models", false).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(openai["object"], "list", "{openai}");
    let ids: Vec<&str> = openai["data"].as_array().into_iter().flatten().filter_map(|m| m["id"].as_str()).collect();
    assert!(ids.len() >= 2, "the default gateway has several mock models: {openai}");

    let (status, first) = get("/v1/models?limit=1", true).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first["data"][0]["type"], "model", "{first}");
    assert_eq!(first["data"][0]["id"], ids[0]);
    assert!(first["data"][0]["display_name"].is_string() && first["data"][0]["created_at"].is_string());
    assert_eq!((first["first_id"].as_str(), first["has_more"].as_bool()), (Some(ids[0]), Some(true)));
    let (_, next) = get(&format!("/v1/models?limit=1&after_id={}", ids[0]), true).await;
    assert_eq!(next["data"][0]["id"], ids[1], "{next}");

    let (status, refused) = get("/v1/models?limit=0", true).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        (refused["type"].as_str(), refused["error"]["type"].as_str()),
        (Some("error"), Some("invalid_request_error"))
    );
}

#[tokio::test]
async fn count_tokens_estimates_with_the_tokenizer_and_says_so() {
    let gateway = Gateway::with_defaults(&env).await.unwrap_or_else(|e| panic!("{e}"));
    let app = app(Arc::new(gateway));
    let count = |body: Value| {
        let request = Request::post("/v1/messages/count_tokens?beta=true")
            .header("x-api-key", KEY)
            .header("anthropic-version", "2023-06-01")
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap_or_else(|e| panic!("{e}"));
        let app = app.clone();
        async move {
            let response = app.oneshot(request).await.unwrap_or_else(|e| match e {});
            let (status, how) = (response.status(), response.headers().get(COUNT_HEADER).cloned());
            let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap_or_else(|e| panic!("{e}"));
            (status, how, serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null))
        }
    };
    let short = json!({"model": "echo", "messages": [{"role": "user", "content": "hi"}]});
    let long_text = "the quick brown fox jumps over the lazy dog ".repeat(50);
    let long = json!({"model": "echo", "system": "be brief",
        "messages": [{"role": "user", "content": [{"type": "text", "text": long_text}]}]});
    let (status, how, small) = count(short).await;
    assert_eq!(status, StatusCode::OK, "{small}");
    assert_eq!(how.as_ref().and_then(|h| h.to_str().ok()), Some("estimate"));
    let (_, _, large) = count(long).await;
    let (small, large) = (small["input_tokens"].as_u64(), large["input_tokens"].as_u64());
    assert!(small.is_some_and(|n| n > 0), "{small:?}");
    // Fifty repetitions of nine words: hundreds of tokens, whatever the tokenizer.
    assert!(large.is_some_and(|n| n > 300 && n > small.unwrap_or(0) * 20), "{small:?} {large:?}");

    let (status, _, unknown) = count(json!({"model": "nope", "messages": [{"role": "user", "content": "hi"}]})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{unknown}");
    assert_eq!((unknown["type"].as_str(), unknown["error"]["type"].as_str()), (Some("error"), Some("not_found_error")));
    let (status, _, bad) = count(json!({"model": "echo", "messages": "hi"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    assert_eq!(bad["error"]["type"], "invalid_request_error");
}
