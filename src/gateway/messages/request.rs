//! Anthropic's Messages request as the OpenAI-shaped request the router speaks.
//!
//! What cannot be translated without changing the answer (a server tool, an MCP server, a
//! code-execution container, a block type this version does not know, a shape it cannot
//! read, such as a `tool_choice` type newer than it) is noted, not refused, by the lenient
//! translation: the request may still go to an Anthropic upstream as it came, and only a
//! provider of another format refuses it, naming what it cannot take.

use serde_json::{Map, Value, json};

use super::super::ApiFailure;
use super::super::envelope::shown;
use crate::ChatRequest;

fn bad(message: impl Into<String>) -> ApiFailure {
    ApiFailure::bad_request(message)
}

/// Anthropic's request as the OpenAI-shaped request the router speaks; what it cannot carry
/// without changing the answer is an error naming it.
pub fn to_openai(body: &Value) -> Result<ChatRequest, ApiFailure> {
    let Lenient { request, untranslatable, .. } = to_openai_lenient(body)?;
    match untranslatable {
        Some(what) => Err(bad(format!("{what} cannot be translated for this model's provider"))),
        None => Ok(request),
    }
}

/// The first thing a translation had to leave out whose loss would change the answer, and
/// the first of them that is content the client sent (text the guardrails would not see).
#[derive(Default)]
struct Untranslatable(Option<String>, Option<String>);

impl Untranslatable {
    fn note(&mut self, what: impl FnOnce() -> String) {
        if self.0.is_none() {
            self.0 = Some(what());
        }
    }

    /// As [`Self::note`], for content the translation could not read.
    fn unread(&mut self, what: impl FnOnce() -> String) {
        if self.1.is_none() {
            let what = what();
            self.note(|| what.clone());
            self.1 = Some(what);
        }
    }
}

/// A lenient translation: the request, the first thing it could not carry, and the first
/// content it could not read (which a guardrail therefore could not check).
#[derive(Debug)]
pub struct Lenient {
    /// The OpenAI-shaped request.
    pub request: ChatRequest,
    /// What only an Anthropic-format upstream can take.
    pub untranslatable: Option<String>,
    /// Content the translation did not read.
    pub unread: Option<String>,
}

/// Anthropic's request as the OpenAI-shaped request the router speaks, and the first thing
/// left out of it whose loss would change the answer (what only Anthropic's side can do):
/// the request can still be sent as it came to an Anthropic upstream.
pub fn to_openai_lenient(body: &Value) -> Result<Lenient, ApiFailure> {
    let mut lost = Untranslatable::default();
    let obj = body.as_object().ok_or_else(|| bad("the request body must be a JSON object"))?;
    let mut out = Map::new();
    out.insert("model".into(), obj.get("model").cloned().unwrap_or(Value::Null));
    out.insert("messages".into(), Value::Array(messages(obj, &mut lost)));
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
    // `metadata.user_id` is Anthropic's abuse-tracking id: a hint. It is not made OpenAI's
    // `user` (deprecated there; Gemini, Bedrock and Cohere refuse it, so Claude Code's
    // requests would fail on them); it goes to Anthropic upstreams with the body as it came.
    if obj.get("stream").and_then(Value::as_bool) == Some(true) {
        out.insert("stream".into(), Value::Bool(true));
        out.insert("stream_options".into(), json!({"include_usage": true}));
    }
    if let Some(tools) = obj.get("tools").and_then(Value::as_array) {
        let tools: Vec<Value> = tools.iter().filter_map(|t| tool(t, &mut lost)).collect();
        out.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = obj.get("tool_choice") {
        tool_choice(choice, &mut out, &mut lost);
    }
    reasoning_and_format(obj, &mut out);
    check_untranslated(obj, &mut lost);
    let request = serde_json::from_value(Value::Object(out)).map_err(|e| bad(format!("invalid request: {e}")))?;
    Ok(Lenient { request, untranslatable: lost.0, unread: lost.1 })
}

/// `system` and `messages` as OpenAI's messages.
fn messages(obj: &Map<String, Value>, lost: &mut Untranslatable) -> Vec<Value> {
    let mut messages = Vec::new();
    match obj.get("system") {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) => messages.push(json!({"role": "system", "content": text})),
        Some(Value::Array(blocks)) => {
            let parts = text_parts(blocks, "`system`", lost);
            messages.push(json!({"role": "system", "content": parts}));
        }
        Some(_) => lost.unread(|| "`system` that is neither a string nor a list of blocks".into()),
    }
    let listed = match obj.get("messages") {
        Some(Value::Array(listed)) => listed.as_slice(),
        None => &[],
        Some(_) => {
            lost.unread(|| "`messages` that is not a list".into());
            &[]
        }
    };
    for (i, message) in listed.iter().enumerate() {
        let role = message.get("role").and_then(Value::as_str).unwrap_or_default();
        match (role, message.get("content")) {
            (_, Some(Value::String(text))) => messages.push(json!({"role": role, "content": text})),
            ("user", Some(Value::Array(blocks))) => user_blocks(blocks, i, &mut messages, lost),
            // A system-role message among the messages (Claude Code sends them) stays a
            // system message where it stands; providers with one system prompt join it there.
            ("system", Some(Value::Array(blocks))) => {
                let parts = text_parts(blocks, &format!("messages[{i}]"), lost);
                messages.push(json!({"role": "system", "content": parts}));
            }
            ("assistant", Some(Value::Array(blocks))) => messages.push(assistant_blocks(blocks, i, lost)),
            _ => lost.unread(|| {
                format!("messages[{i}]: a `{}` message with that content (not user, assistant or system, with string or block content)", shown(role))
            }),
        }
    }
    messages
}

