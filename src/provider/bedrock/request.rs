//! An OpenAI chat request as a Bedrock Converse request (embeddings are in `embed.rs`).
//!
//! Where this departs from LiteLLM 1.106.2, and why:
//! - `tool_choice: "none"` leaves the tools out (Converse has no `none`) instead of failing;
//!   in a conversation that already holds tool calls Bedrock needs the tools declared, so
//!   there it is `Unsupported` (or, with `drop_params`, the tools are kept on `auto`).
//! - `cache_control` on a system message, content part or tool becomes a `cachePoint` after
//!   it (LiteLLM did not turn it into one for the system prompt).
//! - http(s) image URLs are `Unsupported` with a clear message: Converse takes bytes or an
//!   S3 location, and an adapter that never does I/O cannot download them (LiteLLM does,
//!   inside the call). Data URLs and `s3://` URLs work.
//! - `metadata` and `user` go to `requestMetadata`, Bedrock's field for invocation logs,
//!   rather than being dropped.
//! - Any parameter Converse cannot express (`n` > 1, `seed`, penalties, `logprobs`, ...) is
//!   `Unsupported` naming it, or dropped with `drop_params`; never silently ignored.
//!
//! As in LiteLLM, `json_schema` and `json_object` become a forced tool, `json_tool_call`,
//! whose input is returned as the message content with finish_reason `stop`; `top_k` and
//! thinking go to `additionalModelRequestFields`.

use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::unsupported;
use crate::ChatRequest;
use crate::error::{Error, Result};
use crate::provider::convert::{Thinking, any_object, data_url, parse_arguments, thinking_budget};
use crate::provider::params::refuse_or_drop;
use crate::provider::{Ctx, ProviderKind};
use crate::spec::bedrock::{
    CachePointBlock, CachePointType, ContentBlock, ConversationRole, ConverseRequest, DocumentBlock, DocumentFormat,
    GuardrailConfiguration, ImageBlock, ImageFormat, InferenceConfiguration, MediaSource, Message,
    ReasoningContentBlock, ReasoningTextBlock, S3Location, SpecificToolChoice, SystemContentBlock, Tool, ToolChoice,
    ToolConfiguration, ToolInputSchema, ToolResultBlock, ToolResultContentBlock, ToolSpecification, ToolUseBlock,
};
use crate::spec::ext::{ChatMessage, ContentPart, MessageContent};
use crate::spec::openai::{
    ChatCompletionNamedToolChoice, ChatCompletionRequestAssistantMessage, ChatCompletionToolChoiceOption,
    ReasoningEffort, ResponseFormat, StopConfiguration, ToolChoiceMode, ToolType,
};

/// The tool forced for structured output; its input is the answer.
pub const JSON_TOOL: &str = "json_tool_call";

/// The schema of the forced JSON tool, when the response format asks for JSON.
pub fn json_tool_schema(format: Option<&ResponseFormat>) -> Option<Map<String, Value>> {
    match format {
        None | Some(ResponseFormat::Text) => None,
        Some(ResponseFormat::JsonObject) => Some(any_object()),
        Some(ResponseFormat::JsonSchema(format)) => Some(format.schema.clone().unwrap_or_else(any_object)),
    }
}

/// The request body for a chat completion.
pub fn chat_body(req: &ChatRequest, ctx: &Ctx<'_>) -> Result<Bytes> {
    let converse = to_converse(req, ctx)?;
    serde_json::to_vec(&converse).map(Bytes::from).map_err(|e| Error::invalid(e.to_string(), None))
}

