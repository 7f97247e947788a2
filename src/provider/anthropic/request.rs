//! An OpenAI chat request as an Anthropic Messages request.
//!
//! Where this departs from LiteLLM 1.106.2, and why:
//! - `json_object` becomes a forced tool whose input is the answer (LiteLLM drops it
//!   silently, so the caller gets prose where it asked for JSON).
//! - `json_schema` uses `output_config.format`, Anthropic's generally available structured
//!   output, on models that have it (LiteLLM sent the older beta `output_format`), and the
//!   forced tool elsewhere.
//! - http(s) images go as URL sources, which Anthropic fetches itself (LiteLLM downloads
//!   them first).
//! - Any parameter Anthropic cannot express (`n` > 1, `seed`, penalties, `logprobs`, an
//!   unknown `reasoning_effort` or `tool_choice`, ...) is an `Unsupported` error naming it,
//!   or dropped with `drop_params`; never silently ignored. Content it cannot take (audio,
//!   unknown part types, custom tools) is `Unsupported` even with `drop_params`: dropping
//!   content would change what the model is asked.
//! - Without `max_tokens`, the model's maximum output is sent; for a model Switchyard does
//!   not know, the caller is asked for `max_tokens` rather than given a small default.

use bytes::Bytes;
use http::HeaderMap;
use serde_json::{Map, Value, json};

use super::{model_facts, unsupported};
use crate::ChatRequest;
use crate::error::{Error, Result};
use crate::provider::convert::{Thinking, any_object, data_url, parse_arguments, thinking_budget};
use crate::provider::params::refuse_or_drop;
use crate::provider::{Ctx, ProviderKind};
use crate::spec::anthropic::{
    CacheControl, CreateMessageParams, DocumentBlock, DocumentBlockType, ImageBlock, ImageBlockType, ImageSource,
    InputMessage, JsonOutputFormat, MessageContent as AnthropicContent, Metadata, OutputConfig, RequestServiceTier,
    Role, SystemPrompt, TextBlock, TextBlockType, ThinkingConfigParam, Tool, ToolChoice, ToolResultBlock,
    ToolResultBlockType, ToolUseBlock, ToolUseBlockType,
};
use crate::spec::ext::anthropic::ContentBlock;
use crate::spec::ext::{ChatMessage, ContentPart, MessageContent};
use crate::spec::openai::{
    ChatCompletionNamedToolChoice, ChatCompletionToolChoiceOption, ReasoningEffort, ResponseFormat, ServiceTier,
    StopConfiguration, ToolChoiceMode, ToolType,
};

/// The tool forced when structured output has to go through tool use.
pub const JSON_TOOL: &str = "json_tool_call";

/// How a `response_format` is honoured.
#[derive(Clone, Debug, PartialEq)]
pub enum JsonMode {
    /// Plain output.
    Off,
    /// `output_config.format` with this schema.
    Native(Map<String, Value>),
    /// A forced tool with this input schema; its input is returned as the message content.
    ForcedTool(Map<String, Value>),
}

/// The JSON mode for a response format on a model; decoding calls it again to undo it.
pub fn json_mode(format: Option<&ResponseFormat>, model: &str) -> JsonMode {
    match format {
        None | Some(ResponseFormat::Text) => JsonMode::Off,
        Some(ResponseFormat::JsonObject) => JsonMode::ForcedTool(any_object()),
        Some(ResponseFormat::JsonSchema(format)) => {
            let schema = format.schema.clone().unwrap_or_else(any_object);
            if model_facts(model).is_some_and(|f| f.structured_outputs) {
                JsonMode::Native(schema)
            } else {
                JsonMode::ForcedTool(schema)
            }
        }
    }
}

/// The request body for a chat completion, and the headers to send it with: `headers` with
/// the betas the request names added to any configured `anthropic-beta`.
pub fn chat_body(req: &ChatRequest, ctx: &Ctx<'_>, headers: &HeaderMap) -> Result<(Bytes, HeaderMap)> {
    let (params, betas) = to_anthropic(req, ctx)?;
    let body = serde_json::to_vec(&params).map_err(|e| Error::invalid(e.to_string(), None))?;
    let headers = super::with_betas(headers.clone(), betas.iter().map(String::as_str))?;
    Ok((Bytes::from(body), headers))
}

