//! Encoding OpenAI-format requests (OpenAI, Azure, compatible vendors).

use bytes::Bytes;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Error, Result};

use crate::provider::{Ctx, ProviderKind, Quirks};
use crate::spec::ext::{ChatMessage, MessageContent};
use crate::{ChatRequest, EmbeddingRequest};

/// The JSON body of a chat request: the caller's request with the provider's model id, the
/// stream flag this call needs, and the vendor's quirks applied. Nothing else is added.
pub fn chat_body(provider: ProviderKind, request: &ChatRequest, ctx: &Ctx<'_>, quirks: &Quirks) -> Result<Bytes> {
    let unmarked;
    let request = if quirks.keeps_cache_control || !has_cache_control(request) {
        request
    } else {
        unmarked = without_cache_control(request);
        &unmarked
    };
    if *quirks == Quirks::NONE {
        // No quirks: adjust the typed request and serialise it once (about half the cost of
        // going through a `serde_json::Value`).
        let mut outbound = request.clone();
        ctx.model.clone_into(&mut outbound.model);
        if ctx.stream {
            outbound.stream = Some(true);
        } else {
            outbound.stream = None;
            outbound.stream_options = None;
        }
        return serde_json::to_vec(&outbound).map(Bytes::from).map_err(|e| Error::invalid(e.to_string(), None));
    }
    let mut body = to_object(provider, request)?;
    body.insert("model".into(), Value::String(ctx.model.to_string()));
    if ctx.stream {
        body.insert("stream".into(), Value::Bool(true));
    } else {
        // A non-stream call: a `stream` flag from the caller would make the upstream stream,
        // and `stream_options` without streaming is an error at OpenAI.
        body.remove("stream");
        body.remove("stream_options");
    }
    quirks.apply(provider, &mut body, ctx.drop_params)?;
    serde_json::to_vec(&body).map(Bytes::from).map_err(|e| Error::invalid(e.to_string(), None))
}

/// Whether any content part or tool carries Anthropic's prompt-caching marker, or an
/// assistant message Anthropic's thinking blocks.
fn has_cache_control(request: &ChatRequest) -> bool {
    let in_parts = request.messages.iter().any(|m| match m.content() {
        Some(MessageContent::Parts(parts)) => parts.iter().any(|p| p.extra().contains_key(CACHE_CONTROL)),
        _ => false,
    });
    let thinking = request
        .messages
        .iter()
        .any(|m| matches!(m, ChatMessage::Assistant(a) if a.extra.contains_key(THINKING_BLOCKS)));
    in_parts || thinking || request.tools.iter().flatten().any(|t| t.extra.contains_key(CACHE_CONTROL))
}

/// Anthropic's prompt-caching markers and thinking blocks (signed reasoning, which only
/// Anthropic can read back) taken out: OpenAI-format APIs reject them (OpenAI and Azure
/// answer 400 for `cache_control`; their caching is automatic), so they go, as LiteLLM takes
/// them out of OpenAI-format calls. A vendor that reads them (OpenRouter, which passes them
/// to Anthropic's models) keeps them.
fn without_cache_control(request: &ChatRequest) -> ChatRequest {
    let mut out = request.clone();
    for message in &mut out.messages {
        if let ChatMessage::Assistant(assistant) = message {
            assistant.extra.remove(THINKING_BLOCKS);
        }
        if let Some(MessageContent::Parts(parts)) = message.content_mut() {
            for part in parts {
                part.extra_mut().remove(CACHE_CONTROL);
            }
        }
    }
    for tool in out.tools.iter_mut().flatten() {
        tool.extra.remove(CACHE_CONTROL);
    }
    out
}

const CACHE_CONTROL: &str = "cache_control";
const THINKING_BLOCKS: &str = "thinking_blocks";

/// The JSON body of an embeddings request, with the provider's model id.
pub fn embed_body(provider: ProviderKind, request: &EmbeddingRequest, ctx: &Ctx<'_>) -> Result<Bytes> {
    let mut body = to_object(provider, request)?;
    body.insert("model".into(), Value::String(ctx.model.to_string()));
    serde_json::to_vec(&body).map(Bytes::from).map_err(|e| Error::invalid(e.to_string(), None))
}

fn to_object(provider: ProviderKind, value: &impl Serialize) -> Result<Map<String, Value>> {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Error::Config(format!("{provider}: request did not serialize to an object"))),
        Err(e) => Err(Error::invalid(format!("request cannot be encoded: {e}"), None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marked() -> ChatRequest {
        serde_json::from_value(serde_json::json!({
            "model": "m",
            "messages": [{"role": "system", "content": [
                {"type": "text", "text": "long prompt", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
            ]}, {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "yes", "thinking_blocks": [{"type": "thinking", "thinking": "t", "signature": "s"}]}],
            "tools": [{"type": "function", "function": {"name": "f"}, "cache_control": {"type": "ephemeral"}}],
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn anthropic_markers_are_taken_out_except_for_a_vendor_that_reads_them() {
        let request = marked();
        let ctx = Ctx::new("gpt-4o");
        let body = chat_body(ProviderKind::OpenAi, &request, &ctx, &Quirks::NONE).unwrap_or_else(|e| panic!("{e}"));
        let text = String::from_utf8_lossy(&body);
        assert!(!text.contains("cache_control") && !text.contains("thinking_blocks"), "{text}");
        assert!(text.contains("long prompt") && text.contains("\"name\":\"f\""), "{text}");
        let keeps = Quirks { keeps_cache_control: true, ..Quirks::NONE };
        let body = chat_body(ProviderKind::OpenAi, &request, &ctx, &keeps).unwrap_or_else(|e| panic!("{e}"));
        let text = String::from_utf8_lossy(&body);
        assert_eq!(text.matches("cache_control").count(), 2);
        assert!(text.contains("thinking_blocks"), "{text}");
    }
}
