//! Google's error envelope, `{"error": {"code", "message", "status", "details"}}`, for Gemini
//! and Vertex AI, as an HTTP answer or as an event inside a stream.
//!
//! A bad AI Studio key is a 400 `INVALID_ARGUMENT` whose details say `API_KEY_INVALID`: that
//! is `authentication`, whatever the status. A 429's wait is not a header but a
//! `google.rpc.RetryInfo` detail (`"retryDelay": "37s"`); it is read into `retry_after`
//! (LiteLLM does not expose it). A 503 is `overloaded`.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::{Map, Value};

use crate::error::{ApiError, ErrorKind};
use crate::provider::ProviderKind;
use crate::provider::errors::request_id;
use crate::spec::gemini::{ErrorResponse, Status};
use crate::transport::retry::retry_after;

/// Maps a Gemini or Vertex AI error answer.
pub fn decode_error(kind: ProviderKind, status: StatusCode, headers: &HeaderMap, body: &Bytes) -> ApiError {
    let Ok(parsed) = serde_json::from_slice::<ErrorResponse>(body) else {
        return crate::provider::errors::decode_error(kind, status, headers, body);
    };
    let mut err = from_status(kind, &parsed.error, Some(status));
    err.retry_after = retry_after(headers).or(err.retry_after);
    err.request_id = request_id(headers);
    err.body = body.clone();
    err
}

/// An [`ApiError`] from a `google.rpc.Status`; `status` is the HTTP status when there is one.
pub(crate) fn from_status(kind: ProviderKind, error: &Status, http: Option<StatusCode>) -> ApiError {
    let message = error.message.clone().unwrap_or_else(|| "error without a message".into());
    let rpc = error.status.as_deref().unwrap_or("");
    let details = error.details.as_deref().unwrap_or_default();
    let reason = details.iter().find_map(|d| d.get("reason").and_then(Value::as_str));
    let error_kind = if reason == Some("API_KEY_INVALID") {
        ErrorKind::Authentication
    } else if is_context_length(&message) {
        ErrorKind::ContextLengthExceeded
    } else {
        match rpc {
            "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => ErrorKind::InvalidRequest,
            "UNAUTHENTICATED" => ErrorKind::Authentication,
            "PERMISSION_DENIED" => ErrorKind::PermissionDenied,
            "NOT_FOUND" => ErrorKind::NotFound,
            "RESOURCE_EXHAUSTED" => ErrorKind::RateLimited,
            "UNAVAILABLE" => ErrorKind::Overloaded,
            "DEADLINE_EXCEEDED" => ErrorKind::Timeout,
            "INTERNAL" | "UNKNOWN" | "DATA_LOSS" => ErrorKind::Server,
            _ => http.map_or(ErrorKind::Server, ErrorKind::from_status),
        }
    };
    let status = http.map_or_else(|| error_kind.http_status(), |s| s.as_u16());
    let mut err = ApiError::new(kind, status, error_kind, message);
    err.error_type = error.status.clone();
    err.code = reason.map(str::to_string);
    err.retry_after = retry_delay(details);
    err
}

/// The wait in a `google.rpc.RetryInfo` detail: `"37s"`, `"1.5s"`.
fn retry_delay(details: &[Map<String, Value>]) -> Option<Duration> {
    let delay = details
        .iter()
        .filter(|d| d.get("@type").and_then(Value::as_str).is_some_and(|t| t.ends_with("google.rpc.RetryInfo")))
        .find_map(|d| d.get("retryDelay").and_then(Value::as_str))?;
    let seconds: f64 = delay.strip_suffix('s')?.parse().ok()?;
    crate::bounds::capped_secs(seconds, crate::bounds::MAX_RETRY_AFTER)
}

/// "The input token count (1048577) exceeds the maximum number of tokens allowed (1048576)."
fn is_context_length(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("exceeds the maximum number of tokens") || lower.contains("input token count")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(json: &str) -> Status {
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn api_key_invalid_is_authentication_and_retry_info_is_read() {
        let bad_key = status(
            r#"{"code":400,"message":"API key not valid.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}"#,
        );
        let err = from_status(ProviderKind::Gemini, &bad_key, Some(StatusCode::BAD_REQUEST));
        assert_eq!(
            (err.kind, err.status, err.code.as_deref()),
            (ErrorKind::Authentication, 400, Some("API_KEY_INVALID"))
        );
        let limited = status(
            r#"{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"37s"}]}"#,
        );
        let err = from_status(ProviderKind::Gemini, &limited, Some(StatusCode::TOO_MANY_REQUESTS));
        assert_eq!((err.kind, err.retry_after), (ErrorKind::RateLimited, Some(Duration::from_secs(37))));
    }

    #[test]
    fn a_huge_retry_delay_is_capped_not_a_panic() {
        for delay in ["1e300s", "1e22s", "inf s", "NaNs", "-5s"] {
            let limited = status(&format!(
                r#"{{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED","details":[{{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"{delay}"}}]}}"#
            ));
            let err = from_status(ProviderKind::Gemini, &limited, Some(StatusCode::TOO_MANY_REQUESTS));
            assert!(
                err.retry_after.is_none_or(|d| d <= crate::bounds::MAX_RETRY_AFTER),
                "{delay}: {:?}",
                err.retry_after
            );
        }
    }
}
