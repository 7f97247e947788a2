//! `POST /v1/messages`: Anthropic's Messages format in, any provider out, streams included.
//!
//! The request is checked against our description of Anthropic's format, translated to the
//! OpenAI-shaped request the router speaks, and the answer translated back. What maps:
//!
//! - `system` (string or text blocks, `cache_control` kept) to a system message; text, image
//!   (base64 or URL) and PDF document blocks to content parts; `tool_use` blocks to tool calls
//!   (input as JSON arguments); `tool_result` blocks to tool messages, in order; thinking
//!   blocks ride along as `thinking_blocks` (signatures kept) so Anthropic upstreams get
//!   them back.
//! - `tools` to function tools (`input_schema` as parameters), `tool_choice` auto / any / tool
//!   / none to auto / required / the named function / none (`disable_parallel_tool_use` to
//!   `parallel_tool_calls: false`), `stop_sequences` to `stop`, `metadata.user_id` to `user`,
//!   `thinking.budget_tokens` to `reasoning_effort` (up to 1024 low, 2048 medium, more high:
//!   the budget is rounded to a level), `output_config.format` to a JSON-schema
//!   `response_format`. Server tools (web search and the like), `mcp_servers` and
//!   `container` are refused with a clear error rather than dropped; a system-role message
//!   among the messages (Claude Code sends them) stays a system message where it stands.
//! - Hints the translation cannot carry (`context_management`, `service_tier`,
//!   `thinking.display`, fields newer than this version) are dropped, each named in a debug
//!   log: they shape how an answer is produced on Anthropic's side, not what it says.
//! - Answers: reasoning to a `thinking` block, text, tool calls to `tool_use` blocks (with
//!   their arguments parsed), `finish_reason` to `stop_reason`, and usage with cache reads and
//!   writes apart from `input_tokens`, as Anthropic counts them.
//! - Streams: `message_start`, one `content_block_start` / `_delta` / `_stop` run per
//!   thinking, text or tool-use block (tool arguments as `input_json_delta`), `message_delta`
//!   with the stop reason and usage, `message_stop`; an error after the start is an `error`
//!   event. Usage is always asked of the upstream so the final counts are right.

use std::sync::Arc;

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

mod answer;
mod count;

use super::auth::Principal;
use super::coalesce::coalesce;
use super::envelope::anthropic_error;
use super::handlers::{Routed, body, route_chat};
use super::{ApiFailure, Gateway};
use crate::ChatRequest;
use crate::router::CallOptions;
use answer::events;
pub use answer::{StreamTranslator, from_openai};
pub use count::COUNT_HEADER;
pub(super) use count::count_tokens;

pub(super) async fn messages(
    State(gateway): State<Arc<Gateway>>,
    Extension(principal): Extension<Principal>,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    match handle(&gateway, &principal, raw).await {
        Ok(response) => response,
        Err(failure) => anthropic_error(&failure),
    }
}

