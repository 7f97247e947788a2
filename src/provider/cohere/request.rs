//! An OpenAI chat request as a Cohere v2 chat request, and embeddings as a v2 embed request.
//!
//! Where this departs from LiteLLM 1.106.2, and why:
//! - `tool_choice` is sent (`required` -> `REQUIRED`, `none` -> `NONE`); LiteLLM accepts it
//!   and drops it. A named tool, which Cohere cannot name, is sent as `REQUIRED` with that
//!   tool alone: the model must call a tool, and only that one is offered.
//! - `response_format` is sent (`json_object`, with the schema for `json_schema`); LiteLLM
//!   refuses it.
//! - Parameters Cohere has no field for (`n` > 1, `logit_bias`, `logprobs` in OpenAI's shape,
//!   `parallel_tool_calls: false`, `user`, ...) are `Unsupported` naming them, or dropped with
//!   `drop_params`.
//!
//! An assistant turn's text beside its tool calls is Cohere's `tool_plan`; `top_p` is `p`,
//! `top_k` is `k`, `stop` is `stop_sequences`; `reasoning_effort` is a thinking budget.

use bytes::Bytes;
use serde_json::{Map, Value};

use super::unsupported;
use crate::error::{Error, Result};
use crate::provider::convert::{Thinking as Budget, embedding_texts, thinking_budget};
use crate::provider::params::refuse_or_drop;
use crate::provider::{Ctx, ProviderKind};
use crate::spec::cohere::{
    ChatMessage as CohereMessage, ChatMessageContent, ChatRequest as CohereRequest, ContentItem, ContentType,
    EmbedRequest, FunctionDefinition, ImageUrl, ResponseFormat as CohereFormat, ResponseFormatType, Role, Thinking,
    Tool, ToolCall, ToolCallFunction, ToolChoice,
};
use crate::spec::ext::{ChatMessage, ContentPart, MessageContent};
use crate::spec::openai::{
    ChatCompletionNamedToolChoice, ChatCompletionToolChoiceOption, EmbeddingEncodingFormat, ReasoningEffort,
    ResponseFormat, StopConfiguration, ToolChoiceMode, ToolType,
};
use crate::{ChatRequest, EmbeddingRequest};

/// Request fields a caller may add for Cohere, passed on as they are.
const PASSTHROUGH: &[&str] = &["documents", "safety_mode", "strict_tools", "citation_options", "priority"];

/// The request body for a chat completion.
pub fn chat_body(req: &ChatRequest, ctx: &Ctx<'_>) -> Result<Bytes> {
    serde_json::to_vec(&to_cohere(req, ctx)?).map(Bytes::from).map_err(|e| Error::invalid(e.to_string(), None))
}

