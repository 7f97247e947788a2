//! Encoding OpenAI-format requests (OpenAI, Azure, compatible vendors).

use bytes::Bytes;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Error, Result};

use crate::provider::{Ctx, ProviderKind, Quirks};
use crate::{ChatRequest, EmbeddingRequest};

/// The JSON body of a chat request: the caller's request with the provider's model id, the
/// stream flag this call needs, and the vendor's quirks applied. Nothing else is added.
pub fn chat_body(provider: ProviderKind, request: &ChatRequest, ctx: &Ctx<'_>, quirks: &Quirks) -> Result<Bytes> {
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
