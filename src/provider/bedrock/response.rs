//! A Converse answer as an OpenAI chat completion, and InvokeModel embeddings.
//!
//! Text blocks are joined into `content`; `toolUse` blocks become `tool_calls` (ids kept,
//! input serialised); reasoning becomes `reasoning_content`, and is also kept whole in
//! `thinking_blocks` (Anthropic's shape, signature included) so a caller can send it back.
//! Usage counts cache reads and writes apart from `inputTokens`, as Anthropic does: the
//! OpenAI prompt count is their sum, with the cached part in `prompt_tokens_details`.
//! Converse answers have no id; the `x-amzn-requestid` header stands in.

use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::embed::{EmbedFamily, embed_family};
use super::request::{JSON_TOOL, json_tool_schema};
use crate::error::{Error, Result};
use crate::provider::anthropic::response::openai_usage;
use crate::provider::convert::{assistant_choice, completion};
use crate::provider::{Ctx, ProviderKind};
use crate::spec::bedrock::{CohereEmbedResponse, ContentBlock, ConverseResponse, StopReason, TitanEmbedResponse};
use crate::spec::openai::{ChatCompletionMessageToolCall, EmbeddingUsage, FinishReason};
use crate::{ChatResponse, EmbeddingResponse};

/// Decodes a Converse answer.
pub fn decode(response: http::Response<Bytes>, ctx: &Ctx<'_>) -> Result<ChatResponse> {
    let (parts, body) = response.into_parts();
    let converse: ConverseResponse =
        serde_json::from_slice(&body).map_err(|e| Error::decode(ProviderKind::Bedrock, "converse answer", e, body))?;
    let id = request_id(&parts.headers);
    Ok(to_openai(converse, &id, ctx))
}

/// `chatcmpl-<request id>`, or a fresh id when the header is missing.
pub(crate) fn request_id(headers: &http::HeaderMap) -> String {
    let id = headers.get("x-amzn-requestid").and_then(|v| v.to_str().ok());
    match id {
        Some(id) => format!("chatcmpl-{id}"),
        None => format!("chatcmpl-{:016x}", fastrand::u64(..)),
    }
}

/// Whether the request was encoded with the forced JSON tool, whose input is the answer.
pub(crate) fn uses_json_tool(ctx: &Ctx<'_>) -> bool {
    json_tool_schema(ctx.response_format).is_some()
}

/// The OpenAI form of a Converse answer.
pub fn to_openai(converse: ConverseResponse, id: &str, ctx: &Ctx<'_>) -> ChatResponse {
    let json_tool = uses_json_tool(ctx);
    let mut text: Option<String> = None;
    let mut reasoning: Option<String> = None;
    let mut tool_calls = Vec::new();
    let mut thinking_blocks = Vec::new();
    let mut answered_by_json_tool = false;
    let content = converse.output.message.map(|m| m.content).unwrap_or_default();
    for block in content {
        let ContentBlock { text: t, tool_use, reasoning_content, .. } = block;
        if let Some(t) = t {
            text.get_or_insert_with(String::new).push_str(&t);
        }
        if let Some(call) = tool_use {
            let arguments = match call.input {
                Value::Null => "{}".to_string(),
                input => input.to_string(),
            };
            if json_tool && call.name == JSON_TOOL {
                text.get_or_insert_with(String::new).push_str(&arguments);
                answered_by_json_tool = true;
            } else {
                tool_calls.push(ChatCompletionMessageToolCall::function(call.tool_use_id, call.name, arguments));
            }
        }
        if let Some(r) = reasoning_content {
            if let Some(rt) = r.reasoning_text {
                reasoning.get_or_insert_with(String::new).push_str(&rt.text);
                thinking_blocks.push(
                    json!({"type": "thinking", "thinking": rt.text, "signature": rt.signature.unwrap_or_default()}),
                );
            }
            if let Some(data) = r.redacted_content {
                thinking_blocks.push(json!({"type": "redacted_thinking", "data": data}));
            }
        }
    }
    let mut extra = Map::new();
    if !thinking_blocks.is_empty() {
        extra.insert("thinking_blocks".into(), Value::Array(thinking_blocks));
    }
    let usage = &converse.usage;
    let usage = openai_usage(
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_read_input_tokens,
        usage.cache_write_input_tokens,
    );
    let finish = finish_reason(&converse.stop_reason, answered_by_json_tool);
    let choice = assistant_choice(0, text, tool_calls, reasoning, extra, Some(finish));
    completion(id.to_string(), ctx.model.to_string(), vec![choice], Some(usage))
}

/// Bedrock's stop reason as OpenAI's finish reason. A forced JSON tool answered in content,
/// so its `tool_use` is a plain `stop`. A model that ran out of context stopped for length;
/// malformed output and reasons this version does not know are `stop`, as in LiteLLM.
pub fn finish_reason(reason: &StopReason, answered_by_json_tool: bool) -> FinishReason {
    match reason {
        StopReason::ToolUse if answered_by_json_tool => FinishReason::Stop,
        StopReason::ToolUse => FinishReason::ToolCalls,
        StopReason::MaxTokens | StopReason::ModelContextWindowExceeded => FinishReason::Length,
        StopReason::GuardrailIntervened | StopReason::ContentFiltered => FinishReason::ContentFilter,
        StopReason::EndTurn
        | StopReason::StopSequence
        | StopReason::MalformedModelOutput
        | StopReason::MalformedToolUse
        | StopReason::Other(_) => FinishReason::Stop,
    }
}

/// Decodes an InvokeModel embeddings answer of the model's family. The token count comes
/// from the `x-amzn-bedrock-input-token-count` header, or Titan's body.
pub fn decode_embeddings(response: http::Response<Bytes>, ctx: &Ctx<'_>) -> Result<EmbeddingResponse> {
    let (parts, body) = response.into_parts();
    let header_tokens = parts
        .headers
        .get("x-amzn-bedrock-input-token-count")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok());
    let decode_err = |e: serde_json::Error| Error::decode(ProviderKind::Bedrock, "embeddings", e, body.clone());
    let (vectors, body_tokens) = match embed_family(ctx.model) {
        Some(EmbedFamily::Titan) => {
            let titan: TitanEmbedResponse = serde_json::from_slice(&body).map_err(decode_err)?;
            (vec![titan.embedding], titan.input_text_token_count)
        }
        Some(EmbedFamily::Cohere) => {
            let cohere: CohereEmbedResponse = serde_json::from_slice(&body).map_err(decode_err)?;
            (
                cohere_vectors(cohere.embeddings)
                    .map_err(|e| Error::decode(ProviderKind::Bedrock, "embeddings", e, body.clone()))?,
                None,
            )
        }
        None => return Err(super::unsupported(format!("embeddings with `{}`", ctx.model))),
    };
    let tokens = header_tokens.or(body_tokens);
    Ok(EmbeddingResponse {
        object: "list".into(),
        data: crate::provider::convert::embeddings(vectors, ctx.encoding_format),
        model: ctx.model.to_string(),
        usage: tokens.map(|t| EmbeddingUsage { prompt_tokens: t, total_tokens: t, extra: Map::new() }),
        extra: Map::new(),
    })
}

/// Cohere's `embeddings`: a list of float vectors, or an object of lists by type, of which
/// the `float` list is used.
fn cohere_vectors(embeddings: Value) -> std::result::Result<Vec<Vec<f64>>, String> {
    let list = match embeddings {
        Value::Object(mut by_type) => by_type.remove("float").ok_or("no `float` embeddings in the answer")?,
        list => list,
    };
    serde_json::from_value(list).map_err(|e| format!("embeddings: {e}"))
}