/// The Cohere request for an OpenAI request.
pub fn to_cohere(req: &ChatRequest, ctx: &Ctx<'_>) -> Result<CohereRequest> {
    check_unsupported(req, ctx.drop_params)?;
    let mut extra = req.extra.clone();
    let k = match extra.remove("top_k") {
        None => None,
        Some(v) => Some(v.as_i64().ok_or_else(|| Error::invalid("`top_k` must be an integer", Some("top_k")))?),
    };
    let mut passthrough = Map::new();
    for (key, value) in extra {
        if PASSTHROUGH.contains(&key.as_str()) {
            passthrough.insert(key, value);
        } else if ctx.drop_params {
            tracing::debug!(param = %key, "dropping a field Cohere does not take");
        } else {
            return Err(unsupported(format!("the `{key}` parameter")));
        }
    }
    let documents = match passthrough.remove("documents") {
        None => None,
        Some(Value::Array(list)) => Some(
            list.into_iter()
                .map(|d| match d {
                    Value::Object(map) => Ok(map),
                    // Cohere takes plain strings as documents too.
                    Value::String(text) => Ok(Map::from_iter([("data".to_string(), Value::String(text))])),
                    _ => Err(Error::invalid("`documents` must be objects or strings", Some("documents"))),
                })
                .collect::<Result<Vec<_>>>()?,
        ),
        Some(_) => return Err(Error::invalid("`documents` must be a list", Some("documents"))),
    };
    let safety_mode = match passthrough.remove("safety_mode") {
        None => None,
        Some(Value::String(mode)) => Some(mode),
        Some(_) => return Err(Error::invalid("`safety_mode` must be a string", Some("safety_mode"))),
    };
    let strict_tools = match passthrough.remove("strict_tools") {
        None => None,
        Some(Value::Bool(b)) => Some(b),
        Some(_) => return Err(Error::invalid("`strict_tools` must be a boolean", Some("strict_tools"))),
    };
    let (tools, tool_choice) = tools(req, ctx.drop_params)?;
    Ok(CohereRequest {
        model: ctx.model.to_string(),
        messages: messages(&req.messages)?,
        tools,
        tool_choice,
        strict_tools,
        documents,
        response_format: response_format(req.response_format.as_ref()),
        safety_mode,
        max_tokens: req.max_completion_tokens.or(req.max_tokens),
        stop_sequences: req.stop.as_ref().map(|stop| match stop {
            StopConfiguration::String(s) => vec![s.clone()],
            StopConfiguration::Array(list) => list.clone(),
        }),
        temperature: req.temperature,
        seed: req.seed,
        frequency_penalty: req.frequency_penalty,
        presence_penalty: req.presence_penalty,
        k,
        p: req.top_p,
        logprobs: None,
        thinking: thinking_for(req.reasoning_effort.as_ref(), ctx.drop_params)?,
        stream: ctx.stream.then_some(true),
        extra: passthrough,
    })
}

/// The OpenAI parameters of [`super::UNSUPPORTED_PARAMS`] the request asks for: refused, or dropped.
fn check_unsupported(req: &ChatRequest, drop_params: bool) -> Result<()> {
    refuse_or_drop(req, super::UNSUPPORTED_PARAMS, drop_params, ProviderKind::Cohere)
}

fn response_format(format: Option<&ResponseFormat>) -> Option<CohereFormat> {
    match format {
        None | Some(ResponseFormat::Text) => None,
        Some(ResponseFormat::JsonObject) => {
            Some(CohereFormat { type_: ResponseFormatType::JsonObject, json_schema: None, extra: Map::new() })
        }
        Some(ResponseFormat::JsonSchema(format)) => Some(CohereFormat {
            type_: ResponseFormatType::JsonObject,
            json_schema: format.schema.clone(),
            extra: Map::new(),
        }),
    }
}

/// `reasoning_effort` as a thinking budget ([`thinking_budget`]'s levels); `none` turns
/// thinking off.
fn thinking_for(effort: Option<&ReasoningEffort>, drop_params: bool) -> Result<Option<Thinking>> {
    let (type_, token_budget) = match thinking_budget(effort, drop_params, ProviderKind::Cohere)? {
        Budget::Unset => return Ok(None),
        Budget::Off => ("disabled", None),
        Budget::Budget(budget) => ("enabled", Some(budget)),
    };
    Ok(Some(Thinking { type_: type_.into(), token_budget, extra: Map::new() }))
}

