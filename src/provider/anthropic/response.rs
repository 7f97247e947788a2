//! An Anthropic message as an OpenAI chat completion.
//!
//! Text blocks are joined into `content`; `tool_use` blocks become `tool_calls` (ids kept,
//! input serialised as the arguments); thinking blocks become `reasoning_content`, and are
//! also kept whole in `thinking_blocks` (signatures included) so a caller can send them back.
//! Usage follows Anthropic's convention, where cache reads and writes are counted apart from
//! `input_tokens`: the OpenAI prompt count is their sum, with the cached part in
//! `prompt_tokens_details` and both cache counts at the top level as well.

use bytes::Bytes;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Map, Value, json};

use super::request::{JSON_TOOL, JsonMode, json_mode};
use crate::error::{Error, Result};
use crate::provider::convert::{assistant_choice, completion};
use crate::provider::{Ctx, ProviderKind};
use crate::spec::anthropic::{ListModelsResponse, StopReason};
use crate::spec::ext::Nullable;
use crate::spec::ext::anthropic::ContentBlock;
use crate::spec::openai::{ChatCompletionMessageToolCall, CompletionUsage, FinishReason, Model, PromptTokensDetails};
use crate::{ChatResponse, ModelList};

/// Decodes a message answer.
pub fn decode(response: http::Response<Bytes>, ctx: &Ctx<'_>) -> Result<ChatResponse> {
    let (parts, body) = response.into_parts();
    let decoded = if ctx.native && ctx.usage_only {
        serde_json::from_slice::<Answer<IgnoredAny>>(&body).map(|answer| translate_usage(&answer))
    } else {
        serde_json::from_slice::<Answer>(&body).map(|answer| translate(answer, uses_json_tool(ctx)))
    };
    match decoded {
        Ok(response) => Ok(response),
        Err(_) if is_error_envelope(&body) => {
            let status = if parts.status.is_success() { http::StatusCode::BAD_GATEWAY } else { parts.status };
            Err(super::error::decode_error(status, &parts.headers, &body).into())
        }
        Err(err) => Err(Error::decode(ProviderKind::Anthropic, "message", err, body)),
    }
}

fn is_error_envelope(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body).is_ok_and(|v| v.get("type").and_then(Value::as_str) == Some("error"))
}

/// Whether the request was encoded with the forced JSON tool, whose input is the answer.
pub(crate) fn uses_json_tool(ctx: &Ctx<'_>) -> bool {
    matches!(json_mode(ctx.response_format, ctx.model), JsonMode::ForcedTool(_))
}

/// What a translation reads of a message answer: the generated `Message`, checked for the
/// same required fields, without the maps of fields it does not know (which serde fills by
/// buffering the whole object before it decodes any field: about half the cost of decoding
/// an answer, on every call). With `IgnoredAny` as `C`, the content is checked to be JSON
/// and nothing more.
#[derive(Deserialize)]
struct Answer<C = Vec<ContentBlock>> {
    content: C,
    id: String,
    model: String,
    #[allow(dead_code, reason = "required, as in `Message`; not read")]
    role: IgnoredAny,
    #[serde(default)]
    stop_reason: Option<StopReason>,
    #[serde(rename = "type")]
    #[allow(dead_code, reason = "required, as in `Message`; not read")]
    type_: IgnoredAny,
    usage: AnswerUsage,
}

#[derive(Deserialize)]
struct AnswerUsage {
    input_tokens: i64,
    output_tokens: i64,
    #[serde(default)]
    cache_read_input_tokens: Option<i64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<i64>,
}

/// What a caller that sends the upstream's bytes on reads of an answer: its id, model, stop
/// reason and usage, with no content.
fn translate_usage(message: &Answer<IgnoredAny>) -> ChatResponse {
    let finish = message.stop_reason.as_ref().map(|r| finish_reason(r, false));
    let choice = assistant_choice(0, None, Vec::new(), None, Map::new(), finish);
    completion(message.id.clone(), message.model.clone(), vec![choice], Some(usage_of(&message.usage)))
}

fn usage_of(usage: &AnswerUsage) -> CompletionUsage {
    openai_usage(
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_read_input_tokens,
        usage.cache_creation_input_tokens,
    )
}

