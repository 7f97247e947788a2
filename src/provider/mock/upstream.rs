//! The mock upstream: an OpenAI-format server as a function from request to response.

use std::collections::VecDeque;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::{Value, json};

use crate::provider::ids::fnv1a;
use crate::spec::ext::{ChatMessage, EmbeddingInput};
use crate::spec::openai::{ChatCompletionNamedToolChoice, ChatCompletionToolChoiceOption, ToolChoiceMode};
use crate::transport::{Body, Chunk, RawResponse};
use crate::{ChatRequest, EmbeddingRequest};

/// The models the mock lists (any `slow-<ms>`, `drip-<ms>` and `error-<status>` also
/// work: `slow-<ms>` waits before the answer or the stream's first chunk, `drip-<ms>`
/// before each chunk of a stream and before a whole answer).
pub const MODELS: &[&str] = &["echo", "tools", "slow-50", "error-429", "error-500", "context-length", "truncated"];

/// Answers one request the way an OpenAI-format server would.
pub async fn serve(request: http::Request<Bytes>) -> RawResponse {
    let path = request.uri().path().to_string();
    let method = request.method().clone();
    let body = request.into_body();
    if method == Method::GET && path.ends_with("/models") {
        return models();
    }
    if method != Method::POST {
        return error(StatusCode::METHOD_NOT_ALLOWED, "invalid_request_error", None, "use POST");
    }
    if path.ends_with("/chat/completions") {
        match serde_json::from_slice::<ChatRequest>(&body) {
            Ok(req) => chat(req).await,
            Err(e) => error(StatusCode::BAD_REQUEST, "invalid_request_error", None, &format!("invalid request: {e}")),
        }
    } else if path.ends_with("/embeddings") {
        match serde_json::from_slice::<EmbeddingRequest>(&body) {
            Ok(req) => embeddings(&req),
            Err(e) => error(StatusCode::BAD_REQUEST, "invalid_request_error", None, &format!("invalid request: {e}")),
        }
    } else {
        error(StatusCode::NOT_FOUND, "invalid_request_error", Some("unknown_url"), &format!("unknown path {path}"))
    }
}

async fn chat(req: ChatRequest) -> RawResponse {
    let model = req.model.as_str();
    let mut delay = Duration::ZERO;
    let mut every_chunk = false;
    if let Some(status) = model.strip_prefix("error-") {
        let status = status.parse().ok().and_then(|s| StatusCode::from_u16(s).ok());
        return match status {
            Some(status) if status.as_u16() >= 400 => {
                error(status, error_type(status), None, &format!("mock failure with status {}", status.as_u16()))
            }
            _ => error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                None,
                "error-<status> needs a 4xx or 5xx status",
            ),
        };
    }
    if model == "context-length" {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            Some("context_length_exceeded"),
            "This model's maximum context length is 8 tokens. However, your messages resulted in more tokens.",
        );
    }
    if let Some(ms) = model.strip_prefix("slow-").or_else(|| model.strip_prefix("drip-")) {
        every_chunk = model.starts_with("drip-");
        match ms.parse::<u64>() {
            Ok(ms) => delay = Duration::from_millis(ms.min(600_000)),
            Err(_) => {
                return error(
                    StatusCode::NOT_FOUND,
                    "invalid_request_error",
                    Some("model_not_found"),
                    "slow-<ms> and drip-<ms> need a number",
                );
            }
        }
    } else if !matches!(model, "echo" | "tools" | "truncated") {
        return error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            Some("model_not_found"),
            &format!("The model `{model}` does not exist; the mock knows {}", MODELS.join(", ")),
        );
    }

    let answer = Answer::for_request(&req);
    let stream = req.stream == Some(true);
    if !stream {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        return json_response(StatusCode::OK, &answer.completion(&req));
    }
    let include_usage = req.stream_options.as_ref().and_then(|o| o.include_usage) == Some(true);
    let mut events: Vec<Value> = answer.chunks(&req);
    let truncated = model == "truncated";
    if truncated {
        events.truncate(events.len() / 2);
    } else if include_usage {
        events.push(answer.usage_chunk(&req));
    }
    let mut chunks: VecDeque<Chunk> = events
        .iter()
        .enumerate()
        .map(|(i, event)| Chunk {
            delay: if i == 0 || every_chunk { delay } else { Duration::ZERO },
            bytes: Bytes::from(format!("data: {event}\n\n")),
        })
        .collect();
    if !truncated {
        chunks.push_back(Chunk { delay: Duration::ZERO, bytes: Bytes::from_static(b"data: [DONE]\n\n") });
    }
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    RawResponse { status: StatusCode::OK, headers, body: Body::Chunks(chunks) }
}

/// What the mock says: text, or one tool call.
struct Answer {
    id: String,
    text: Option<String>,
    tool_call: Option<(String, String)>,
    prompt_tokens: u64,
}

