//! A Gemini `GenerateContentResponse` as an OpenAI chat completion.
//!
//! Candidates become choices (so `n` > 1 works); text parts are the content and thought parts
//! the `reasoning_content`; function calls become tool calls, with Gemini's id when it gives
//! one and otherwise an id derived from the call (the same in a stream and in the whole
//! answer), and a call's thought signature kept in the tool call's `thought_signature` so it
//! can be sent back. A prompt blocked by a safety filter (no candidates, a `blockReason`) is a
//! `content_filtered` error, not an empty answer.
//!
//! Usage: completion tokens are the candidates' plus the thoughts (Gemini counts them apart),
//! with the thoughts as `reasoning_tokens`; the prompt includes the tool-use prompt;
//! `cachedContentTokenCount` is the cached part of the prompt.

use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::error::{ApiError, Error, ErrorKind, Result};
use crate::provider::convert::{assistant_choice, completion};
use crate::provider::ids::tool_call_id;
use crate::provider::{Ctx, ProviderKind};
use crate::spec::ext::Nullable;
use crate::spec::gemini::{
    BatchEmbedContentsResponse, Candidate, EmbedContentResponse, FinishReason as GeminiFinish, GenerateContentResponse,
    ListModelsResponse, Part, UsageMetadata,
};
use crate::spec::openai::{
    ChatCompletionChoice, ChatCompletionMessageToolCall, CompletionTokensDetails, CompletionUsage,
    EmbeddingEncodingFormat, FinishReason, Model, PromptTokensDetails,
};
use crate::{ChatResponse, EmbeddingResponse, ModelList};

/// Decodes a `generateContent` answer.
pub fn decode(kind: ProviderKind, response: http::Response<Bytes>, ctx: &Ctx<'_>) -> Result<ChatResponse> {
    let (parts, body) = response.into_parts();
    match serde_json::from_slice::<GenerateContentResponse>(&body) {
        Ok(answer) => to_openai(kind, answer, ctx.model),
        Err(_) if serde_json::from_slice::<Value>(&body).is_ok_and(|v| v.get("error").is_some()) => {
            let status = if parts.status.is_success() { http::StatusCode::BAD_GATEWAY } else { parts.status };
            Err(super::error::decode_error(kind, status, &parts.headers, &body).into())
        }
        Err(err) => Err(Error::decode(kind, "response", err, body)),
    }
}

/// The blocked-prompt error, if the answer is one.
pub(crate) fn blocked(kind: ProviderKind, answer: &GenerateContentResponse) -> Option<ApiError> {
    if answer.candidates.as_ref().is_some_and(|c| !c.is_empty()) {
        return None;
    }
    let reason = answer.prompt_feedback.as_ref()?.block_reason.as_ref()?;
    // Gemini answers 200; the status is what the kind means to an OpenAI client.
    let mut err = ApiError::new(
        kind,
        ErrorKind::ContentFiltered.http_status(),
        ErrorKind::ContentFiltered,
        format!("the prompt was blocked ({reason})"),
    );
    err.code = Some(reason.as_str().to_string());
    Some(err)
}

/// The OpenAI form of a Gemini answer.
pub fn to_openai(kind: ProviderKind, answer: GenerateContentResponse, model: &str) -> Result<ChatResponse> {
    if let Some(err) = blocked(kind, &answer) {
        return Err(err.into());
    }
    let choices = answer
        .candidates
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(position, candidate)| choice(position, candidate))
        .collect();
    Ok(completion(
        answer.response_id.unwrap_or_default(),
        answer.model_version.unwrap_or_else(|| model.to_string()),
        choices,
        answer.usage_metadata.as_ref().map(usage),
    ))
}

fn choice(position: usize, candidate: Candidate) -> ChatCompletionChoice {
    let index = candidate.index.unwrap_or(i64::try_from(position).unwrap_or(0));
    let mut text: Option<String> = None;
    let mut reasoning: Option<String> = None;
    let mut calls = Vec::new();
    for part in candidate.content.and_then(|c| c.parts).unwrap_or_default() {
        if let Some(call) = tool_call(index, calls.len(), &part) {
            calls.push(call);
        } else if let Some(t) = part.text {
            let target = if part.thought == Some(true) { &mut reasoning } else { &mut text };
            target.get_or_insert_with(String::new).push_str(&t);
        }
    }
    let finish = candidate.finish_reason.as_ref().map(|r| finish_reason(r, !calls.is_empty()));
    assistant_choice(index, text, calls, reasoning, Map::new(), finish)
}

