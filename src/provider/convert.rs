//! Mapping helpers shared by the native adapters (Anthropic, Gemini, Bedrock, Cohere).

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::ChatResponse;
use crate::error::{Error, Result};
use crate::provider::ProviderKind;
use crate::spec::ext::{EmbeddingInput, Nullable};
use crate::spec::openai::{
    ChatCompletionChoice, ChatCompletionMessageToolCall, ChatCompletionResponseMessage, ChatRole, CompletionUsage,
    Embedding, EmbeddingEncodingFormat, EmbeddingVector, FinishReason, ReasoningEffort,
};

/// A chat completion made from a native answer.
pub(crate) fn completion(
    id: String,
    model: String,
    choices: Vec<ChatCompletionChoice>,
    usage: Option<CompletionUsage>,
) -> ChatResponse {
    ChatResponse {
        id,
        object: "chat.completion".into(),
        created: crate::provider::unix_now(),
        model,
        choices,
        usage,
        service_tier: Nullable::Absent,
        system_fingerprint: Nullable::Absent,
        extra: Map::new(),
    }
}

/// One choice of an assistant's answer: its text, tool calls (none leaves the field out),
/// reasoning, and the provider's own extra fields (e.g. `thinking_blocks`).
pub(crate) fn assistant_choice(
    index: i64,
    text: Option<String>,
    tool_calls: Vec<ChatCompletionMessageToolCall>,
    reasoning: Option<String>,
    extra: Map<String, Value>,
    finish_reason: Option<FinishReason>,
) -> ChatCompletionChoice {
    ChatCompletionChoice {
        index,
        message: ChatCompletionResponseMessage {
            role: ChatRole::Assistant,
            content: text,
            refusal: None,
            tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
            annotations: None,
            audio: Nullable::Absent,
            function_call: None,
            reasoning_content: reasoning.into(),
            extra,
        },
        finish_reason,
        logprobs: None,
        extra: Map::new(),
    }
}

/// What a request's `reasoning_effort` asks of a provider with thinking budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Thinking {
    /// No `reasoning_effort`, or an unknown level dropped under `drop_params`.
    Unset,
    /// `reasoning_effort: "none"`.
    Off,
    /// A budget in tokens.
    Budget(i64),
}

/// `reasoning_effort` as a thinking budget, with LiteLLM's budgets (minimal and low 1024,
/// medium 2048, high 4096) and the larger levels doubling on (xhigh 8192, max 16384). A
/// level we do not know is `Error::Unsupported`, or unset with `drop_params`.
pub(crate) fn thinking_budget(
    effort: Option<&ReasoningEffort>,
    drop_params: bool,
    provider: ProviderKind,
) -> Result<Thinking> {
    Ok(Thinking::Budget(match effort {
        None => return Ok(Thinking::Unset),
        Some(ReasoningEffort::None) => return Ok(Thinking::Off),
        Some(ReasoningEffort::Minimal | ReasoningEffort::Low) => 1024,
        Some(ReasoningEffort::Medium) => 2048,
        Some(ReasoningEffort::High) => 4096,
        Some(ReasoningEffort::Xhigh) => 8192,
        Some(ReasoningEffort::Max) => 16384,
        Some(ReasoningEffort::Other(level)) if drop_params => {
            tracing::debug!(%level, %provider, "dropping a reasoning_effort the provider does not know");
            return Ok(Thinking::Unset);
        }
        Some(ReasoningEffort::Other(level)) => {
            return Err(Error::Unsupported { provider, feature: format!("reasoning_effort `{level}`") });
        }
    }))
}

/// A data URL's media type and base64 payload (`data:image/png;base64,AAAA`).
pub(crate) fn data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, payload) = rest.split_once(',')?;
    let media_type = meta.strip_suffix(";base64")?;
    Some((media_type, payload))
}

/// Tool-call arguments as the JSON object native APIs want; empty text means no arguments.
/// The error completes "`...arguments` ...".
pub(crate) fn parse_arguments(arguments: &str) -> Result<Map<String, Value>, String> {
    if arguments.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(format!("must be a JSON object, not {other}")),
        Err(e) => Err(format!("is not valid JSON ({e})")),
    }
}

/// `{"type": "object"}`: the schema of "any JSON object".
pub(crate) fn any_object() -> Map<String, Value> {
    let mut schema = Map::new();
    schema.insert("type".into(), Value::String("object".into()));
    schema
}

/// The texts of an embeddings request; token ids are `Error::Unsupported` (native APIs take
/// text only).
pub(crate) fn embedding_texts(input: &EmbeddingInput, provider: ProviderKind) -> Result<&[String]> {
    match input {
        EmbeddingInput::Text(text) => Ok(std::slice::from_ref(text)),
        EmbeddingInput::Texts(texts) => Ok(texts),
        EmbeddingInput::Tokens(_) | EmbeddingInput::TokenBatches(_) => {
            Err(Error::Unsupported { provider, feature: "embedding token ids (send text)".into() })
        }
    }
}

/// OpenAI embeddings from vectors, as base64 little-endian f32s when that was asked for.
pub(crate) fn embeddings(vectors: Vec<Vec<f64>>, format: Option<&EmbeddingEncodingFormat>) -> Vec<Embedding> {
    let base64 = format.is_some_and(|f| *f == EmbeddingEncodingFormat::Base64);
    vectors
        .into_iter()
        .enumerate()
        .map(|(index, values)| Embedding {
            index: i64::try_from(index).unwrap_or(i64::MAX),
            object: "embedding".into(),
            embedding: if base64 {
                #[expect(clippy::cast_possible_truncation, reason = "OpenAI's base64 embeddings are f32s")]
                let bytes: Vec<u8> = values.iter().flat_map(|v| (*v as f32).to_le_bytes()).collect();
                EmbeddingVector::String(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                EmbeddingVector::Array(values)
            },
            extra: Map::new(),
        })
        .collect()
}