impl Answer {
    fn for_request(req: &ChatRequest) -> Self {
        let last_user = req
            .messages
            .iter()
            .rev()
            .find_map(|m| match m {
                ChatMessage::User(u) => Some(u.content.text().into_owned()),
                _ => None,
            })
            .unwrap_or_default();
        let prompt_tokens = req.messages.iter().filter_map(ChatMessage::content).map(|c| words(&c.text())).sum();
        let tool = if req.model == "tools" { chosen_tool(req) } else { None };
        let id = format!(
            "chatcmpl-mock-{:016x}",
            fnv1a(serde_json::to_string(&req.messages).unwrap_or_default().as_bytes())
        );
        match tool {
            Some(name) => {
                let arguments = arguments_for(req, &name, &last_user).to_string();
                Self { id, text: None, tool_call: Some((name, arguments)), prompt_tokens }
            }
            None => Self { id, text: Some(last_user), tool_call: None, prompt_tokens },
        }
    }

    fn completion_tokens(&self) -> u64 {
        match (&self.text, &self.tool_call) {
            (Some(text), _) => words(text),
            (None, Some((_, args))) => (args.len() as u64).div_ceil(4),
            (None, None) => 0,
        }
    }

    fn usage(&self) -> Value {
        let completion = self.completion_tokens();
        json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": self.prompt_tokens + completion,
        })
    }

    fn finish_reason(&self) -> &'static str {
        if self.tool_call.is_some() { "tool_calls" } else { "stop" }
    }

    fn completion(&self, req: &ChatRequest) -> Value {
        let mut message = json!({ "role": "assistant", "content": self.text, "refusal": null });
        if let Some((name, arguments)) = &self.tool_call {
            message["tool_calls"] = json!([{
                "id": "call_mock_0",
                "type": "function",
                "function": { "name": name, "arguments": arguments },
            }]);
        }
        json!({
            "id": self.id,
            "object": "chat.completion",
            "created": crate::provider::unix_now(),
            "model": req.model,
            "choices": [{ "index": 0, "message": message, "logprobs": null, "finish_reason": self.finish_reason() }],
            "usage": self.usage(),
        })
    }

    fn chunk(&self, req: &ChatRequest, delta: Value, finish: Option<&str>) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": crate::provider::unix_now(),
            "model": req.model,
            "choices": [{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish }],
        })
    }

    fn chunks(&self, req: &ChatRequest) -> Vec<Value> {
        let mut out = Vec::new();
        match (&self.text, &self.tool_call) {
            (_, Some((name, arguments))) => {
                out.push(self.chunk(req, json!({
                    "role": "assistant",
                    "content": null,
                    "tool_calls": [{ "index": 0, "id": "call_mock_0", "type": "function", "function": { "name": name, "arguments": "" } }],
                }), None));
                for piece in split_in(arguments, 3) {
                    out.push(self.chunk(
                        req,
                        json!({ "tool_calls": [{ "index": 0, "function": { "arguments": piece } }] }),
                        None,
                    ));
                }
            }
            (text, None) => {
                out.push(self.chunk(req, json!({ "role": "assistant", "content": "", "refusal": null }), None));
                for piece in split_words(text.as_deref().unwrap_or("")) {
                    out.push(self.chunk(req, json!({ "content": piece }), None));
                }
            }
        }
        out.push(self.chunk(req, json!({}), Some(self.finish_reason())));
        out
    }

    fn usage_chunk(&self, req: &ChatRequest) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": crate::provider::unix_now(),
            "model": req.model,
            "choices": [],
            "usage": self.usage(),
        })
    }
}

/// The tool to call: the one `tool_choice` names, else the first function tool.
fn chosen_tool(req: &ChatRequest) -> Option<String> {
    match &req.tool_choice {
        Some(ChatCompletionToolChoiceOption::ToolChoiceMode(ToolChoiceMode::None)) => return None,
        Some(ChatCompletionToolChoiceOption::ChatCompletionNamedToolChoice(
            ChatCompletionNamedToolChoice::Function { function },
        )) => return Some(function.name.clone()),
        _ => {}
    }
    req.tools.as_ref()?.iter().find_map(|t| t.function.as_ref().map(|f| f.name.clone()))
}

