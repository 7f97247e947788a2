//! A Cohere v2 chat answer as an OpenAI chat completion; embeddings and models.
//!
//! The tool plan (the text a model writes before its tool calls) and text items are the
//! content, in that order, as they arrive in a stream; thinking items are
//! `reasoning_content`; tool calls keep their ids. Finish reasons: COMPLETE and
//! STOP_SEQUENCE -> stop, MAX_TOKENS -> length, TOOL_CALL -> tool_calls (LiteLLM reports
//! `stop` for all of them); ERROR and TIMEOUT -> stop, as in LiteLLM's table.
//! Usage counts what the model saw (`tokens`), falling back to what was billed
//! (`billed_units`), which is also kept under `usage.billed_units` for cost.

use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::provider::convert::{assistant_choice, completion};
use crate::provider::{Ctx, ProviderKind};
use crate::spec::cohere::{
    ChatResponse as CohereResponse, ContentType, EmbedResponse, FinishReason as CohereFinish, ListModelsResponse, Usage,
};
use crate::spec::ext::Nullable;
use crate::spec::openai::{
    ChatCompletionMessageToolCall, CompletionUsage, EmbeddingUsage, FinishReason, Model, PromptTokensDetails,
};
use crate::{ChatResponse, EmbeddingResponse, ModelList};

/// Decodes a chat answer.
pub fn decode(response: http::Response<Bytes>, ctx: &Ctx<'_>) -> Result<ChatResponse> {
    let body = response.into_body();
    let answer: CohereResponse =
        serde_json::from_slice(&body).map_err(|e| Error::decode(ProviderKind::Cohere, "chat answer", e, body))?;
    Ok(to_openai(answer, ctx.model))
}

/// The OpenAI form of a Cohere answer.
pub fn to_openai(answer: CohereResponse, model: &str) -> ChatResponse {
    let message = answer.message;
    let mut text: Option<String> = message.tool_plan.filter(|p| !p.is_empty());
    let mut reasoning: Option<String> = None;
    for item in message.content.into_iter().flatten() {
        match item.type_ {
            ContentType::Thinking => {
                reasoning.get_or_insert_with(String::new).push_str(item.thinking.as_deref().unwrap_or(""))
            }
            _ => {
                if let Some(t) = item.text {
                    text.get_or_insert_with(String::new).push_str(&t);
                }
            }
        }
    }
    let tool_calls: Vec<ChatCompletionMessageToolCall> = message
        .tool_calls
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, call)| {
            let function = call.function.unwrap_or_else(|| crate::spec::cohere::ToolCallFunction {
                name: None,
                arguments: None,
                extra: Map::new(),
            });
            ChatCompletionMessageToolCall::function(
                call.id.unwrap_or_else(|| format!("call_{i}")),
                function.name.unwrap_or_default(),
                function.arguments.unwrap_or_else(|| "{}".into()),
            )
        })
        .collect();
    let mut extra = Map::new();
    if let Some(citations) = message.citations.filter(|c| !c.is_empty()) {
        extra.insert("citations".into(), Value::Array(citations.into_iter().map(Value::Object).collect()));
    }
    let finish = answer.finish_reason.as_ref().map(finish_reason);
    let choice = assistant_choice(0, text, tool_calls, reasoning, extra, finish);
    completion(answer.id, model.to_string(), vec![choice], answer.usage.as_ref().map(openai_usage))
}

/// Cohere's finish reason as OpenAI's.
pub fn finish_reason(reason: &CohereFinish) -> FinishReason {
    match reason {
        CohereFinish::MaxTokens => FinishReason::Length,
        CohereFinish::ToolCall => FinishReason::ToolCalls,
        CohereFinish::Complete
        | CohereFinish::StopSequence
        | CohereFinish::Error
        | CohereFinish::Timeout
        | CohereFinish::Other(_) => FinishReason::Stop,
    }
}

/// OpenAI usage from Cohere's.
pub fn openai_usage(usage: &Usage) -> CompletionUsage {
    let seen = usage.tokens.as_ref();
    let billed = usage.billed_units.as_ref();
    let count = |f: fn(&crate::spec::cohere::UsageCounts) -> Option<i64>| {
        seen.and_then(f).or_else(|| billed.and_then(f)).unwrap_or(0)
    };
    let prompt = count(|c| c.input_tokens);
    let completion = count(|c| c.output_tokens);
    let mut extra = Map::new();
    if let Some(billed) = billed {
        extra.insert("billed_units".into(), serde_json::to_value(billed).unwrap_or(Value::Null));
    }
    CompletionUsage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt + completion,
        prompt_tokens_details: usage.cached_tokens.map(|cached| PromptTokensDetails {
            cached_tokens: Some(cached),
            cache_write_tokens: None,
            audio_tokens: None,
            text_tokens: None,
            image_tokens: None,
            extra: Map::new(),
        }),
        completion_tokens_details: None,
        extra,
    }
}

/// Decodes a v2 embed answer: the vectors of the one type asked for.
pub fn decode_embeddings(response: http::Response<Bytes>, ctx: &Ctx<'_>) -> Result<EmbeddingResponse> {
    let body = response.into_body();
    let fail = |e: String| Error::decode(ProviderKind::Cohere, "embeddings", e, body.clone());
    let answer: EmbedResponse = serde_json::from_slice(&body).map_err(|e| fail(e.to_string()))?;
    // Which type was asked for is not in the context; the answer holds exactly that one.
    let (kind, vectors) =
        answer.embeddings.into_iter().next().ok_or_else(|| fail("no embeddings in the answer".into()))?;
    let vectors: Vec<Vec<f64>> =
        serde_json::from_value(vectors).map_err(|e| fail(format!("`{kind}` embeddings: {e}")))?;
    let tokens = answer.meta.and_then(|m| m.billed_units).and_then(|b| b.input_tokens);
    Ok(EmbeddingResponse {
        object: "list".into(),
        data: crate::provider::convert::embeddings(vectors, ctx.encoding_format),
        model: ctx.model.to_string(),
        usage: tokens.map(|t| EmbeddingUsage { prompt_tokens: t, total_tokens: t, extra: Map::new() }),
        extra: Map::new(),
    })
}

/// Decodes `GET /v1/models` into OpenAI's list shape.
pub fn decode_models(response: http::Response<Bytes>) -> Result<ModelList> {
    let body = response.into_body();
    let list: ListModelsResponse =
        serde_json::from_slice(&body).map_err(|e| Error::decode(ProviderKind::Cohere, "models list", e, body))?;
    Ok(ModelList {
        object: "list".into(),
        data: list
            .models
            .into_iter()
            .map(|m| Model {
                id: m.name,
                object: Some("model".into()),
                created: None,
                owned_by: Some("cohere".into()),
                shutdown_date: Nullable::Absent,
                extra: m.endpoints.map(|e| Map::from_iter([("endpoints".to_string(), json!(e))])).unwrap_or_default(),
            })
            .collect(),
        extra: Map::new(),
    })
}