/// The Anthropic request for an OpenAI request, and the betas it names.
pub fn to_anthropic(req: &ChatRequest, ctx: &Ctx<'_>) -> Result<(CreateMessageParams, Vec<String>)> {
    check_unsupported(req, ctx.drop_params)?;
    let mut extra = req.extra.clone();
    let betas = take_betas(&mut extra)?;
    let top_k = match extra.remove("top_k") {
        None => None,
        Some(v) => Some(v.as_i64().ok_or_else(|| Error::invalid("`top_k` must be an integer", Some("top_k")))?),
    };
    let explicit_thinking = match extra.remove("thinking") {
        None => None,
        Some(v) => Some(
            serde_json::from_value::<ThinkingConfigParam>(v)
                .map_err(|e| Error::invalid(format!("invalid `thinking`: {e}"), Some("thinking")))?,
        ),
    };
    let passthrough = take_passthrough(&mut extra, ctx.drop_params)?;

    let (system, messages) = messages(&req.messages)?;
    let thinking = explicit_thinking.or(thinking_for(req.reasoning_effort.as_ref(), ctx.drop_params)?);
    let max_tokens = max_tokens(req, ctx, thinking.as_ref())?;
    let (mut tools, mut tool_choice) = tools(req, ctx.drop_params)?;
    let mut output_config = None;
    match json_mode(req.response_format.as_ref(), ctx.model) {
        JsonMode::Off => {}
        JsonMode::Native(schema) => {
            output_config = Some(OutputConfig {
                format: Some(JsonOutputFormat { type_: "json_schema".into(), schema, extra: Map::new() }),
                effort: None,
                extra: Map::new(),
            });
        }
        JsonMode::ForcedTool(schema) => {
            tools.get_or_insert_with(Vec::new).push(Tool {
                type_: None,
                name: JSON_TOOL.into(),
                description: Some("Respond with a JSON value that follows this schema.".into()),
                input_schema: Some(schema),
                cache_control: None,
                strict: None,
                extra: Map::new(),
            });
            tool_choice = Some(ToolChoice::Tool { name: JSON_TOOL.into(), disable_parallel_tool_use: None });
        }
    }
    let user = req.user.clone().or_else(|| req.safety_identifier.clone());
    let params = CreateMessageParams {
        model: ctx.model.to_string(),
        messages,
        max_tokens,
        system: (!system.is_empty()).then_some(SystemPrompt::Array(system)),
        metadata: user.map(|id| Metadata { user_id: id.into(), extra: Map::new() }),
        stop_sequences: req.stop.as_ref().map(|stop| match stop {
            StopConfiguration::String(s) => vec![s.clone()],
            StopConfiguration::Array(list) => list.clone(),
        }),
        stream: ctx.stream.then_some(true),
        temperature: req.temperature,
        top_k,
        top_p: req.top_p,
        thinking,
        tool_choice,
        tools,
        output_config,
        service_tier: match &req.service_tier {
            None => None,
            Some(ServiceTier::Auto) => Some(RequestServiceTier::Auto),
            Some(ServiceTier::Default) => Some(RequestServiceTier::StandardOnly),
            Some(other) if ctx.drop_params => {
                tracing::debug!(tier = %other, "dropping a service tier Anthropic does not have");
                None
            }
            Some(other) => return Err(unsupported(format!("service_tier `{other}`"))),
        },
        extra: passthrough,
    };
    Ok((params, betas))
}

/// The OpenAI parameters of [`super::UNSUPPORTED_PARAMS`] the request asks for: refused, or dropped.
fn check_unsupported(req: &ChatRequest, drop_params: bool) -> Result<()> {
    refuse_or_drop(req, super::UNSUPPORTED_PARAMS, drop_params, ProviderKind::Anthropic)
}

/// `anthropic_beta` (a string or a list) from the request's extra fields, for the header.
fn take_betas(extra: &mut Map<String, Value>) -> Result<Vec<String>> {
    match extra.remove("anthropic_beta") {
        None => Ok(Vec::new()),
        Some(Value::String(one)) => {
            Ok(one.split(',').map(|b| b.trim().to_string()).filter(|b| !b.is_empty()).collect())
        }
        Some(Value::Array(list)) => list
            .into_iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| Error::invalid("`anthropic_beta` must be a string or a list of strings", None)),
        Some(_) => Err(Error::invalid("`anthropic_beta` must be a string or a list of strings", None)),
    }
}

/// Anthropic request fields a caller may send as extra fields; passed on as they are.
const PASSTHROUGH: &[&str] = &["container", "mcp_servers", "context_management", "inference_geo"];