/// The Converse request for an OpenAI request.
pub fn to_converse(req: &ChatRequest, ctx: &Ctx<'_>) -> Result<ConverseRequest> {
    check_unsupported(req, ctx.drop_params)?;
    let mut extra = req.extra.clone();
    let mut additional = match extra.remove("additionalModelRequestFields") {
        None => Map::new(),
        Some(Value::Object(map)) => map,
        Some(_) => {
            return Err(Error::invalid(
                "`additionalModelRequestFields` must be an object",
                Some("additionalModelRequestFields"),
            ));
        }
    };
    if let Some(top_k) = extra.remove("top_k") {
        if !top_k.is_i64() {
            return Err(Error::invalid("`top_k` must be an integer", Some("top_k")));
        }
        additional.insert("top_k".into(), top_k);
    }
    if let Some(thinking) = extra.remove("thinking") {
        additional.insert("thinking".into(), thinking);
    } else if let Some(thinking) = thinking_for(req.reasoning_effort.as_ref(), ctx)? {
        additional.insert("thinking".into(), thinking);
    }
    let guardrail_config = match extra.remove("guardrailConfig").or_else(|| extra.remove("guardrail_config")) {
        None => None,
        Some(v) => Some(
            serde_json::from_value::<GuardrailConfiguration>(v)
                .map_err(|e| Error::invalid(format!("invalid `guardrailConfig`: {e}"), Some("guardrailConfig")))?,
        ),
    };
    let performance_config = take_object(&mut extra, "performanceConfig")?;
    let prompt_variables = take_object(&mut extra, "promptVariables")?;
    let response_paths = match extra.remove("additionalModelResponseFieldPaths") {
        None => None,
        Some(v) => Some(serde_json::from_value::<Vec<String>>(v).map_err(|_| {
            Error::invalid(
                "`additionalModelResponseFieldPaths` must be a list of strings",
                Some("additionalModelResponseFieldPaths"),
            )
        })?),
    };
    for key in extra.keys() {
        if !ctx.drop_params {
            return Err(unsupported(format!("the `{key}` parameter")));
        }
        tracing::debug!(param = %key, "dropping a field Bedrock does not take");
    }

    let (system, messages) = messages(&req.messages)?;
    let has_tool_blocks =
        messages.iter().flat_map(|m| &m.content).any(|b| b.tool_use.is_some() || b.tool_result.is_some());
    let tool_config = tool_config(req, ctx, has_tool_blocks)?;

    let mut metadata = std::collections::BTreeMap::new();
    for (key, value) in req.metadata.iter().flatten() {
        metadata.insert(key.clone(), value.clone());
    }
    if let Some(user) = req.user.as_ref().or(req.safety_identifier.as_ref()) {
        metadata.insert("user".into(), user.clone());
    }
    let inference = InferenceConfiguration {
        max_tokens: req.max_completion_tokens.or(req.max_tokens),
        temperature: req.temperature,
        top_p: req.top_p,
        stop_sequences: req.stop.as_ref().map(|stop| match stop {
            StopConfiguration::String(s) => vec![s.clone()],
            StopConfiguration::Array(list) => list.clone(),
        }),
        extra: Map::new(),
    };
    let has_inference = inference != InferenceConfiguration::default();
    Ok(ConverseRequest {
        messages,
        system: (!system.is_empty()).then_some(system),
        inference_config: has_inference.then_some(inference),
        tool_config,
        guardrail_config,
        additional_model_request_fields: (!additional.is_empty()).then_some(additional),
        additional_model_response_field_paths: response_paths,
        request_metadata: (!metadata.is_empty()).then_some(metadata),
        performance_config,
        prompt_variables,
        extra: Map::new(),
    })
}

fn take_object(extra: &mut Map<String, Value>, key: &str) -> Result<Option<Map<String, Value>>> {
    match extra.remove(key) {
        None => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(_) => Err(Error::invalid(format!("`{key}` must be an object"), Some(key))),
    }
}

/// The OpenAI parameters of [`super::UNSUPPORTED_PARAMS`] the request asks for: refused, or dropped.
fn check_unsupported(req: &ChatRequest, drop_params: bool) -> Result<()> {
    refuse_or_drop(req, super::UNSUPPORTED_PARAMS, drop_params, ProviderKind::Bedrock)
}

