//! Cohere errors: `{"id": ..., "message": ...}` with the meaning in the HTTP status (400,
//! 401, 402, 404, 422, 429, 499, 500, 503 ...). An over-long prompt is a 400 whose message
//! says "too many tokens"; it is `context_length_exceeded`. LiteLLM hides any retry-after;
//! it is kept here.

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use crate::error::{ApiError, ErrorKind};
use crate::provider::ProviderKind;
use crate::spec::cohere::ErrorBody;
use crate::transport::retry::retry_after;

/// Maps a Cohere error answer.
pub fn decode_error(status: StatusCode, headers: &HeaderMap, body: &Bytes) -> ApiError {
    let parsed = serde_json::from_slice::<ErrorBody>(body).ok();
    let message = parsed
        .as_ref()
        .and_then(|p| p.message.clone())
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().chars().take(500).collect());
    let kind = classify(status, &message);
    let mut err = ApiError::new(ProviderKind::Cohere, status.as_u16(), kind, message);
    err.retry_after = retry_after(headers);
    err.request_id = parsed
        .and_then(|p| p.id)
        .or_else(|| headers.get("x-trace-id").and_then(|v| v.to_str().ok()).map(str::to_string));
    err.body = body.clone();
    err
}

/// The kind of a Cohere error, from its status and message.
pub fn classify(status: StatusCode, message: &str) -> ErrorKind {
    let lower = message.to_ascii_lowercase();
    match status.as_u16() {
        400 | 422 if ["too many tokens", "context length", "too long"].iter().any(|n| lower.contains(n)) => {
            ErrorKind::ContextLengthExceeded
        }
        // 499: the request was cancelled on Cohere's side (or by a proxy); trying again can work.
        499 => ErrorKind::Server,
        _ => ErrorKind::from_status(status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_messages_map_to_kinds() {
        let kind = |s: u16, m: &str| classify(StatusCode::from_u16(s).unwrap_or(StatusCode::BAD_REQUEST), m);
        assert_eq!(
            kind(400, "too many tokens: total number of tokens in the prompt cannot exceed 4081 - received 4292"),
            ErrorKind::ContextLengthExceeded
        );
        assert_eq!(kind(400, "invalid request: message must be at least 1 token long"), ErrorKind::InvalidRequest);
        assert_eq!(kind(402, "Please add a payment method"), ErrorKind::PermissionDenied);
        assert_eq!(kind(429, "trial key rate limit"), ErrorKind::RateLimited);
        assert_eq!(kind(499, "request cancelled"), ErrorKind::Server);
    }
}