fn take_passthrough(extra: &mut Map<String, Value>, drop_params: bool) -> Result<Map<String, Value>> {
    let mut kept = Map::new();
    for (key, value) in std::mem::take(extra) {
        if PASSTHROUGH.contains(&key.as_str()) {
            kept.insert(key, value);
        } else if drop_params {
            tracing::debug!(param = %key, "dropping a field Anthropic does not take");
        } else {
            return Err(unsupported(format!("the `{key}` parameter")));
        }
    }
    Ok(kept)
}

/// `reasoning_effort` as a thinking budget ([`thinking_budget`]'s levels).
fn thinking_for(effort: Option<&ReasoningEffort>, drop_params: bool) -> Result<Option<ThinkingConfigParam>> {
    Ok(match thinking_budget(effort, drop_params, ProviderKind::Anthropic)? {
        Thinking::Unset | Thinking::Off => None,
        Thinking::Budget(budget) => Some(ThinkingConfigParam::Enabled(budget)),
    })
}

fn max_tokens(req: &ChatRequest, ctx: &Ctx<'_>, thinking: Option<&ThinkingConfigParam>) -> Result<i64> {
    let explicit = req.max_completion_tokens.or(req.max_tokens);
    let max_tokens = match explicit {
        Some(n) => n,
        None => model_facts(ctx.model).map(|f| f.max_output).ok_or_else(|| {
            Error::invalid(
                format!(
                    "Anthropic needs max_tokens, and `{}` is not a model Switchyard knows the output limit of; set max_tokens",
                    ctx.model
                ),
                Some("max_tokens"),
            )
        })?,
    };
    if let (Some(ThinkingConfigParam::Enabled(budget)), Some(_)) = (thinking, explicit)
        && max_tokens <= *budget
    {
        return Err(Error::invalid(
            format!("max_tokens ({max_tokens}) must be larger than the thinking budget ({budget})"),
            Some("max_tokens"),
        ));
    }
    Ok(max_tokens)
}

/// Tools and the tool choice.
fn tools(req: &ChatRequest, drop_params: bool) -> Result<(Option<Vec<Tool>>, Option<ToolChoice>)> {
    let tools = match &req.tools {
        None => None,
        Some(list) => Some(
            list.iter()
                .map(|tool| {
                    let function = match (&tool.type_, &tool.function) {
                        (ToolType::Function, Some(f)) => f,
                        _ => return Err(unsupported(format!("`{}` tools", tool.type_))),
                    };
                    let schema = function.parameters.clone().unwrap_or_else(|| {
                        let mut s = any_object();
                        s.insert("properties".into(), json!({}));
                        s
                    });
                    Ok(Tool {
                        type_: None,
                        name: function.name.clone(),
                        description: function.description.clone(),
                        input_schema: Some(schema),
                        cache_control: cache_control(&tool.extra)?,
                        strict: function.strict.as_ref().copied(),
                        extra: Map::new(),
                    })
                })
                .collect::<Result<Vec<_>>>()?,
        ),
    };
    let no_parallel = (req.parallel_tool_calls == Some(false)).then_some(true);
    let refuse = |what: String| {
        if drop_params {
            tracing::debug!(choice = %what, "dropping a tool_choice Anthropic cannot express");
            Ok(None)
        } else {
            Err(unsupported(what))
        }
    };
    let choice = match &req.tool_choice {
        None if no_parallel.is_some() && tools.is_some() => {
            Some(ToolChoice::Auto { disable_parallel_tool_use: no_parallel })
        }
        None => None,
        Some(ChatCompletionToolChoiceOption::ToolChoiceMode(mode)) => match mode {
            ToolChoiceMode::Auto => Some(ToolChoice::Auto { disable_parallel_tool_use: no_parallel }),
            ToolChoiceMode::Required => Some(ToolChoice::Any { disable_parallel_tool_use: no_parallel }),
            ToolChoiceMode::None => Some(ToolChoice::None),
            ToolChoiceMode::Other(other) => refuse(format!("tool_choice `{other}`"))?,
        },
        Some(ChatCompletionToolChoiceOption::ChatCompletionNamedToolChoice(named)) => match named {
            ChatCompletionNamedToolChoice::Function { function } => {
                Some(ToolChoice::Tool { name: function.name.clone(), disable_parallel_tool_use: no_parallel })
            }
            ChatCompletionNamedToolChoice::Custom { .. } => refuse("tool_choice `custom`".into())?,
            ChatCompletionNamedToolChoice::AllowedTools { .. } => refuse("tool_choice `allowed_tools`".into())?,
        },
    };
    Ok((tools, choice))
}