/// `tool_choice` as OpenAI's `tool_choice` and `parallel_tool_calls`.
fn tool_choice(choice: &Value, out: &mut Map<String, Value>, lost: &mut Untranslatable) {
    let kind = choice.get("type").and_then(Value::as_str).unwrap_or_default();
    let mapped = match kind {
        "auto" => json!("auto"),
        "any" => json!("required"),
        "none" => json!("none"),
        "tool" => json!({"type": "function", "function": {"name": choice.get("name").cloned().unwrap_or(Value::Null)}}),
        other => {
            lost.note(|| format!("tool_choice type `{}` (not one of auto, any, tool, none)", shown(other)));
            Value::Null
        }
    };
    if !mapped.is_null() {
        out.insert("tool_choice".into(), mapped);
    }
    if choice.get("disable_parallel_tool_use").and_then(Value::as_bool) == Some(true) {
        out.insert("parallel_tool_calls".into(), Value::Bool(false));
    }
}

/// `thinking` and `output_config` as OpenAI's `reasoning_effort` and `response_format`
/// (an explicit effort wins over one read from a thinking budget).
fn reasoning_and_format(obj: &Map<String, Value>, out: &mut Map<String, Value>) {
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

/// Notes the fields a translated call cannot honour; every other field the translation
/// does not read is a hint (`context_management`, `service_tier`, fields newer than this
/// version) and is dropped, each named in a debug log.
fn check_untranslated(obj: &Map<String, Value>, lost: &mut Untranslatable) {
    for key in obj.keys().filter(|k| !TRANSLATED.contains(&k.as_str())) {
        if REFUSED.contains(&key.as_str()) {
            lost.note(|| format!("`{key}` (it runs on Anthropic's side)"));
        } else {
            tracing::debug!(field = %shown(key), "dropping a Messages field the translation does not carry");
        }
    }
}

/// A text block as a text part; `None` for a block that is not text.
fn text_part(block: &Value) -> Option<Value> {
    let text = block.get("text").and_then(Value::as_str)?;
    let mut part = json!({"type": "text", "text": text});
    if let Some(cc) = block.get("cache_control") {
        part["cache_control"] = cc.clone();
    }
    Some(part)
}

/// The text blocks of a system prompt as text parts; any other block is noted.
fn text_parts(blocks: &[Value], at: &str, lost: &mut Untranslatable) -> Vec<Value> {
    let mut parts = Vec::with_capacity(blocks.len());
    for block in blocks {
        match text_part(block) {
            Some(part) => parts.push(part),
            None => lost.unread(|| {
                let kind = block.get("type").and_then(Value::as_str).unwrap_or("untyped");
                format!("{at}: a `{}` block (only text blocks are translated there)", shown(kind))
            }),
        }
    }
    parts
}

fn user_blocks(blocks: &[Value], i: usize, messages: &mut Vec<Value>, lost: &mut Untranslatable) {
    let mut parts = Vec::new();
    for block in blocks {
        match block.get("type").and_then(Value::as_str).unwrap_or_default() {
            "text" => match text_part(block) {
                Some(part) => parts.push(part),
                None => lost.note(|| format!("messages[{i}]: a text block without `text`")),
            },
            "image" => {
                let source = block.get("source").unwrap_or(&Value::Null);
                let url = match source.get("type").and_then(Value::as_str) {
                    Some("base64") => format!(
                        "data:{};base64,{}",
                        source.get("media_type").and_then(Value::as_str).unwrap_or("image/png"),
                        source.get("data").and_then(Value::as_str).unwrap_or_default()
                    ),
                    Some("url") => source.get("url").and_then(Value::as_str).unwrap_or_default().to_string(),
                    other => {
                        let kind = shown(other.unwrap_or("none"));
                        lost.note(|| format!("messages[{i}]: an image with a `{kind}` source"));
                        continue;
                    }
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
                    other => {
                        let kind = shown(other.unwrap_or("none"));
                        lost.note(|| format!("messages[{i}]: a document with a `{kind}` source"));
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
                        lost.unread(|| {
                            format!("messages[{i}]: tool_result content that is neither a string nor blocks")
                        });
                        Value::String(String::new())
                    }
                };
                let id = block.get("tool_use_id").cloned().unwrap_or(Value::Null);
                messages.push(json!({"role": "tool", "tool_call_id": id, "content": content}));
            }
            other => lost.unread(|| format!("messages[{i}]: a user `{}` block", shown(other))),
        }
    }
    if !parts.is_empty() {
        messages.push(json!({"role": "user", "content": parts}));
    }
}

fn assistant_blocks(blocks: &[Value], i: usize, lost: &mut Untranslatable) -> Value {
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
            other => lost.note(|| format!("messages[{i}]: an assistant `{}` block", shown(other))),
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
    message
}

/// A client tool as a function tool; a server tool (web search and the like) is noted.
fn tool(tool: &Value, lost: &mut Untranslatable) -> Option<Value> {
    if let Some(kind) = tool.get("type").and_then(Value::as_str).filter(|t| *t != "custom") {
        lost.note(|| format!("the server tool `{}` (it runs on Anthropic's side)", shown(kind)));
        return None;
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
    Some(out)
}