/// The OpenAI form of a message.
fn translate(message: Answer, json_tool: bool) -> ChatResponse {
    let mut text: Option<String> = None;
    let mut reasoning: Option<String> = None;
    let mut tool_calls = Vec::new();
    let mut thinking_blocks = Vec::new();
    let mut answered_by_json_tool = false;
    for block in message.content {
        match block {
            ContentBlock::Text(t) => text.get_or_insert_with(String::new).push_str(&t.text),
            ContentBlock::ToolUse(call) if json_tool && call.name == JSON_TOOL => {
                text.get_or_insert_with(String::new).push_str(&Value::Object(call.input).to_string());
                answered_by_json_tool = true;
            }
            ContentBlock::ToolUse(call) => tool_calls.push(ChatCompletionMessageToolCall::function(
                call.id,
                call.name,
                Value::Object(call.input).to_string(),
            )),
            ContentBlock::Thinking(t) => {
                reasoning.get_or_insert_with(String::new).push_str(&t.thinking);
                thinking_blocks.push(serde_json::to_value(ContentBlock::Thinking(t)).unwrap_or(Value::Null));
            }
            block @ ContentBlock::RedactedThinking(_) => {
                thinking_blocks.push(serde_json::to_value(block).unwrap_or(Value::Null));
            }
            // Documents, images, tool results and server-tool blocks are not part of an
            // OpenAI answer.
            ContentBlock::Image(_)
            | ContentBlock::Document(_)
            | ContentBlock::ToolResult(_)
            | ContentBlock::Other(_) => {}
        }
    }
    let mut extra = Map::new();
    if !thinking_blocks.is_empty() {
        extra.insert("thinking_blocks".into(), Value::Array(thinking_blocks));
    }
    let finish = message.stop_reason.as_ref().map(|r| finish_reason(r, answered_by_json_tool));
    let usage = usage_of(&message.usage);
    let choice = assistant_choice(0, text, tool_calls, reasoning, extra, finish);
    completion(message.id, message.model, vec![choice], Some(usage))
}

/// Anthropic's stop reason as OpenAI's finish reason. A forced JSON tool answered in content,
/// so its `tool_use` is a plain `stop`. `pause_turn` (a server tool paused a long turn) and
/// reasons this version does not know are `stop`, as in LiteLLM.
pub fn finish_reason(reason: &StopReason, answered_by_json_tool: bool) -> FinishReason {
    match reason {
        StopReason::ToolUse if answered_by_json_tool => FinishReason::Stop,
        StopReason::ToolUse => FinishReason::ToolCalls,
        StopReason::MaxTokens => FinishReason::Length,
        StopReason::Refusal => FinishReason::ContentFilter,
        StopReason::EndTurn | StopReason::StopSequence | StopReason::PauseTurn | StopReason::Other(_) => {
            FinishReason::Stop
        }
    }
}

/// OpenAI usage from Anthropic's counts.
pub fn openai_usage(input: i64, output: i64, cache_read: Option<i64>, cache_write: Option<i64>) -> CompletionUsage {
    let prompt = input + cache_read.unwrap_or(0) + cache_write.unwrap_or(0);
    let mut extra = Map::new();
    if let Some(read) = cache_read {
        extra.insert("cache_read_input_tokens".into(), json!(read));
    }
    if let Some(write) = cache_write {
        extra.insert("cache_creation_input_tokens".into(), json!(write));
    }
    let details = (cache_read.is_some() || cache_write.is_some()).then(|| PromptTokensDetails {
        cached_tokens: cache_read,
        cache_write_tokens: cache_write,
        audio_tokens: None,
        text_tokens: None,
        image_tokens: None,
        extra: Map::new(),
    });
    CompletionUsage {
        prompt_tokens: prompt,
        completion_tokens: output,
        total_tokens: prompt + output,
        prompt_tokens_details: details,
        completion_tokens_details: None,
        extra,
    }
}

/// Decodes `GET /v1/models` into OpenAI's list shape.
pub fn decode_models(response: http::Response<Bytes>) -> Result<ModelList> {
    let body = response.into_body();
    let list: ListModelsResponse =
        serde_json::from_slice(&body).map_err(|e| Error::decode(ProviderKind::Anthropic, "models list", e, body))?;
    Ok(ModelList {
        object: "list".into(),
        data: list
            .data
            .into_iter()
            .map(|m| Model {
                created: m.created_at.as_deref().and_then(unix_time),
                id: m.id,
                object: Some("model".into()),
                owned_by: Some("anthropic".into()),
                shutdown_date: Nullable::Absent,
                extra: Map::new(),
            })
            .collect(),
        extra: Map::new(),
    })
}

/// `2025-02-19T00:00:00Z` as Unix seconds (UTC dates only; offsets are ignored).
fn unix_time(text: &str) -> Option<i64> {
    let (date, time) = text.split_once('T')?;
    let mut d = date.split('-').map(str::parse::<i64>);
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.get(..8)?.split(':').map(str::parse::<i64>);
    let (hh, mm, ss) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates_become_unix_seconds() {
        assert_eq!(unix_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix_time("2025-02-19T00:00:00Z"), Some(1_739_923_200));
        assert_eq!(unix_time("2024-02-29T12:30:05Z"), Some(1_709_209_805));
        assert_eq!(unix_time("yesterday"), None);
    }

    #[test]
    fn cached_tokens_are_added_to_the_prompt_and_itemised() {
        let u = openai_usage(10, 5, Some(1000), Some(200));
        assert_eq!((u.prompt_tokens, u.completion_tokens, u.total_tokens), (1210, 5, 1215));
        let details = u.prompt_tokens_details.unwrap_or_else(|| panic!("no details"));
        assert_eq!((details.cached_tokens, details.cache_write_tokens), (Some(1000), Some(200)));
        assert_eq!(u.extra.get("cache_read_input_tokens"), Some(&json!(1000)));
    }
}