fn tools(req: &ChatRequest, drop_params: bool) -> Result<(Option<Vec<Tool>>, Option<ToolChoice>)> {
    let mut tools = match &req.tools {
        None => None,
        Some(list) => Some(
            list.iter()
                .map(|tool| {
                    let function = match (&tool.type_, &tool.function) {
                        (ToolType::Function, Some(f)) => f,
                        _ => return Err(unsupported(format!("`{}` tools", tool.type_))),
                    };
                    Ok(Tool {
                        type_: "function".into(),
                        function: FunctionDefinition {
                            name: function.name.clone(),
                            description: function.description.clone(),
                            parameters: function.parameters.clone(),
                            extra: Map::new(),
                        },
                        extra: Map::new(),
                    })
                })
                .collect::<Result<Vec<_>>>()?,
        ),
    };
    let refuse = |what: String| {
        if drop_params {
            tracing::debug!(choice = %what, "dropping a tool_choice Cohere cannot express");
            Ok(None)
        } else {
            Err(unsupported(what))
        }
    };
    let choice = match &req.tool_choice {
        None => None,
        Some(ChatCompletionToolChoiceOption::ToolChoiceMode(mode)) => match mode {
            ToolChoiceMode::Auto => None,
            ToolChoiceMode::Required => Some(ToolChoice::Required),
            ToolChoiceMode::None => Some(ToolChoice::None),
            ToolChoiceMode::Other(other) => refuse(format!("tool_choice `{other}`"))?,
        },
        Some(ChatCompletionToolChoiceOption::ChatCompletionNamedToolChoice(named)) => match named {
            ChatCompletionNamedToolChoice::Function { function } => {
                let list = tools.as_mut().ok_or_else(|| {
                    Error::invalid("tool_choice names a function but no tools are given", Some("tool_choice"))
                })?;
                list.retain(|t| t.function.name == function.name);
                if list.is_empty() {
                    return Err(Error::invalid(
                        format!("tool_choice names `{}`, which is not among the tools", function.name),
                        Some("tool_choice"),
                    ));
                }
                Some(ToolChoice::Required)
            }
            ChatCompletionNamedToolChoice::Custom { .. } => refuse("tool_choice `custom`".into())?,
            ChatCompletionNamedToolChoice::AllowedTools { .. } => refuse("tool_choice `allowed_tools`".into())?,
        },
    };
    Ok((tools, choice))
}

fn message(role: Role) -> CohereMessage {
    CohereMessage { role, content: None, tool_plan: None, tool_calls: None, tool_call_id: None, extra: Map::new() }
}

fn text_item(text: &str) -> ContentItem {
    ContentItem {
        type_: ContentType::Text,
        text: Some(text.to_string()),
        thinking: None,
        image_url: None,
        document: None,
        extra: Map::new(),
    }
}

fn messages(messages: &[ChatMessage]) -> Result<Vec<CohereMessage>> {
    messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            Ok(match m {
                ChatMessage::System(m) => {
                    CohereMessage { content: Some(content(&m.content, i)?), ..message(Role::System) }
                }
                ChatMessage::Developer(m) => {
                    CohereMessage { content: Some(content(&m.content, i)?), ..message(Role::System) }
                }
                ChatMessage::User(m) => CohereMessage { content: Some(content(&m.content, i)?), ..message(Role::User) },
                ChatMessage::Tool(m) => CohereMessage {
                    content: Some(content(&m.content, i)?),
                    tool_call_id: Some(m.tool_call_id.clone()),
                    ..message(Role::Tool)
                },
                ChatMessage::Assistant(m) => {
                    let text = m.content.as_ref().map(|c| plain_text(c, i)).transpose()?.filter(|t| !t.is_empty());
                    let calls: Vec<ToolCall> = m
                        .tool_calls
                        .iter()
                        .flatten()
                        .map(|call| {
                            let function = call.function.as_ref().ok_or_else(|| {
                                unsupported(format!(
                                    "`{}` tool calls",
                                    call.type_.as_ref().map_or("custom", |t| t.as_str())
                                ))
                            })?;
                            Ok(ToolCall {
                                id: Some(call.id.clone()),
                                type_: Some("function".into()),
                                function: Some(ToolCallFunction {
                                    name: Some(function.name.clone()),
                                    arguments: Some(function.arguments.clone()),
                                    extra: Map::new(),
                                }),
                                extra: Map::new(),
                            })
                        })
                        .collect::<Result<_>>()?;
                    if calls.is_empty() {
                        CohereMessage { content: text.map(ChatMessageContent::String), ..message(Role::Assistant) }
                    } else {
                        // Text beside tool calls is the plan that led to them.
                        CohereMessage { tool_plan: text, tool_calls: Some(calls), ..message(Role::Assistant) }
                    }
                }
                ChatMessage::Function(_) => return Err(unsupported("`function` messages (use tool messages)")),
            })
        })
        .collect()
}