/// The tool call in a part, if it holds one: the `position`-th call of choice `index`.
pub(crate) fn tool_call(index: i64, position: usize, part: &Part) -> Option<ChatCompletionMessageToolCall> {
    let call = part.function_call.as_ref()?;
    let arguments = Value::Object(call.args.clone().unwrap_or_default()).to_string();
    let id = call.id.clone().unwrap_or_else(|| tool_call_id(index, position, &call.name, &arguments));
    let mut out = ChatCompletionMessageToolCall::function(id, call.name.clone(), arguments);
    if let Some(signature) = &part.thought_signature {
        out.extra.insert("thought_signature".into(), json!(signature));
    }
    Some(out)
}

/// Gemini's finish reason as OpenAI's. `STOP` with function calls is `tool_calls`; the
/// safety-related reasons are `content_filter`; the rest (malformed calls, unknown values)
/// are `stop`, as in LiteLLM.
pub fn finish_reason(reason: &GeminiFinish, has_calls: bool) -> FinishReason {
    match reason {
        GeminiFinish::Stop if has_calls => FinishReason::ToolCalls,
        GeminiFinish::MaxTokens => FinishReason::Length,
        GeminiFinish::Safety
        | GeminiFinish::Recitation
        | GeminiFinish::Language
        | GeminiFinish::OtherReason
        | GeminiFinish::Blocklist
        | GeminiFinish::ProhibitedContent
        | GeminiFinish::Spii
        | GeminiFinish::ImageSafety
        | GeminiFinish::ImageProhibitedContent
        | GeminiFinish::ImageOther
        | GeminiFinish::ImageRecitation => FinishReason::ContentFilter,
        GeminiFinish::Stop
        | GeminiFinish::FinishReasonUnspecified
        | GeminiFinish::MalformedFunctionCall
        | GeminiFinish::NoImage
        | GeminiFinish::UnexpectedToolCall
        | GeminiFinish::TooManyToolCalls
        | GeminiFinish::MissingThoughtSignature
        | GeminiFinish::MalformedResponse
        | GeminiFinish::Other(_) => FinishReason::Stop,
    }
}

/// OpenAI usage from Gemini's counts.
pub fn usage(u: &UsageMetadata) -> CompletionUsage {
    let prompt = u.prompt_token_count.unwrap_or(0) + u.tool_use_prompt_token_count.unwrap_or(0);
    let thoughts = u.thoughts_token_count;
    let completion = u.candidates_token_count.unwrap_or(0) + thoughts.unwrap_or(0);
    CompletionUsage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt + completion,
        prompt_tokens_details: u.cached_content_token_count.map(|cached| PromptTokensDetails {
            cached_tokens: Some(cached),
            cache_write_tokens: None,
            audio_tokens: None,
            text_tokens: None,
            image_tokens: None,
            extra: Map::new(),
        }),
        completion_tokens_details: thoughts.map(|t| CompletionTokensDetails {
            reasoning_tokens: Some(t),
            audio_tokens: None,
            text_tokens: None,
            accepted_prediction_tokens: None,
            rejected_prediction_tokens: None,
            extra: Map::new(),
        }),
        extra: Map::new(),
    }
}

/// Decodes `embedContent` or `batchEmbedContents` (told apart by their bodies) into OpenAI's
/// shape, as base64 little-endian f32s when that was asked for.
pub fn decode_embeddings(
    kind: ProviderKind,
    response: http::Response<Bytes>,
    model: &str,
    format: Option<&EmbeddingEncodingFormat>,
) -> Result<EmbeddingResponse> {
    let body = response.into_body();
    let is_batch = serde_json::from_slice::<Value>(&body).is_ok_and(|v| v.get("embeddings").is_some());
    let vectors: Vec<Vec<f64>> = if is_batch {
        let batch: BatchEmbedContentsResponse =
            serde_json::from_slice(&body).map_err(|e| Error::decode(kind, "embeddings", e, body.clone()))?;
        batch.embeddings.into_iter().map(|e| e.values).collect()
    } else {
        let one: EmbedContentResponse =
            serde_json::from_slice(&body).map_err(|e| Error::decode(kind, "embedding", e, body.clone()))?;
        vec![one.embedding.values]
    };
    let data = crate::provider::convert::embeddings(vectors, format);
    Ok(EmbeddingResponse { object: "list".into(), data, model: model.to_string(), usage: None, extra: Map::new() })
}

/// Decodes `GET /models` into OpenAI's list shape.
pub fn decode_models(kind: ProviderKind, response: http::Response<Bytes>) -> Result<ModelList> {
    let body = response.into_body();
    let list: ListModelsResponse =
        serde_json::from_slice(&body).map_err(|e| Error::decode(kind, "models list", e, body))?;
    Ok(ModelList {
        object: "list".into(),
        data: list
            .models
            .unwrap_or_default()
            .into_iter()
            .map(|m| Model {
                id: m.name.strip_prefix("models/").unwrap_or(&m.name).to_string(),
                object: Some("model".into()),
                created: None,
                owned_by: Some("google".into()),
                shutdown_date: Nullable::Absent,
                extra: Map::new(),
            })
            .collect(),
        extra: Map::new(),
    })
}
