//! An OpenAI chat request as a Gemini `generateContent` request (AI Studio and Vertex AI;
//! embeddings are in `embed.rs`).
//!
//! System and developer messages become `systemInstruction`; user turns keep the role `user`
//! and assistant turns become `model`; tool results become `functionResponse` parts in a user
//! turn (the function's name found from the call they answer); consecutive turns of one role
//! are merged. Images are `inlineData` (data URLs) or `fileData` (other URLs; LiteLLM
//! downloads them instead). Tool parameter schemas are reduced to the JSON Schema subset
//! Gemini accepts, with what was dropped said in a debug log. Parameters Gemini cannot express
//! are `Unsupported` (or dropped with `drop_params`).

use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::ChatRequest;
use crate::error::{Error, Result};
use crate::provider::convert::{Thinking, parse_arguments, thinking_budget};
use crate::provider::params::refuse_or_drop;
use crate::provider::{Ctx, ProviderKind};
use crate::spec::ext::{ChatMessage, ContentPart, MessageContent};
use crate::spec::gemini::{
    Blob, Content, FileData, FunctionCall, FunctionCallingConfig, FunctionCallingMode, FunctionDeclaration,
    FunctionResponse, GenerateContentRequest, GenerationConfig, Part, ThinkingConfig, Tool, ToolConfig,
};
use crate::spec::openai::{
    ChatCompletionNamedToolChoice, ChatCompletionToolChoiceOption, ReasoningEffort, ResponseFormat, StopConfiguration,
    ToolChoiceMode, ToolType,
};

pub(super) fn unsupported(kind: ProviderKind, feature: impl Into<String>) -> Error {
    Error::Unsupported { provider: kind, feature: feature.into() }
}

/// The request body for a chat completion (`...:generateContent` or
/// `...:streamGenerateContent?alt=sse`).
pub fn chat_body(kind: ProviderKind, req: &ChatRequest, ctx: &Ctx<'_>) -> Result<Bytes> {
    let body = to_gemini(kind, req, ctx)?;
    let bytes = serde_json::to_vec(&body).map_err(|e| Error::invalid(e.to_string(), None))?;
    Ok(Bytes::from(bytes))
}

/// The Gemini request for an OpenAI request.
pub fn to_gemini(kind: ProviderKind, req: &ChatRequest, ctx: &Ctx<'_>) -> Result<GenerateContentRequest> {
    check_unsupported(kind, req, ctx.drop_params)?;
    let mut extra = req.extra.clone();
    let top_k = match extra.remove("top_k") {
        None => None,
        Some(v) => Some(v.as_i64().ok_or_else(|| Error::invalid("`top_k` must be an integer", Some("top_k")))?),
    };
    let safety = extra.remove("safety_settings").or_else(|| extra.remove("safetySettings"));
    let cached = extra.remove("cached_content").or_else(|| extra.remove("cachedContent"));
    let mut passthrough = Map::new();
    for (key, value) in extra {
        if key == "labels" {
            passthrough.insert(key, value);
        } else if ctx.drop_params {
            tracing::debug!(%kind, param = %key, "dropping a field Gemini does not take");
        } else {
            return Err(unsupported(kind, format!("the `{key}` parameter")));
        }
    }
    let (system, contents) = contents(kind, &req.messages)?;
    let (tools, tool_config) = tools(kind, req, ctx.drop_params)?;
    let mut config = GenerationConfig {
        temperature: req.temperature,
        top_p: req.top_p,
        top_k,
        max_output_tokens: req.max_completion_tokens.or(req.max_tokens),
        stop_sequences: req.stop.as_ref().map(|stop| match stop {
            StopConfiguration::String(s) => vec![s.clone()],
            StopConfiguration::Array(list) => list.clone(),
        }),
        candidate_count: req.n,
        seed: req.seed,
        presence_penalty: req.presence_penalty,
        frequency_penalty: req.frequency_penalty,
        thinking_config: thinking(kind, req.reasoning_effort.as_ref(), ctx.drop_params)?,
        ..unset_config()
    };
    match &req.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(ResponseFormat::JsonObject) => config.response_mime_type = Some("application/json".into()),
        Some(ResponseFormat::JsonSchema(format)) => {
            config.response_mime_type = Some("application/json".into());
            config.response_schema = format.schema.as_ref().map(|s| sanitize_schema(kind, s));
        }
    }
    let safety_settings = match safety {
        None => None,
        Some(Value::Array(items)) => Some(
            items
                .into_iter()
                .map(|v| match v {
                    Value::Object(map) => Ok(map),
                    _ => Err(Error::invalid("`safety_settings` must be a list of objects", Some("safety_settings"))),
                })
                .collect::<Result<Vec<_>>>()?,
        ),
        Some(_) => return Err(Error::invalid("`safety_settings` must be a list of objects", Some("safety_settings"))),
    };
    let cached_content = match cached {
        None => None,
        Some(Value::String(name)) => Some(name),
        Some(_) => return Err(Error::invalid("`cached_content` must be a string", Some("cached_content"))),
    };
    let config_is_empty = config == unset_config();
    Ok(GenerateContentRequest {
        contents,
        system_instruction: system,
        tools,
        tool_config,
        generation_config: (!config_is_empty).then_some(config),
        safety_settings,
        cached_content,
        extra: passthrough,
    })
}