/// Arguments for a call to `name` that its JSON Schema accepts: each required property (or,
/// with none required, the first) with a value of its type, strings carrying the user's last
/// words; `{"input": ...}` for a tool that declares no properties.
fn arguments_for(req: &ChatRequest, name: &str, text: &str) -> Value {
    let parameters = req
        .tools
        .iter()
        .flatten()
        .filter_map(|t| t.function.as_ref())
        .find(|f| f.name == name)
        .and_then(|f| f.parameters.as_ref())
        .map(|p| Value::Object(p.clone()));
    let Some(properties) =
        parameters.as_ref().and_then(|p| p.get("properties")).and_then(Value::as_object).filter(|p| !p.is_empty())
    else {
        return json!({ "input": text });
    };
    let required: Vec<&str> = parameters
        .as_ref()
        .and_then(|p| p.get("required"))
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let chosen: Vec<&String> = if required.is_empty() {
        properties.keys().take(1).collect()
    } else {
        properties.keys().filter(|k| required.contains(&k.as_str())).collect()
    };
    let mut out = serde_json::Map::new();
    for key in chosen {
        let schema = &properties[key];
        let value = match schema.get("enum").and_then(Value::as_array).and_then(|e| e.first()) {
            Some(first) => first.clone(),
            None => match schema.get("type").and_then(Value::as_str) {
                Some("integer" | "number") => json!(1),
                Some("boolean") => json!(true),
                Some("array") => json!([]),
                Some("object") => json!({}),
                _ => json!(text),
            },
        };
        out.insert(key.clone(), value);
    }
    Value::Object(out)
}

fn embeddings(req: &EmbeddingRequest) -> RawResponse {
    let texts: Vec<String> = match &req.input {
        EmbeddingInput::Text(text) => vec![text.clone()],
        EmbeddingInput::Texts(texts) => texts.clone(),
        EmbeddingInput::Tokens(tokens) => vec![format!("{tokens:?}")],
        EmbeddingInput::TokenBatches(batches) => batches.iter().map(|t| format!("{t:?}")).collect(),
    };
    let dims = req.dimensions.and_then(|d| usize::try_from(d).ok()).filter(|d| (1..=4096).contains(d)).unwrap_or(8);
    let base64 = req.encoding_format.as_ref().map(|f| f.as_str()) == Some("base64");
    let data: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let vector = unit_vector(text, dims);
            let embedding = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(vector)
            };
            json!({ "object": "embedding", "index": index, "embedding": embedding })
        })
        .collect();
    let tokens: u64 = texts.iter().map(|t| words(t)).sum();
    json_response(
        StatusCode::OK,
        &json!({
            "object": "list",
            "data": data,
            "model": req.model,
            "usage": { "prompt_tokens": tokens, "total_tokens": tokens },
        }),
    )
}

fn models() -> RawResponse {
    let data: Vec<Value> =
        MODELS.iter().map(|m| json!({ "id": m, "object": "model", "created": 0, "owned_by": "switchyard" })).collect();
    json_response(StatusCode::OK, &json!({ "object": "list", "data": data }))
}

fn error(status: StatusCode, kind: &str, code: Option<&str>, message: &str) -> RawResponse {
    let mut response =
        json_response(status, &json!({ "error": { "message": message, "type": kind, "param": null, "code": code } }));
    if matches!(status.as_u16(), 429 | 503) {
        response.headers.insert("retry-after", HeaderValue::from_static("1"));
    }
    response
}

fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        429 => "rate_limit_error",
        500..=599 => "server_error",
        _ => "invalid_request_error",
    }
}

fn json_response(status: StatusCode, body: &Value) -> RawResponse {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    RawResponse::full(status, headers, Bytes::from(body.to_string()))
}

fn words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// "a b c" -> ["a", " b", " c"]: pieces that concatenate back to the text.
fn split_words(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if c == ' ' && i > start {
            pieces.push(&text[start..i]);
            start = i;
        }
    }
    if start < text.len() {
        pieces.push(&text[start..]);
    }
    pieces
}

/// Splits at character boundaries into about `n` pieces.
fn split_in(text: &str, n: usize) -> Vec<&str> {
    let step = text.len().div_ceil(n.max(1)).max(1);
    let mut pieces = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let mut end = (start + step).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        pieces.push(&text[start..end]);
        start = end;
    }
    pieces
}

/// A deterministic unit vector for a text.
fn unit_vector(text: &str, dims: usize) -> Vec<f32> {
    let seed = fnv1a(text.as_bytes());
    let raw: Vec<f32> = (0..dims as u64)
        .map(|i| {
            let h = fnv1a(&(seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_le_bytes());
            (h >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect();
    let norm = raw.iter().map(|x| x * x).sum::<f32>().sqrt().max(f32::MIN_POSITIVE);
    raw.iter().map(|x| x / norm).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_pieces_concatenate_back() {
        for text in ["Hello there  world", "", "one", " lead", "ünï cödé"] {
            assert_eq!(split_words(text).concat(), text);
            assert_eq!(split_in(text, 3).concat(), text);
        }
    }

    #[test]
    fn vectors_are_unit_length_and_deterministic() {
        let a = unit_vector("hello", 16);
        assert_eq!(a, unit_vector("hello", 16));
        assert_ne!(a, unit_vector("world", 16));
        let norm: f32 = a.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-4, "{norm}");
    }
}