/// The system prompt and the conversation. System and developer messages go to the top-level
/// system prompt; tool results become `tool_result` blocks in a user turn; consecutive turns
/// of one role are merged, since Anthropic alternates user and assistant.
fn messages(messages: &[ChatMessage]) -> Result<(Vec<TextBlock>, Vec<InputMessage>)> {
    let mut system = Vec::new();
    let mut turns: Vec<(Role, Vec<ContentBlock>)> = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let (role, mut blocks) = match message {
            ChatMessage::System(m) => {
                system.extend(system_blocks(&m.content, &m.extra, i)?);
                continue;
            }
            ChatMessage::Developer(m) => {
                system.extend(system_blocks(&m.content, &m.extra, i)?);
                continue;
            }
            ChatMessage::User(m) => (Role::User, content_blocks(&m.content)?),
            ChatMessage::Assistant(m) => (Role::Assistant, assistant_blocks(m, i)?),
            ChatMessage::Tool(m) => (Role::User, vec![tool_result(&m.tool_call_id, &m.content)?]),
            ChatMessage::Function(_) => return Err(unsupported("`function` messages (use tool messages)")),
        };
        if let (Some(cc), Some(last)) = (cache_control(message_extra(message))?, blocks.last_mut()) {
            set_cache_control(last, cc);
        }
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last_role, last_blocks)) if *last_role == role => last_blocks.append(&mut blocks),
            _ => turns.push((role, blocks)),
        }
    }
    let turns = turns
        .into_iter()
        .map(|(role, blocks)| InputMessage { role, content: AnthropicContent::Array(blocks), extra: Map::new() })
        .collect();
    Ok((system, turns))
}

fn message_extra(message: &ChatMessage) -> &Map<String, Value> {
    match message {
        ChatMessage::Developer(m) => &m.extra,
        ChatMessage::System(m) => &m.extra,
        ChatMessage::User(m) => &m.extra,
        ChatMessage::Assistant(m) => &m.extra,
        ChatMessage::Tool(m) => &m.extra,
        ChatMessage::Function(m) => &m.extra,
    }
}

fn system_blocks(content: &MessageContent, extra: &Map<String, Value>, index: usize) -> Result<Vec<TextBlock>> {
    let mut blocks = match content {
        MessageContent::Text(text) => vec![text_block(text.clone(), None)],
        MessageContent::Parts(parts) => parts
            .iter()
            .map(|part| match part {
                ContentPart::Text(t) => Ok(text_block(t.text.clone(), cache_control(&t.extra)?)),
                other => Err(Error::invalid(
                    format!(
                        "messages[{index}]: Anthropic's system prompt takes text only, not `{}`",
                        other.type_name()
                    ),
                    Some("messages"),
                )),
            })
            .collect::<Result<Vec<_>>>()?,
    };
    if let (Some(cc), Some(last)) = (cache_control(extra)?, blocks.last_mut()) {
        last.cache_control = Some(cc);
    }
    Ok(blocks)
}

fn text_block(text: String, cache_control: Option<CacheControl>) -> TextBlock {
    TextBlock { type_: TextBlockType::Text, text, cache_control, citations: Default::default(), extra: Map::new() }
}

fn content_blocks(content: &MessageContent) -> Result<Vec<ContentBlock>> {
    match content {
        MessageContent::Text(text) if text.is_empty() => Ok(Vec::new()),
        MessageContent::Text(text) => Ok(vec![ContentBlock::Text(text_block(text.clone(), None))]),
        MessageContent::Parts(parts) => parts.iter().map(part_block).collect(),
    }
}