fn unset_config() -> GenerationConfig {
    GenerationConfig {
        temperature: None,
        top_p: None,
        top_k: None,
        max_output_tokens: None,
        stop_sequences: None,
        candidate_count: None,
        seed: None,
        presence_penalty: None,
        frequency_penalty: None,
        response_mime_type: None,
        response_schema: None,
        response_modalities: None,
        thinking_config: None,
        extra: Map::new(),
    }
}

/// The OpenAI parameters of [`super::UNSUPPORTED_PARAMS`] the request asks for: refused, or dropped.
fn check_unsupported(kind: ProviderKind, req: &ChatRequest, drop_params: bool) -> Result<()> {
    refuse_or_drop(req, super::UNSUPPORTED_PARAMS, drop_params, kind)
}

/// `reasoning_effort` as a thinking budget ([`thinking_budget`]'s levels, but `max` is
/// Gemini 2.5's largest budget, 24576); `none` turns thinking off where the model allows it.
fn thinking(kind: ProviderKind, effort: Option<&ReasoningEffort>, drop_params: bool) -> Result<Option<ThinkingConfig>> {
    let budget = match (effort, thinking_budget(effort, drop_params, kind)?) {
        (_, Thinking::Unset) => return Ok(None),
        (_, Thinking::Off) => 0,
        (Some(ReasoningEffort::Max), _) => 24576,
        (_, Thinking::Budget(budget)) => budget,
    };
    Ok(Some(ThinkingConfig {
        thinking_budget: Some(budget),
        include_thoughts: Some(budget > 0),
        thinking_level: None,
        extra: Map::new(),
    }))
}

fn tools(kind: ProviderKind, req: &ChatRequest, drop_params: bool) -> Result<(Option<Vec<Tool>>, Option<ToolConfig>)> {
    let tools = match &req.tools {
        None => None,
        Some(list) if list.is_empty() => None,
        Some(list) => {
            let declarations = list
                .iter()
                .map(|tool| match (&tool.type_, &tool.function) {
                    (ToolType::Function, Some(f)) => Ok(FunctionDeclaration {
                        name: f.name.clone(),
                        description: f.description.clone(),
                        parameters: f
                            .parameters
                            .as_ref()
                            .filter(|p| {
                                p.get("properties").is_some_and(|v| v.as_object().is_some_and(|o| !o.is_empty()))
                            })
                            .map(|p| sanitize_schema(kind, p)),
                        extra: Map::new(),
                    }),
                    _ => Err(unsupported(kind, format!("`{}` tools", tool.type_))),
                })
                .collect::<Result<Vec<_>>>()?;
            Some(vec![Tool { function_declarations: Some(declarations), extra: Map::new() }])
        }
    };
    let config = |mode: FunctionCallingMode, names: Option<Vec<String>>| {
        Some(ToolConfig {
            function_calling_config: Some(FunctionCallingConfig {
                mode: Some(mode),
                allowed_function_names: names,
                extra: Map::new(),
            }),
            extra: Map::new(),
        })
    };
    let refuse = |what: String| {
        if drop_params {
            tracing::debug!(%kind, choice = %what, "dropping a tool_choice Gemini cannot express");
            Ok(None)
        } else {
            Err(unsupported(kind, what))
        }
    };
    let tool_config = match &req.tool_choice {
        None => None,
        Some(ChatCompletionToolChoiceOption::ToolChoiceMode(mode)) => match mode {
            ToolChoiceMode::Auto => config(FunctionCallingMode::Auto, None),
            ToolChoiceMode::None => config(FunctionCallingMode::None, None),
            ToolChoiceMode::Required => config(FunctionCallingMode::Any, None),
            ToolChoiceMode::Other(other) => refuse(format!("tool_choice `{other}`"))?,
        },
        Some(ChatCompletionToolChoiceOption::ChatCompletionNamedToolChoice(named)) => match named {
            ChatCompletionNamedToolChoice::Function { function } => {
                config(FunctionCallingMode::Any, Some(vec![function.name.clone()]))
            }
            ChatCompletionNamedToolChoice::Custom { .. } => refuse("tool_choice `custom`".into())?,
            ChatCompletionNamedToolChoice::AllowedTools { .. } => refuse("tool_choice `allowed_tools`".into())?,
        },
    };
    Ok((tools, tool_config))
}

