//! `POST /v1/messages/count_tokens`: the input tokens a Messages request would use.
//!
//! Where the group has an Anthropic-format deployment (Anthropic; Claude on Vertex AI, and on
//! Bedrock through CountTokens), the body is forwarded to its
//! `count_tokens` as it came (the model and credentials replaced, the client's version and
//! betas with it), and the count is exact (`x-switchyard-token-count: exact`). Elsewhere, or
//! when that upstream cannot answer (it is down, overloaded), the tokenizers the router has
//! for the group's deployments count it (the largest count over them, as admission counts),
//! marked `x-switchyard-token-count: estimate`. A count is free: no spend row, no limits.
//! The body is a Messages request without `max_tokens`; authentication, the key's model list
//! and the errors (Anthropic's envelope) are those of `/v1/messages`; an estimate of a body
//! the translation cannot carry (a server tool, a block it does not know) is refused.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::super::admission::check_model;
use super::super::auth::Principal;
use super::super::envelope::anthropic_error;
use super::super::{ApiFailure, Gateway};
use crate::error::ErrorKind;

/// The header that says how the count was made.
pub const COUNT_HEADER: &str = "x-switchyard-token-count";

pub(in super::super) async fn count_tokens(
    State(gateway): State<Arc<Gateway>>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    uri: Uri,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    match count(&gateway, &principal, &headers, &uri, raw).await {
        Ok(response) => response,
        Err(failure) => anthropic_error(&failure),
    }
}

async fn count(
    gateway: &Gateway,
    principal: &Principal,
    headers: &HeaderMap,
    uri: &Uri,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiFailure> {
    let bytes = super::body(raw)?;
    let value = super::parse_json(&bytes)?;
    let native = super::native::request(bytes, &value, headers, uri, None)?;
    // Forwarded, the body is the upstream's to judge, as on `/v1/messages`; estimated, what
    // is counted is its translation, so a body the translation cannot carry is refused, as a
    // translated `/v1/messages` call would be. (A count has no output: the body has no
    // `max_tokens`, which our description of a Messages request requires.)
    let super::Lenient { request, untranslatable, .. } = super::to_openai_lenient(&value)?;
    check_model(principal, &request.model)?;
    match gateway.router.count_native(&request.model, &native).await {
        Some(Ok(tokens)) => return Ok(answer(tokens, "exact")),
        // The client's mistake, as the upstream saw it.
        Some(Err(err)) if err.kind() == ErrorKind::InvalidRequest => return Err(err.into()),
        Some(Err(err)) => tracing::warn!(error = %err, "the upstream could not count tokens; estimating"),
        None => {}
    }
    if let Some(what) = untranslatable {
        return Err(ApiFailure::bad_request(format!("{what} cannot be counted for this model's provider")));
    }
    let Some(estimate) = gateway.router.estimate(&request).await else {
        return Err(ApiFailure::new(
            ErrorKind::NotFound,
            format!("no deployment serves the model `{}`", crate::bounds::shown(&request.model)),
        )
        .code("model_not_found"));
    };
    Ok(answer(estimate.prompt_tokens, "estimate"))
}

fn answer(tokens: u64, how: &'static str) -> Response {
    let mut response = (StatusCode::OK, axum::Json(json!({"input_tokens": tokens}))).into_response();
    response.headers_mut().insert(COUNT_HEADER, HeaderValue::from_static(how));
    response
}