/// `reasoning_effort` as Anthropic's `thinking` budget (LiteLLM's budgets), for Claude
/// models; other Bedrock models have no common thinking switch.
fn thinking_for(effort: Option<&ReasoningEffort>, ctx: &Ctx<'_>) -> Result<Option<Value>> {
    let budget = match thinking_budget(effort, ctx.drop_params, ProviderKind::Bedrock)? {
        Thinking::Unset | Thinking::Off => return Ok(None),
        Thinking::Budget(budget) => budget,
    };
    if !ctx.model.contains("anthropic.claude") {
        if ctx.drop_params {
            tracing::debug!(model = ctx.model, "dropping reasoning_effort for a model without a thinking budget");
            return Ok(None);
        }
        return Err(unsupported(format!(
            "reasoning_effort for `{}` (Claude models only; pass model-specific fields in additionalModelRequestFields)",
            ctx.model
        )));
    }
    Ok(Some(json!({"type": "enabled", "budget_tokens": budget})))
}

fn cache_point() -> CachePointBlock {
    CachePointBlock { type_: CachePointType::Default, extra: Map::new() }
}

/// Whether a part, message or tool asks for a cache point after it.
fn wants_cache_point(extra: &Map<String, Value>) -> bool {
    extra.get("cache_control").is_some_and(|v| !v.is_null())
}

/// Tools, the tool choice, and the forced JSON tool.
fn tool_config(req: &ChatRequest, ctx: &Ctx<'_>, has_tool_blocks: bool) -> Result<Option<ToolConfiguration>> {
    let mut tools = Vec::new();
    for tool in req.tools.iter().flatten() {
        let function = match (&tool.type_, &tool.function) {
            (ToolType::Function, Some(f)) => f,
            _ => return Err(unsupported(format!("`{}` tools", tool.type_))),
        };
        let schema = function.parameters.clone().unwrap_or_else(|| {
            let mut s = any_object();
            s.insert("properties".into(), json!({}));
            s
        });
        tools.push(Tool {
            tool_spec: Some(ToolSpecification {
                name: function.name.clone(),
                description: function.description.clone(),
                input_schema: ToolInputSchema { json: schema, extra: Map::new() },
                extra: Map::new(),
            }),
            ..Tool::default()
        });
        if wants_cache_point(&tool.extra) {
            tools.push(Tool { cache_point: Some(cache_point()), ..Tool::default() });
        }
    }
    let mut choice = match &req.tool_choice {
        None => None,
        Some(ChatCompletionToolChoiceOption::ToolChoiceMode(mode)) => match mode {
            ToolChoiceMode::Auto => Some(ToolChoice { auto: Some(Map::new()), ..ToolChoice::default() }),
            ToolChoiceMode::Required => Some(ToolChoice { any: Some(Map::new()), ..ToolChoice::default() }),
            ToolChoiceMode::None if !has_tool_blocks => {
                // Converse has no `none`: a model that is given no tools calls none.
                tools.clear();
                None
            }
            ToolChoiceMode::None if ctx.drop_params => {
                tracing::debug!("tool_choice none with tool calls in the history: keeping the tools on auto");
                None
            }
            ToolChoiceMode::None => {
                return Err(unsupported(
                    "tool_choice `none` in a conversation that holds tool calls (Bedrock then needs the tools \
                     declared, and cannot be told not to use them)",
                ));
            }
            ToolChoiceMode::Other(other) => refuse(ctx, format!("tool_choice `{other}`"))?,
        },
        Some(ChatCompletionToolChoiceOption::ChatCompletionNamedToolChoice(named)) => match named {
            ChatCompletionNamedToolChoice::Function { function } => Some(ToolChoice {
                tool: Some(SpecificToolChoice { name: function.name.clone(), extra: Map::new() }),
                ..ToolChoice::default()
            }),
            ChatCompletionNamedToolChoice::Custom { .. } => refuse(ctx, "tool_choice `custom`".into())?,
            ChatCompletionNamedToolChoice::AllowedTools { .. } => refuse(ctx, "tool_choice `allowed_tools`".into())?,
        },
    };
    if let Some(schema) = json_tool_schema(req.response_format.as_ref()) {
        tools.push(Tool {
            tool_spec: Some(ToolSpecification {
                name: JSON_TOOL.into(),
                description: Some("Respond with a JSON value that follows this schema.".into()),
                input_schema: ToolInputSchema { json: schema, extra: Map::new() },
                extra: Map::new(),
            }),
            ..Tool::default()
        });
        choice = Some(ToolChoice {
            tool: Some(SpecificToolChoice { name: JSON_TOOL.into(), extra: Map::new() }),
            ..ToolChoice::default()
        });
    }
    if tools.is_empty() {
        return Ok(None);
    }
    Ok(Some(ToolConfiguration { tools, tool_choice: choice, extra: Map::new() }))
}