fn part_block(part: &ContentPart) -> Result<ContentBlock> {
    Ok(match part {
        ContentPart::Text(t) => ContentBlock::Text(text_block(t.text.clone(), cache_control(&t.extra)?)),
        ContentPart::Refusal(r) => ContentBlock::Text(text_block(r.refusal.clone(), None)),
        ContentPart::ImageUrl(image) => ContentBlock::Image(ImageBlock {
            type_: ImageBlockType::Image,
            source: image_source(&image.image_url.url)?,
            cache_control: cache_control(&image.extra)?,
            extra: Map::new(),
        }),
        ContentPart::File(file) => {
            let data = file.file.file_data.as_deref().unwrap_or_default();
            let (media_type, payload) = data_url(data).ok_or_else(|| unsupported("files by id (send file_data)"))?;
            if media_type != "application/pdf" {
                return Err(unsupported(format!("`{media_type}` files (PDF only)")));
            }
            ContentBlock::Document(DocumentBlock {
                type_: DocumentBlockType::Document,
                source: source_map(json!({"type": "base64", "media_type": media_type, "data": payload})),
                title: file.file.filename.clone().into(),
                context: Default::default(),
                citations: Default::default(),
                cache_control: cache_control(&file.extra)?,
                extra: Map::new(),
            })
        }
        ContentPart::InputAudio(_) => return Err(unsupported("audio input")),
        ContentPart::Other(_) => return Err(unsupported(format!("`{}` content parts", part.type_name()))),
    })
}

fn source_map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn image_source(url: &str) -> Result<ImageSource> {
    if url.starts_with("data:") {
        let (media_type, data) = data_url(url).ok_or_else(|| {
            Error::invalid("an image data URL must look like data:image/png;base64,...", Some("messages"))
        })?;
        return Ok(ImageSource::Base64 { media_type: media_type.to_string(), data: data.to_string() });
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(ImageSource::Url { url: url.to_string() });
    }
    Err(Error::invalid("an image URL must be http(s) or a data URL", Some("messages")))
}

fn assistant_blocks(
    m: &crate::spec::openai::ChatCompletionRequestAssistantMessage,
    index: usize,
) -> Result<Vec<ContentBlock>> {
    let mut blocks = Vec::new();
    // Thinking blocks from an earlier answer go back first, signatures intact: Anthropic
    // needs them before a tool_use when thinking is on.
    if let Some(thinking) = m.extra.get("thinking_blocks") {
        let list: Vec<ContentBlock> = serde_json::from_value(thinking.clone())
            .map_err(|e| Error::invalid(format!("messages[{index}].thinking_blocks: {e}"), Some("messages")))?;
        blocks.extend(list);
    }
    if let Some(content) = m.content.as_ref() {
        blocks.extend(content_blocks(content)?);
    }
    for (j, call) in m.tool_calls.iter().flatten().enumerate() {
        let function = call.function.as_ref().ok_or_else(|| {
            unsupported(format!("`{}` tool calls", call.type_.as_ref().map_or("custom", |t| t.as_str())))
        })?;
        let input = parse_arguments(&function.arguments).map_err(|why| {
            Error::invalid(format!("messages[{index}].tool_calls[{j}].function.arguments {why}"), Some("messages"))
        })?;
        blocks.push(ContentBlock::ToolUse(ToolUseBlock {
            type_: ToolUseBlockType::ToolUse,
            id: call.id.clone(),
            name: function.name.clone(),
            input,
            cache_control: None,
            extra: Map::new(),
        }));
    }
    Ok(blocks)
}

fn tool_result(tool_call_id: &str, content: &MessageContent) -> Result<ContentBlock> {
    let content = match content {
        MessageContent::Text(text) => AnthropicContent::String(text.clone()),
        MessageContent::Parts(parts) => AnthropicContent::Array(parts.iter().map(part_block).collect::<Result<_>>()?),
    };
    Ok(ContentBlock::ToolResult(ToolResultBlock {
        type_: ToolResultBlockType::ToolResult,
        tool_use_id: tool_call_id.to_string(),
        content: Some(content),
        is_error: None,
        cache_control: None,
        extra: Map::new(),
    }))
}

/// `cache_control` from a part's, tool's or message's extra fields (prompt caching).
fn cache_control(extra: &Map<String, Value>) -> Result<Option<CacheControl>> {
    extra
        .get("cache_control")
        .map(|v| {
            serde_json::from_value(v.clone())
                .map_err(|e| Error::invalid(format!("invalid cache_control: {e}"), Some("cache_control")))
        })
        .transpose()
}

fn set_cache_control(block: &mut ContentBlock, cc: CacheControl) {
    match block {
        ContentBlock::Text(b) => b.cache_control = Some(cc),
        ContentBlock::Image(b) => b.cache_control = Some(cc),
        ContentBlock::Document(b) => b.cache_control = Some(cc),
        ContentBlock::ToolUse(b) => b.cache_control = Some(cc),
        ContentBlock::ToolResult(b) => b.cache_control = Some(cc),
        ContentBlock::Thinking(_) | ContentBlock::RedactedThinking(_) | ContentBlock::Other(_) => {}
    }
}