/// The system instruction and the conversation.
fn contents(kind: ProviderKind, messages: &[ChatMessage]) -> Result<(Option<Content>, Vec<Content>)> {
    let mut system: Vec<Part> = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Part>)> = Vec::new();
    // Tool results name their call by id; Gemini wants the function's name.
    let mut call_names: HashMap<&str, &str> = HashMap::new();
    for (i, message) in messages.iter().enumerate() {
        let (role, parts) = match message {
            ChatMessage::System(m) => {
                system.extend(text_parts(kind, &m.content, i)?);
                continue;
            }
            ChatMessage::Developer(m) => {
                system.extend(text_parts(kind, &m.content, i)?);
                continue;
            }
            ChatMessage::User(m) => ("user", content_parts(kind, &m.content)?),
            ChatMessage::Assistant(m) => {
                let mut parts = match m.content.as_ref() {
                    Some(content) => content_parts(kind, content)?,
                    None => Vec::new(),
                };
                for (j, call) in m.tool_calls.iter().flatten().enumerate() {
                    let function =
                        call.function.as_ref().ok_or_else(|| unsupported(kind, "custom tool calls in the history"))?;
                    call_names.insert(&call.id, &function.name);
                    let args = parse_arguments(&function.arguments).map_err(|why| {
                        Error::invalid(
                            format!("messages[{i}].tool_calls[{j}].function.arguments {why}"),
                            Some("messages"),
                        )
                    })?;
                    let mut part = empty_part();
                    part.function_call = Some(FunctionCall {
                        id: None,
                        name: function.name.clone(),
                        args: Some(args),
                        extra: Map::new(),
                    });
                    // Gemini's thought signature on a call must go back with it.
                    part.thought_signature =
                        call.extra.get("thought_signature").and_then(Value::as_str).map(str::to_string);
                    parts.push(part);
                }
                ("model", parts)
            }
            ChatMessage::Tool(m) => {
                let name = call_names.get(m.tool_call_id.as_str()).ok_or_else(|| {
                    Error::invalid(
                        format!("messages[{i}]: tool_call_id `{}` answers no earlier tool call", m.tool_call_id),
                        Some("messages"),
                    )
                })?;
                let text = m.content.text();
                // A JSON object result is the response itself; anything else is wrapped.
                let response = match serde_json::from_str::<Value>(&text) {
                    Ok(Value::Object(map)) => map,
                    _ => {
                        let mut wrapped = Map::new();
                        wrapped.insert("content".into(), Value::String(text.into_owned()));
                        wrapped
                    }
                };
                let mut part = empty_part();
                part.function_response =
                    Some(FunctionResponse { id: None, name: (*name).to_string(), response, extra: Map::new() });
                ("user", vec![part])
            }
            ChatMessage::Function(_) => return Err(unsupported(kind, "`function` messages (use tool messages)")),
        };
        if parts.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last, last_parts)) if *last == role => last_parts.extend(parts),
            _ => turns.push((role, parts)),
        }
    }
    let system = (!system.is_empty()).then(|| Content { role: None, parts: Some(system), extra: Map::new() });
    let turns = turns
        .into_iter()
        .map(|(role, parts)| Content { role: Some(role.to_string()), parts: Some(parts), extra: Map::new() })
        .collect();
    Ok((system, turns))
}

pub(crate) fn empty_part() -> Part {
    Part {
        text: None,
        thought: None,
        thought_signature: None,
        inline_data: None,
        file_data: None,
        function_call: None,
        function_response: None,
        extra: Map::new(),
    }
}

pub(super) fn text_part(text: String) -> Part {
    Part { text: Some(text), ..empty_part() }
}