async fn handle(
    gateway: &Gateway,
    principal: &Principal,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiFailure> {
    let value = parse_body(raw)?;
    let mut request = checked(&value)?;
    // The guardrails a request asks for, as on the OpenAI route (ours; not Anthropic's).
    for field in ["guardrails", "disable_guardrails"] {
        if let Some(names) = value.get(field) {
            request.extra.insert(field.into(), names.clone());
        }
    }
    let group = request.model.clone();
    Ok(match Box::pin(route_chat(gateway, principal, request, CallOptions::default())).await? {
        Routed::Whole(response, headers) => (headers, axum::Json(from_openai(&response, &group))).into_response(),
        Routed::Stream(stream, mut headers) => {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            (StatusCode::OK, headers, Body::from_stream(coalesce(events(stream, group)))).into_response()
        }
    })
}

/// The body as JSON (objects without duplicate keys), or the error that says what is wrong.
fn parse_body(raw: Result<Bytes, BytesRejection>) -> Result<Value, ApiFailure> {
    let bytes = body(raw)?;
    if bytes.is_empty() {
        return Err(ApiFailure::bad_request("the request body is empty; send a JSON object"));
    }
    super::intake::strict_json(&bytes).map_err(|e| {
        let what = if e.is_syntax() || e.is_eof() { "the request body is not valid JSON" } else { "invalid request" };
        ApiFailure::bad_request(format!("{what}: {e}"))
    })
}

/// The request checked against our description of Anthropic's format (for its error
/// messages), then translated.
fn checked(value: &Value) -> Result<ChatRequest, ApiFailure> {
    <crate::spec::anthropic::CreateMessageParams as serde::Deserialize>::deserialize(value)
        .map_err(|e| ApiFailure::bad_request(format!("invalid request: {e}")))?;
    to_openai(value)
}

fn bad(message: impl Into<String>) -> ApiFailure {
    ApiFailure::bad_request(message)
}

/// Anthropic's request as the OpenAI-shaped request the router speaks.
pub fn to_openai(body: &Value) -> Result<ChatRequest, ApiFailure> {
    let obj = body.as_object().ok_or_else(|| bad("the request body must be a JSON object"))?;
    let mut out = Map::new();
    out.insert("model".into(), obj.get("model").cloned().unwrap_or(Value::Null));
    let mut messages = Vec::new();
    match obj.get("system") {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) => messages.push(json!({"role": "system", "content": text})),
        Some(Value::Array(blocks)) => {
            let parts: Vec<Value> = blocks.iter().map(text_part).collect::<Result<_, _>>()?;
            messages.push(json!({"role": "system", "content": parts}));
        }
        Some(_) => return Err(bad("`system` must be a string or a list of text blocks")),
    }
    for (i, message) in obj.get("messages").and_then(Value::as_array).into_iter().flatten().enumerate() {
        let role = message.get("role").and_then(Value::as_str).unwrap_or_default();
        match (role, message.get("content")) {
            (_, Some(Value::String(text))) => messages.push(json!({"role": role, "content": text})),
            ("user", Some(Value::Array(blocks))) => user_blocks(blocks, i, &mut messages)?,
            // A system-role message among the messages (Claude Code sends them) stays a
            // system message where it stands; providers with one system prompt join it there.
            ("system", Some(Value::Array(blocks))) => {
                let parts: Vec<Value> = blocks.iter().map(text_part).collect::<Result<_, _>>()?;
                messages.push(json!({"role": "system", "content": parts}));
            }
            ("assistant", Some(Value::Array(blocks))) => messages.push(assistant_blocks(blocks, i)?),
            _ => {
                return Err(bad(format!(
                    "messages[{i}]: `role` must be user, assistant or system, with string or block content"
                )));
            }
        }
    }
    out.insert("messages".into(), Value::Array(messages));
    if let Some(max) = obj.get("max_tokens") {
        out.insert("max_tokens".into(), max.clone());
    }
    for (from, to) in
        [("temperature", "temperature"), ("top_p", "top_p"), ("stop_sequences", "stop"), ("top_k", "top_k")]
    {
        if let Some(v) = obj.get(from).filter(|v| !v.is_null()) {
            out.insert(to.into(), v.clone());
        }
    }
    if let Some(user) = obj.get("metadata").and_then(|m| m.get("user_id")).filter(|u| u.is_string()) {
        out.insert("user".into(), user.clone());
    }
    if obj.get("stream").and_then(Value::as_bool) == Some(true) {
        out.insert("stream".into(), Value::Bool(true));
        out.insert("stream_options".into(), json!({"include_usage": true}));
    }
    if let Some(tools) = obj.get("tools").and_then(Value::as_array) {
        let tools: Vec<Value> = tools.iter().map(tool).collect::<Result<_, _>>()?;
        out.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = obj.get("tool_choice") {
        let kind = choice.get("type").and_then(Value::as_str).unwrap_or_default();
        let mapped = match kind {
            "auto" => json!("auto"),
            "any" => json!("required"),
            "none" => json!("none"),
            "tool" => {
                json!({"type": "function", "function": {"name": choice.get("name").cloned().unwrap_or(Value::Null)}})
            }
            other => {
                return Err(bad(format!(
                    "tool_choice type `{}` is not one of auto, any, tool, none",
                    super::envelope::shown(other)
                )));
            }
        };
        out.insert("tool_choice".into(), mapped);
        if choice.get("disable_parallel_tool_use").and_then(Value::as_bool) == Some(true) {
            out.insert("parallel_tool_calls".into(), Value::Bool(false));
        }
    }
    if let Some(thinking) = obj.get("thinking")
        && thinking.get("type").and_then(Value::as_str) == Some("enabled")
    {
        let budget = thinking.get("budget_tokens").and_then(Value::as_i64).unwrap_or(0);
        let effort = if budget <= 1024 {
            "low"
        } else if budget <= 2048 {
            "medium"
        } else {
            "high"
        };
        out.insert("reasoning_effort".into(), json!(effort));
    }
    if let Some(config) = obj.get("output_config") {
        if let Some(schema) = config.get("format").and_then(|f| f.get("schema")) {
            out.insert(
                "response_format".into(),
                json!({"type": "json_schema", "json_schema": {"name": "output", "schema": schema, "strict": true}}),
            );
        }
        if let Some(effort) = config.get("effort").filter(|e| e.is_string()) {
            out.insert("reasoning_effort".into(), effort.clone());
        }
    }
    check_untranslated(obj)?;
    serde_json::from_value(Value::Object(out)).map_err(|e| bad(format!("invalid request: {e}")))
}

/// The Messages fields the translation reads (and ours: the guardrails a request asks for).
const TRANSLATED: &[&str] = &[
    "model",
    "messages",
    "system",
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "stop_sequences",
    "metadata",
    "stream",
    "tools",
    "tool_choice",
    "thinking",
    "output_config",
    "guardrails",
    "disable_guardrails",
];

/// Fields whose loss would change the answer: what they ask for happens on Anthropic's side
/// (remote MCP servers, a code-execution container), so a translated call refuses them.
const REFUSED: &[&str] = &["mcp_servers", "container"];

/// Refuses the fields a translated call cannot honour; every other field the translation
/// does not read is a hint (`context_management`, `service_tier`, fields newer than this
/// version) and is dropped, each named in a debug log.
fn check_untranslated(obj: &Map<String, Value>) -> Result<(), ApiFailure> {
    for key in obj.keys().filter(|k| !TRANSLATED.contains(&k.as_str())) {
        if REFUSED.contains(&key.as_str()) {
            return Err(bad(format!(
                "`{key}` runs on Anthropic's side and cannot be translated for this model's provider"
            )));
        }
        tracing::debug!(field = %super::envelope::shown(key), "dropping a Messages field the translation does not carry");
    }
    Ok(())
}

fn text_part(block: &Value) -> Result<Value, ApiFailure> {
    let text = block.get("text").and_then(Value::as_str).ok_or_else(|| bad("a text block needs `text`"))?;
    let mut part = json!({"type": "text", "text": text});
    if let Some(cc) = block.get("cache_control") {
        part["cache_control"] = cc.clone();
    }
    Ok(part)
}

fn user_blocks(blocks: &[Value], i: usize, messages: &mut Vec<Value>) -> Result<(), ApiFailure> {
    let mut parts = Vec::new();
    for block in blocks {
        match block.get("type").and_then(Value::as_str).unwrap_or_default() {
            "text" => parts.push(text_part(block)?),
            "image" => {
                let source =
                    block.get("source").ok_or_else(|| bad(format!("messages[{i}]: an image needs `source`")))?;
                let url = match source.get("type").and_then(Value::as_str) {
                    Some("base64") => format!(
                        "data:{};base64,{}",
                        source.get("media_type").and_then(Value::as_str).unwrap_or("image/png"),
                        source.get("data").and_then(Value::as_str).unwrap_or_default()
                    ),
                    Some("url") => source.get("url").and_then(Value::as_str).unwrap_or_default().to_string(),
                    _ => return Err(bad(format!("messages[{i}]: image sources are base64 or url"))),
                };
                parts.push(json!({"type": "image_url", "image_url": {"url": url}}));
            }
            "document" => {
                let source = block.get("source").cloned().unwrap_or(Value::Null);
                match source.get("type").and_then(Value::as_str) {
                    Some("base64") => parts.push(json!({"type": "file", "file": {
                        "file_data": format!("data:{};base64,{}",
                            source.get("media_type").and_then(Value::as_str).unwrap_or("application/pdf"),
                            source.get("data").and_then(Value::as_str).unwrap_or_default()),
                    }})),
                    Some("text") => {
                        parts.push(json!({"type": "text", "text": source.get("data").cloned().unwrap_or(Value::Null)}))
                    }
                    _ => {
                        return Err(bad(format!(
                            "messages[{i}]: only base64 and text document sources can be translated"
                        )));
                    }
                }
            }
            "tool_result" => {
                // Tool results answer the calls before them; other parts follow them.
                let content = match block.get("content") {
                    None | Some(Value::Null) => Value::String(String::new()),
                    Some(Value::String(s)) => Value::String(s.clone()),
                    Some(Value::Array(items)) => Value::String(
                        items
                            .iter()
                            .filter_map(|b| b.get("text").and_then(Value::as_str))
                            .collect::<Vec<_>>()
                            .join("\n"),
                    ),
                    Some(_) => {
                        return Err(bad(format!("messages[{i}]: tool_result content must be a string or blocks")));
                    }
                };
                let id = block.get("tool_use_id").cloned().unwrap_or(Value::Null);
                messages.push(json!({"role": "tool", "tool_call_id": id, "content": content}));
            }
            other => {
                return Err(bad(format!(
                    "messages[{i}]: a `{}` block cannot be sent by the user here",
                    super::envelope::shown(other)
                )));
            }
        }
    }
    if !parts.is_empty() {
        messages.push(json!({"role": "user", "content": parts}));
    }
    Ok(())
}

fn assistant_blocks(blocks: &[Value], i: usize) -> Result<Value, ApiFailure> {
    let mut text = String::new();
    let mut calls = Vec::new();
    let mut thinking = Vec::new();
    let mut reasoning = String::new();
    for block in blocks {
        match block.get("type").and_then(Value::as_str).unwrap_or_default() {
            "text" => text.push_str(block.get("text").and_then(Value::as_str).unwrap_or_default()),
            "tool_use" => {
                let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
                calls.push(json!({
                    "id": block.get("id").cloned().unwrap_or(Value::Null),
                    "type": "function",
                    "function": {"name": block.get("name").cloned().unwrap_or(Value::Null), "arguments": input.to_string()},
                }));
            }
            "thinking" => {
                reasoning.push_str(block.get("thinking").and_then(Value::as_str).unwrap_or_default());
                thinking.push(block.clone());
            }
            "redacted_thinking" => thinking.push(block.clone()),
            other => {
                return Err(bad(format!(
                    "messages[{i}]: an assistant `{}` block cannot be translated",
                    super::envelope::shown(other)
                )));
            }
        }
    }
    let mut message = json!({"role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { Value::String(text) }});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    if !thinking.is_empty() {
        message["thinking_blocks"] = Value::Array(thinking);
        message["reasoning_content"] = Value::String(reasoning);
    }
    Ok(message)
}

fn tool(tool: &Value) -> Result<Value, ApiFailure> {
    if let Some(kind) = tool.get("type").and_then(Value::as_str).filter(|t| *t != "custom") {
        return Err(bad(format!(
            "the server tool `{}` runs only on Anthropic's side and cannot be routed",
            super::envelope::shown(kind)
        )));
    }
    let mut function = json!({
        "name": tool.get("name").cloned().unwrap_or(Value::Null),
        "parameters": tool.get("input_schema").cloned().unwrap_or_else(|| json!({"type": "object"})),
    });
    if let Some(description) = tool.get("description") {
        function["description"] = description.clone();
    }
    let mut out = json!({"type": "function", "function": function});
    if let Some(cc) = tool.get("cache_control") {
        out["cache_control"] = cc.clone();
    }
    Ok(out)
}