fn refuse(ctx: &Ctx<'_>, what: String) -> Result<Option<ToolChoice>> {
    if ctx.drop_params {
        tracing::debug!(choice = %what, "dropping a tool_choice Bedrock cannot express");
        Ok(None)
    } else {
        Err(unsupported(what))
    }
}

/// The system prompt and the conversation. System and developer messages go to `system`;
/// tool results become `toolResult` blocks in a user turn; consecutive turns of one role are
/// merged, since Converse alternates user and assistant.
fn messages(messages: &[ChatMessage]) -> Result<(Vec<SystemContentBlock>, Vec<Message>)> {
    let mut system = Vec::new();
    let mut turns: Vec<Message> = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let (role, mut blocks) = match message {
            ChatMessage::System(m) => {
                system_blocks(&m.content, &m.extra, i, &mut system)?;
                continue;
            }
            ChatMessage::Developer(m) => {
                system_blocks(&m.content, &m.extra, i, &mut system)?;
                continue;
            }
            ChatMessage::User(m) => {
                let mut blocks = content_blocks(&m.content, i)?;
                if wants_cache_point(&m.extra) {
                    blocks.push(ContentBlock { cache_point: Some(cache_point()), ..ContentBlock::default() });
                }
                (ConversationRole::User, blocks)
            }
            ChatMessage::Assistant(m) => (ConversationRole::Assistant, assistant_blocks(m, i)?),
            ChatMessage::Tool(m) => (ConversationRole::User, vec![tool_result(&m.tool_call_id, &m.content, i)?]),
            ChatMessage::Function(_) => return Err(unsupported("`function` messages (use tool messages)")),
        };
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some(last) if last.role == role => last.content.append(&mut blocks),
            _ => turns.push(Message { role, content: blocks, extra: Map::new() }),
        }
    }
    Ok((system, turns))
}

fn system_blocks(
    content: &MessageContent,
    extra: &Map<String, Value>,
    index: usize,
    out: &mut Vec<SystemContentBlock>,
) -> Result<()> {
    let text_block = |text: &str| SystemContentBlock { text: Some(text.to_string()), ..SystemContentBlock::default() };
    let point = || SystemContentBlock { cache_point: Some(cache_point()), ..SystemContentBlock::default() };
    match content {
        MessageContent::Text(text) if text.is_empty() => {}
        MessageContent::Text(text) => out.push(text_block(text)),
        MessageContent::Parts(parts) => {
            for part in parts {
                match part {
                    ContentPart::Text(t) => {
                        if !t.text.is_empty() {
                            out.push(text_block(&t.text));
                        }
                        if wants_cache_point(&t.extra) {
                            out.push(point());
                        }
                    }
                    other => {
                        return Err(Error::invalid(
                            format!(
                                "messages[{index}]: Bedrock's system prompt takes text only, not `{}`",
                                other.type_name()
                            ),
                            Some("messages"),
                        ));
                    }
                }
            }
        }
    }
    if wants_cache_point(extra) {
        out.push(point());
    }
    Ok(())
}

fn text(text: &str) -> ContentBlock {
    ContentBlock { text: Some(text.to_string()), ..ContentBlock::default() }
}

fn content_blocks(content: &MessageContent, index: usize) -> Result<Vec<ContentBlock>> {
    match content {
        // Bedrock rejects empty text blocks.
        MessageContent::Text(t) if t.is_empty() => Ok(Vec::new()),
        MessageContent::Text(t) => Ok(vec![text(t)]),
        MessageContent::Parts(parts) => {
            let mut blocks = Vec::new();
            for (j, part) in parts.iter().enumerate() {
                if let Some(block) = part_block(part, index, j)? {
                    blocks.push(block);
                }
                // `part_block` refused an unknown part type before its fields are read here.
                if wants_cache_point(part.extra()) {
                    blocks.push(ContentBlock { cache_point: Some(cache_point()), ..ContentBlock::default() });
                }
            }
            Ok(blocks)
        }
    }
}

