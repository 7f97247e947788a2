//! Anthropic errors: `{"type": "error", "error": {"type", "message"}, "request_id"}`, as an
//! HTTP answer or as an `error` event inside a stream.
//!
//! LiteLLM reports a 529 as a 500 InternalServerError and a 413 as a 400; here a 529 is
//! `overloaded` (retryable; the gateway answers 503) and a 413 keeps its status, because
//! callers deciding whether to retry or shrink the request need the real reason.

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use crate::error::{ApiError, ErrorKind};
use crate::provider::ProviderKind;
use crate::spec::anthropic::{ErrorResponse, ErrorType};
use crate::transport::retry::retry_after;

/// Maps an Anthropic error answer.
pub fn decode_error(status: StatusCode, headers: &HeaderMap, body: &Bytes) -> ApiError {
    let Ok(parsed) = serde_json::from_slice::<ErrorResponse>(body) else {
        // Not Anthropic's envelope (a proxy's page, a gateway in between): read it as any
        // OpenAI-format server's error.
        return crate::provider::errors::decode_error(ProviderKind::Anthropic, status, headers, body);
    };
    let kind = classify(&parsed.error.type_, &parsed.error.message, Some(status));
    let mut err = ApiError::new(ProviderKind::Anthropic, status.as_u16(), kind, parsed.error.message);
    err.error_type = Some(parsed.error.type_.as_str().to_string());
    err.retry_after = retry_after(headers);
    err.request_id = parsed
        .request_id
        .into_option()
        .or_else(|| headers.get("request-id").and_then(|v| v.to_str().ok()).map(str::to_string));
    err.body = body.clone();
    err
}

/// The kind of an Anthropic error, from its type, refined by the message; the status is
/// used only for types this version does not know.
pub fn classify(error_type: &ErrorType, message: &str, status: Option<StatusCode>) -> ErrorKind {
    match error_type {
        ErrorType::InvalidRequestError if is_context_length(message) => ErrorKind::ContextLengthExceeded,
        ErrorType::InvalidRequestError | ErrorType::RequestTooLarge => ErrorKind::InvalidRequest,
        ErrorType::AuthenticationError => ErrorKind::Authentication,
        ErrorType::BillingError | ErrorType::PermissionError => ErrorKind::PermissionDenied,
        ErrorType::NotFoundError => ErrorKind::NotFound,
        ErrorType::RateLimitError => ErrorKind::RateLimited,
        ErrorType::TimeoutError => ErrorKind::Timeout,
        ErrorType::ApiError => ErrorKind::Server,
        ErrorType::OverloadedError => ErrorKind::Overloaded,
        ErrorType::Other(_) => status.map_or(ErrorKind::Server, ErrorKind::from_status),
    }
}

/// "prompt is too long: 210000 tokens > 200000 maximum", and the older wordings.
fn is_context_length(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    ["prompt is too long", "exceed context limit", "context window", "maximum context length"]
        .iter()
        .any(|needle| lower.contains(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_map_to_kinds_and_context_length_is_recognised() {
        let kind = |t: &str, m: &str| classify(&ErrorType::from(t), m, Some(StatusCode::BAD_REQUEST));
        assert_eq!(
            kind("invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"),
            ErrorKind::ContextLengthExceeded
        );
        assert_eq!(kind("invalid_request_error", "max_tokens: must be positive"), ErrorKind::InvalidRequest);
        assert_eq!(kind("overloaded_error", "Overloaded"), ErrorKind::Overloaded);
        assert_eq!(kind("billing_error", "no credit"), ErrorKind::PermissionDenied);
        assert_eq!(kind("brand_new_error", "?"), ErrorKind::InvalidRequest);
    }

    #[test]
    fn a_body_that_is_not_anthropic_s_is_still_read() {
        let err =
            decode_error(StatusCode::BAD_GATEWAY, &HeaderMap::new(), &Bytes::from_static(b"<html>bad gateway</html>"));
        assert_eq!((err.kind, err.status), (ErrorKind::Server, 502));
    }
}
