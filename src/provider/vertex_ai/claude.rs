//! Claude on Vertex AI (`vertex_ai/claude-...`): Anthropic's Messages format on Google's
//! endpoint.
//!
//! Upstream docs: <https://docs.anthropic.com/en/api/claude-on-vertex-ai>. The body is
//! Anthropic's (`crate::provider::anthropic::request`) with two differences: the model is in
//! the URL, not the body
//! (`.../publishers/anthropic/models/{model}:rawPredict`, `:streamRawPredict` for streams),
//! and `anthropic_version` is a body field, `vertex-2023-10-16`, not a header. Betas go in
//! the `anthropic-beta` header, as to Anthropic. Token counts are
//! `.../publishers/anthropic/models/count-tokens:rawPredict` with the model in the body.
//! Answers, stream events and the model's errors are Anthropic's; errors from Google's
//! side of the endpoint (authentication, quota) are `google.rpc.Status`.
//!
//! A `/v1/messages` request routed here goes out as the client sent it, with the model
//! member replaced by `anthropic_version` and the client's betas forwarded.

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::Vertex;
use crate::ChatRequest;
use crate::error::{ApiError, Error, Result};
use crate::provider::anthropic::{self, with_betas};
use crate::provider::native::Native;
use crate::provider::requests::post_json;
use crate::provider::{Ctx, ProviderKind};

/// The `anthropic_version` Vertex AI wants in the body.
pub const VERSION: &str = "vertex-2023-10-16";

/// Whether `model` is one of Anthropic's on Vertex AI (`claude-...`), not Google's.
pub fn is_claude(model: &str) -> bool {
    model.starts_with("claude-")
}

/// The URL of `method` (`rawPredict`, `streamRawPredict`) on Anthropic's model `model`.
pub fn url(vertex: &Vertex, model: &str, method: &str) -> String {
    format!(
        "{}/v1/projects/{}/locations/{}/publishers/anthropic/models/{model}:{method}",
        vertex.base_url, vertex.project, vertex.location
    )
}

fn method(stream: bool) -> &'static str {
    if stream { "streamRawPredict" } else { "rawPredict" }
}

fn version_field() -> [(&'static str, Value); 1] {
    [("anthropic_version", json!(VERSION))]
}

/// A translated chat request: Anthropic's body without `model`, with the version.
pub fn encode_chat(vertex: &Vertex, req: &ChatRequest, ctx: &Ctx<'_>) -> Result<http::Request<Bytes>> {
    let (params, betas) = anthropic::request::to_anthropic(req, ctx)?;
    let mut body = serde_json::to_value(&params).map_err(|e| Error::invalid(e.to_string(), None))?;
    if let Some(object) = body.as_object_mut() {
        object.remove("model");
        object.insert("anthropic_version".into(), json!(VERSION));
    }
    let body = serde_json::to_vec(&body).map_err(|e| Error::invalid(e.to_string(), None))?;
    let headers = with_betas(vertex.headers(ctx)?, betas.iter().map(String::as_str))?;
    post_json(&url(vertex, ctx.model, method(ctx.stream)), Bytes::from(body), &headers)
}

/// The client's Messages body, as it came but for the model (in the URL) and the version.
pub fn encode_native(vertex: &Vertex, native: &Native, ctx: &Ctx<'_>) -> Result<http::Request<Bytes>> {
    let body = native.body_without_model(&version_field())?;
    let headers = client_betas(vertex.headers(ctx)?, native)?;
    post_json(&url(vertex, ctx.model, method(ctx.stream)), body, &headers)
}

/// The client's body to Vertex AI's token count, which takes the model in the body.
pub fn encode_native_count(vertex: &Vertex, native: &Native, ctx: &Ctx<'_>) -> Result<http::Request<Bytes>> {
    let body = native.body_with_fields(ctx.model, &version_field())?;
    let headers = client_betas(vertex.headers(ctx)?, native)?;
    post_json(&url(vertex, "count-tokens", "rawPredict"), body, &headers)
}

fn client_betas(headers: HeaderMap, native: &Native) -> Result<HeaderMap> {
    match native.beta_header().map(|v| v.to_str()) {
        None => Ok(headers),
        Some(Ok(betas)) => with_betas(headers, betas.split(',')),
        Some(Err(_)) => Err(Error::invalid("`anthropic-beta` is not text", None)),
    }
}

/// An error answer: Anthropic's envelope from the model, Google's from the endpoint.
pub fn decode_error(status: StatusCode, headers: &HeaderMap, body: &Bytes) -> ApiError {
    let anthropic =
        serde_json::from_slice::<Value>(body).is_ok_and(|v| v.get("type").and_then(Value::as_str) == Some("error"));
    if anthropic {
        let mut err = anthropic::error::decode_error(status, headers, body);
        err.provider = ProviderKind::VertexAi;
        err
    } else {
        crate::provider::gemini::error::decode_error(ProviderKind::VertexAi, status, headers, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_models_are_told_from_google_ones() {
        assert!(is_claude("claude-sonnet-4-5@20250929"));
        assert!(!is_claude("gemini-2.5-pro"));
        assert!(!is_claude("claudette"));
    }
}