fn text_parts(kind: ProviderKind, content: &MessageContent, index: usize) -> Result<Vec<Part>> {
    match content {
        MessageContent::Text(text) => Ok(vec![text_part(text.clone())]),
        MessageContent::Parts(parts) => parts
            .iter()
            .map(|part| match part {
                ContentPart::Text(t) => Ok(text_part(t.text.clone())),
                other => Err(Error::invalid(
                    format!(
                        "messages[{index}]: {kind}'s system instruction takes text only, not `{}`",
                        other.type_name()
                    ),
                    Some("messages"),
                )),
            })
            .collect(),
    }
}

fn content_parts(kind: ProviderKind, content: &MessageContent) -> Result<Vec<Part>> {
    match content {
        MessageContent::Text(text) if text.is_empty() => Ok(Vec::new()),
        MessageContent::Text(text) => Ok(vec![text_part(text.clone())]),
        MessageContent::Parts(parts) => parts.iter().map(|p| part(kind, p)).collect(),
    }
}

fn part(kind: ProviderKind, part: &ContentPart) -> Result<Part> {
    Ok(match part {
        ContentPart::Text(t) => text_part(t.text.clone()),
        ContentPart::Refusal(r) => text_part(r.refusal.clone()),
        ContentPart::ImageUrl(image) => media(&image.image_url.url, "image/jpeg")?,
        ContentPart::InputAudio(audio) => Part {
            inline_data: Some(Blob {
                mime_type: format!("audio/{}", audio.input_audio.format),
                data: audio.input_audio.data.clone(),
                extra: Map::new(),
            }),
            ..empty_part()
        },
        ContentPart::File(file) => match (&file.file.file_data, &file.file.file_id) {
            (Some(data), _) => media(data, "application/pdf")?,
            (None, Some(id)) => Part {
                file_data: Some(FileData {
                    mime_type: Some(guess_mime(file.file.filename.as_deref().unwrap_or(id), "application/pdf").into()),
                    file_uri: id.clone(),
                    extra: Map::new(),
                }),
                ..empty_part()
            },
            (None, None) => return Err(Error::invalid("a file part needs file_data or file_id", Some("messages"))),
        },
        ContentPart::Other(_) => return Err(unsupported(kind, format!("`{}` content parts", part.type_name()))),
    })
}

/// A data URL as inline data; any other URL (https, gs://, a Files API URI) as file data.
fn media(url: &str, default_mime: &str) -> Result<Part> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest
            .split_once(',')
            .ok_or_else(|| Error::invalid("a data URL must look like data:<type>;base64,<data>", Some("messages")))?;
        let mime = meta
            .strip_suffix(";base64")
            .ok_or_else(|| Error::invalid("only base64 data URLs are supported", Some("messages")))?;
        return Ok(Part {
            inline_data: Some(Blob { mime_type: mime.to_string(), data: data.to_string(), extra: Map::new() }),
            ..empty_part()
        });
    }
    Ok(Part {
        file_data: Some(FileData {
            mime_type: Some(guess_mime(url, default_mime).to_string()),
            file_uri: url.to_string(),
            extra: Map::new(),
        }),
        ..empty_part()
    })
}

/// A media type from a URL's extension (Gemini needs one for file data).
fn guess_mime<'a>(url: &str, default: &'a str) -> &'a str {
    let path = url.split(['?', '#']).next().unwrap_or(url).to_ascii_lowercase();
    let ext = path.rsplit('.').next().unwrap_or("");
    match ext {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "pdf" => "application/pdf",
        "mp3" => "audio/mp3",
        "wav" => "audio/wav",
        "mp4" => "video/mp4",
        "txt" => "text/plain",
        _ => default,
    }
}

/// JSON Schema keywords Gemini's schema subset accepts.
const SCHEMA_KEYWORDS: &[&str] = &[
    "type",
    "format",
    "description",
    "nullable",
    "enum",
    "items",
    "properties",
    "required",
    "anyOf",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "propertyOrdering",
    "title",
    "default",
    "example",
];