fn plain_text(content: &MessageContent, index: usize) -> Result<String> {
    match content {
        MessageContent::Text(t) => Ok(t.clone()),
        MessageContent::Parts(parts) => parts
            .iter()
            .map(|p| match p {
                ContentPart::Text(t) => Ok(t.text.as_str()),
                ContentPart::Refusal(r) => Ok(r.refusal.as_str()),
                other => Err(Error::invalid(
                    format!(
                        "messages[{index}]: an assistant turn to Cohere holds text only, not `{}`",
                        other.type_name()
                    ),
                    Some("messages"),
                )),
            })
            .collect::<Result<Vec<_>>>()
            .map(|pieces| pieces.concat()),
    }
}

fn content(content: &MessageContent, index: usize) -> Result<ChatMessageContent> {
    match content {
        MessageContent::Text(t) => Ok(ChatMessageContent::String(t.clone())),
        MessageContent::Parts(parts) => parts
            .iter()
            .map(|part| match part {
                ContentPart::Text(t) => Ok(text_item(&t.text)),
                ContentPart::Refusal(r) => Ok(text_item(&r.refusal)),
                ContentPart::ImageUrl(image) => Ok(ContentItem {
                    type_: ContentType::ImageUrl,
                    text: None,
                    thinking: None,
                    image_url: Some(ImageUrl {
                        url: image.image_url.url.clone(),
                        detail: image.image_url.detail.as_ref().map(|d| d.as_str().to_string()),
                        extra: Map::new(),
                    }),
                    document: None,
                    extra: Map::new(),
                }),
                ContentPart::File(_) => {
                    Err(unsupported(format!("file parts (messages[{index}]); pass documents in the `documents` field")))
                }
                ContentPart::InputAudio(_) => Err(unsupported("audio input")),
                ContentPart::Other(_) => Err(unsupported(format!("`{}` content parts", part.type_name()))),
            })
            .collect::<Result<Vec<_>>>()
            .map(ChatMessageContent::Array),
    }
}

/// The v2 embed request. `input_type` is required by Cohere's v3 and later models; without
/// one from the caller (an extra field), `search_document` is sent, as LiteLLM does.
/// `embedding_types` (an extra field) may ask for one of Cohere's compressed types, returned
/// as numbers; OpenAI's `base64` is float32 little-endian, so it is computed from floats.
pub fn embed_body(req: &EmbeddingRequest, ctx: &Ctx<'_>) -> Result<Bytes> {
    let texts = embedding_texts(&req.input, ProviderKind::Cohere)?;
    if req.user.is_some() && !ctx.drop_params {
        return Err(unsupported("the `user` parameter for embeddings"));
    }
    let string = |key: &str| match req.extra.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Error::invalid(format!("`{key}` must be a string"), Some(key))),
    };
    let embedding_type = embedding_type(req)?;
    if embedding_type != "float" && req.encoding_format.as_ref() == Some(&EmbeddingEncodingFormat::Base64) {
        return Err(Error::invalid(
            format!("encoding_format base64 is float32; it cannot carry `{embedding_type}` embeddings"),
            Some("encoding_format"),
        ));
    }
    let body = EmbedRequest {
        model: ctx.model.to_string(),
        texts: Some(texts.to_vec()),
        input_type: string("input_type")?.unwrap_or_else(|| "search_document".into()),
        embedding_types: Some(vec![embedding_type]),
        output_dimension: req.dimensions,
        truncate: string("truncate")?,
        extra: Map::new(),
    };
    serde_json::to_vec(&body).map(Bytes::from).map_err(|e| Error::invalid(e.to_string(), None))
}

/// The one embedding type asked for (`float` unless `embedding_types` names another).
pub fn embedding_type(req: &EmbeddingRequest) -> Result<String> {
    const TYPES: &[&str] = &["float", "int8", "uint8", "binary", "ubinary"];
    let invalid = || {
        Error::invalid(
            format!("`embedding_types` must name one of {} (one type per request)", TYPES.join(", ")),
            Some("embedding_types"),
        )
    };
    match req.extra.get("embedding_types") {
        None => Ok("float".into()),
        Some(Value::Array(list)) => match list.as_slice() {
            [Value::String(t)] if TYPES.contains(&t.as_str()) => Ok(t.clone()),
            _ => Err(invalid()),
        },
        Some(Value::String(t)) if TYPES.contains(&t.as_str()) => Ok(t.clone()),
        Some(_) => Err(invalid()),
    }
}