fn part_block(part: &ContentPart, index: usize, j: usize) -> Result<Option<ContentBlock>> {
    Ok(match part {
        ContentPart::Text(t) if t.text.is_empty() => None,
        ContentPart::Text(t) => Some(text(&t.text)),
        ContentPart::Refusal(r) => Some(text(&r.refusal)),
        ContentPart::ImageUrl(image) => {
            Some(ContentBlock { image: Some(image_block(&image.image_url.url)?), ..ContentBlock::default() })
        }
        ContentPart::File(file) => {
            let data = file.file.file_data.as_deref().unwrap_or_default();
            let (media_type, payload) = data_url(data).ok_or_else(|| unsupported("files by id (send file_data)"))?;
            let format = document_format(media_type).ok_or_else(|| {
                unsupported(format!("`{media_type}` documents (pdf, csv, doc(x), xls(x), html, txt, md)"))
            })?;
            let name = document_name(file.file.filename.as_deref(), index, j);
            Some(ContentBlock {
                document: Some(DocumentBlock {
                    format: Some(format),
                    name,
                    source: MediaSource { bytes: Some(payload.to_string()), ..MediaSource::default() },
                    extra: Map::new(),
                }),
                ..ContentBlock::default()
            })
        }
        ContentPart::InputAudio(_) => return Err(unsupported("audio input")),
        ContentPart::Other(_) => return Err(unsupported(format!("`{}` content parts", part.type_name()))),
    })
}

fn image_block(url: &str) -> Result<ImageBlock> {
    if url.starts_with("data:") {
        let (media_type, payload) = data_url(url).ok_or_else(|| {
            Error::invalid("an image data URL must look like data:image/png;base64,...", Some("messages"))
        })?;
        let format = match media_type {
            "image/png" => ImageFormat::Png,
            "image/jpeg" | "image/jpg" => ImageFormat::Jpeg,
            "image/gif" => ImageFormat::Gif,
            "image/webp" => ImageFormat::Webp,
            other => return Err(unsupported(format!("`{other}` images (png, jpeg, gif, webp)"))),
        };
        return Ok(ImageBlock {
            format,
            source: MediaSource { bytes: Some(payload.to_string()), ..MediaSource::default() },
            extra: Map::new(),
        });
    }
    if url.starts_with("s3://") {
        let format = match url.rsplit('.').next().map(str::to_ascii_lowercase).as_deref() {
            Some("png") => ImageFormat::Png,
            Some("jpg" | "jpeg") => ImageFormat::Jpeg,
            Some("gif") => ImageFormat::Gif,
            Some("webp") => ImageFormat::Webp,
            _ => {
                return Err(Error::invalid(
                    "an s3:// image URL must end in .png, .jpg, .jpeg, .gif or .webp",
                    Some("messages"),
                ));
            }
        };
        return Ok(ImageBlock {
            format,
            source: MediaSource {
                s3_location: Some(S3Location { uri: url.to_string(), bucket_owner: None, extra: Map::new() }),
                ..MediaSource::default()
            },
            extra: Map::new(),
        });
    }
    Err(unsupported(
        "image URLs other than data: and s3:// (Bedrock takes image bytes; send the image as a base64 data URL)",
    ))
}

fn document_format(media_type: &str) -> Option<DocumentFormat> {
    Some(match media_type {
        "application/pdf" => DocumentFormat::Pdf,
        "text/csv" => DocumentFormat::Csv,
        "application/msword" => DocumentFormat::Doc,
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => DocumentFormat::Docx,
        "application/vnd.ms-excel" => DocumentFormat::Xls,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => DocumentFormat::Xlsx,
        "text/html" => DocumentFormat::Html,
        "text/plain" => DocumentFormat::Txt,
        "text/markdown" => DocumentFormat::Md,
        _ => return None,
    })
}