/// A JSON Schema reduced to what Gemini accepts: local `$ref`s inlined, `type: [x, "null"]`
/// as `nullable`, `const` as a one-value `enum`, `oneOf` as `anyOf`; other keywords
/// (`additionalProperties`, `$schema`, `strict`, ...) dropped and named in a debug log.
pub fn sanitize_schema(kind: ProviderKind, schema: &Map<String, Value>) -> Map<String, Value> {
    let defs = schema
        .get("$defs")
        .or_else(|| schema.get("definitions"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut dropped = BTreeSet::new();
    let out = sanitize(schema, &defs, 0, &mut dropped);
    if !dropped.is_empty() {
        tracing::debug!(%kind, ?dropped, "dropped JSON Schema keywords Gemini does not accept");
    }
    out
}

fn sanitize(
    schema: &Map<String, Value>,
    defs: &Map<String, Value>,
    depth: usize,
    dropped: &mut BTreeSet<String>,
) -> Map<String, Value> {
    if depth > 16 {
        dropped.insert("(nesting deeper than 16)".into());
        return Map::new();
    }
    if let Some(target) = schema.get("$ref").and_then(Value::as_str) {
        let name = target.rsplit('/').next().unwrap_or("");
        return match defs.get(name).and_then(Value::as_object) {
            Some(def) => sanitize(def, defs, depth + 1, dropped),
            None => {
                dropped.insert(format!("$ref {target}"));
                Map::new()
            }
        };
    }
    let mut out = Map::new();
    for (key, value) in schema {
        match key.as_str() {
            "type" => match value {
                Value::Array(types) => {
                    let mut concrete = types.iter().filter(|t| t.as_str() != Some("null"));
                    if let Some(first) = concrete.next() {
                        out.insert("type".into(), first.clone());
                    }
                    if concrete.next().is_some() {
                        dropped.insert("type with several non-null types".into());
                    }
                    if types.len() > 1 && types.iter().any(|t| t.as_str() == Some("null")) {
                        out.insert("nullable".into(), json!(true));
                    }
                }
                other => {
                    out.insert("type".into(), other.clone());
                }
            },
            "const" => {
                out.insert("enum".into(), json!([value]));
            }
            "properties" => {
                let props = value
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(name, prop)| {
                        let sanitized =
                            prop.as_object().map(|p| sanitize(p, defs, depth + 1, dropped)).unwrap_or_default();
                        (name.clone(), Value::Object(sanitized))
                    })
                    .collect();
                out.insert(key.clone(), Value::Object(props));
            }
            "items" => {
                if let Some(items) = value.as_object() {
                    out.insert(key.clone(), Value::Object(sanitize(items, defs, depth + 1, dropped)));
                }
            }
            "anyOf" | "oneOf" => {
                let variants: Vec<Value> = value
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_object)
                    .map(|v| Value::Object(sanitize(v, defs, depth + 1, dropped)))
                    .collect();
                out.insert("anyOf".into(), Value::Array(variants));
            }
            k if SCHEMA_KEYWORDS.contains(&k) => {
                out.insert(key.clone(), value.clone());
            }
            other => {
                dropped.insert(other.to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_lose_what_gemini_rejects_and_keep_their_meaning() {
        let Value::Object(schema) = json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "unit": {"type": ["string", "null"], "enum": ["c", "f"]},
                "kind": {"const": "weather"},
                "place": {"$ref": "#/$defs/Place"},
                "tags": {"type": "array", "items": {"type": "string", "examples": ["a"]}},
                "either": {"oneOf": [{"type": "string"}, {"type": "integer"}]}
            },
            "required": ["place"],
            "$defs": {"Place": {"type": "object", "properties": {"city": {"type": "string"}}, "additionalProperties": false}}
        }) else {
            unreachable!()
        };
        let out = sanitize_schema(ProviderKind::Gemini, &schema);
        assert_eq!(
            Value::Object(out),
            json!({
                "type": "object",
                "properties": {
                    "unit": {"type": "string", "nullable": true, "enum": ["c", "f"]},
                    "kind": {"enum": ["weather"]},
                    "place": {"type": "object", "properties": {"city": {"type": "string"}}},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "either": {"anyOf": [{"type": "string"}, {"type": "integer"}]}
                },
                "required": ["place"]
            })
        );
    }

    #[test]
    fn urls_become_inline_or_file_data_with_a_media_type() -> Result<()> {
        let inline = media("data:image/png;base64,AAAA", "image/jpeg")?;
        assert_eq!(inline.inline_data.map(|b| b.mime_type), Some("image/png".to_string()));
        let file = media("https://example.com/cat.webp?x=1", "image/jpeg")?;
        assert_eq!(file.file_data.and_then(|f| f.mime_type), Some("image/webp".to_string()));
        let gcs = media("gs://bucket/scan", "image/jpeg")?;
        assert_eq!(gcs.file_data.map(|f| f.file_uri), Some("gs://bucket/scan".to_string()));
        assert!(media("data:image/png,raw", "image/jpeg").is_err());
        Ok(())
    }
}