/// A document name Bedrock accepts: letters, digits, single spaces, hyphens, parentheses and
/// square brackets. The file's own name without its extension, or `document-<i>-<j>`.
fn document_name(filename: Option<&str>, index: usize, j: usize) -> String {
    let stem = filename.map(|f| f.rsplit_once('.').map_or(f, |(stem, _)| stem)).unwrap_or_default();
    let mut name = String::new();
    for c in stem.chars() {
        let c = if c.is_ascii_alphanumeric() || "-()[]".contains(c) { c } else { ' ' };
        if !(c == ' ' && (name.is_empty() || name.ends_with(' '))) {
            name.push(c);
        }
    }
    let name = name.trim_end().to_string();
    if name.is_empty() { format!("document-{index}-{j}") } else { name }
}

fn assistant_blocks(m: &ChatCompletionRequestAssistantMessage, index: usize) -> Result<Vec<ContentBlock>> {
    let mut blocks = Vec::new();
    // Reasoning from an earlier answer goes back first, signature intact: Claude on Bedrock
    // needs it before a tool use when thinking is on.
    if let Some(Value::Array(thinking)) = m.extra.get("thinking_blocks") {
        for (k, block) in thinking.iter().enumerate() {
            let invalid = || {
                Error::invalid(
                    format!("messages[{index}].thinking_blocks[{k}] must be a thinking or redacted_thinking block"),
                    Some("messages"),
                )
            };
            let reasoning = match block.get("type").and_then(Value::as_str) {
                Some("thinking") => ReasoningContentBlock {
                    reasoning_text: Some(ReasoningTextBlock {
                        text: block.get("thinking").and_then(Value::as_str).ok_or_else(invalid)?.to_string(),
                        signature: block.get("signature").and_then(Value::as_str).map(str::to_string),
                        extra: Map::new(),
                    }),
                    ..ReasoningContentBlock::default()
                },
                Some("redacted_thinking") => ReasoningContentBlock {
                    redacted_content: Some(block.get("data").and_then(Value::as_str).ok_or_else(invalid)?.to_string()),
                    ..ReasoningContentBlock::default()
                },
                _ => return Err(invalid()),
            };
            blocks.push(ContentBlock { reasoning_content: Some(reasoning), ..ContentBlock::default() });
        }
    }
    if let Some(content) = m.content.as_ref() {
        blocks.extend(content_blocks(content, index)?);
    }
    for (j, call) in m.tool_calls.iter().flatten().enumerate() {
        let function = call.function.as_ref().ok_or_else(|| {
            unsupported(format!("`{}` tool calls", call.type_.as_ref().map_or("custom", |t| t.as_str())))
        })?;
        let input = parse_arguments(&function.arguments).map_err(|why| {
            Error::invalid(format!("messages[{index}].tool_calls[{j}].function.arguments {why}"), Some("messages"))
        })?;
        blocks.push(ContentBlock {
            tool_use: Some(ToolUseBlock {
                tool_use_id: call.id.clone(),
                name: function.name.clone(),
                input: Value::Object(input),
                extra: Map::new(),
            }),
            ..ContentBlock::default()
        });
    }
    Ok(blocks)
}

fn tool_result(tool_call_id: &str, content: &MessageContent, index: usize) -> Result<ContentBlock> {
    let content = match content {
        MessageContent::Text(t) => vec![ToolResultContentBlock { text: Some(t.clone()), ..Default::default() }],
        MessageContent::Parts(parts) => {
            let mut out = Vec::new();
            for (j, part) in parts.iter().enumerate() {
                let Some(block) = part_block(part, index, j)? else { continue };
                out.push(ToolResultContentBlock {
                    text: block.text,
                    image: block.image,
                    document: block.document,
                    ..Default::default()
                });
            }
            out
        }
    };
    Ok(ContentBlock {
        tool_result: Some(ToolResultBlock {
            tool_use_id: tool_call_id.to_string(),
            content,
            status: None,
            extra: Map::new(),
        }),
        ..ContentBlock::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_names_keep_only_what_bedrock_accepts() {
        assert_eq!(document_name(Some("Q3 report_final.v2.pdf"), 0, 0), "Q3 report final v2");
        assert_eq!(document_name(Some("(draft) [1].txt"), 0, 0), "(draft) [1]");
        assert_eq!(document_name(Some("...pdf"), 2, 1), "document-2-1");
        assert_eq!(document_name(None, 3, 0), "document-3-0");
    }
}
