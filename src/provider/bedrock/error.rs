//! Bedrock errors: `{"message": ...}` with the type in the `x-amzn-ErrorType` header
//! (`ValidationException:http://internal.amazon.com/...`), or `__type` in the body
//! (`com.amazon.coral.validate#ValidationException`); inside a stream, exception frames
//! with the type in `:exception-type` (`throttlingException`).
//!
//! LiteLLM reports a Bedrock 500 as a 503 ServiceUnavailableError; here an
//! InternalServerException is `server` and keeps its 500, while ServiceUnavailable and
//! ModelNotReady are `overloaded`. AWS's signature and token errors (403 with
//! UnrecognizedClient, InvalidSignature, ExpiredToken) are `authentication`, not
//! `permission_denied`: the fix is new credentials, not new permissions.

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use crate::error::{ApiError, ErrorKind};
use crate::provider::ProviderKind;
use crate::spec::bedrock::ErrorBody;
use crate::transport::retry::retry_after;

/// Maps a Bedrock error answer.
pub fn decode_error(status: StatusCode, headers: &HeaderMap, body: &Bytes) -> ApiError {
    let parsed = serde_json::from_slice::<ErrorBody>(body).ok();
    let header_type = headers.get("x-amzn-errortype").and_then(|v| v.to_str().ok());
    let error_type = header_type.or(parsed.as_ref().and_then(|p| p.type_.as_deref())).map(short_type);
    let message = parsed
        .as_ref()
        .and_then(|p| p.message.clone().or_else(|| p.extra.get("Message").and_then(|m| m.as_str()).map(str::to_string)))
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().chars().take(500).collect());
    let kind = classify(error_type.unwrap_or_default(), &message, Some(status));
    let mut err = ApiError::new(ProviderKind::Bedrock, status.as_u16(), kind, message);
    err.error_type = error_type.map(str::to_string);
    err.retry_after = retry_after(headers);
    err.request_id = headers.get("x-amzn-requestid").and_then(|v| v.to_str().ok()).map(str::to_string);
    err.body = body.clone();
    err
}

/// `ValidationException` from `ValidationException:http://...` or `com.amazon...#ValidationException`.
fn short_type(raw: &str) -> &str {
    let raw = raw.split(':').next().unwrap_or(raw);
    raw.rsplit('#').next().unwrap_or(raw)
}

/// The kind of a Bedrock error type (HTTP `ValidationException` or stream
/// `validationException`), refined by the message; the status decides for unknown types.
pub fn classify(error_type: &str, message: &str, status: Option<StatusCode>) -> ErrorKind {
    let lower = error_type.to_ascii_lowercase();
    match lower.as_str() {
        "validationexception" if is_context_length(message) => ErrorKind::ContextLengthExceeded,
        "validationexception" | "serializationexception" => ErrorKind::InvalidRequest,
        "unrecognizedclientexception"
        | "invalidsignatureexception"
        | "incompletesignatureexception"
        | "expiredtokenexception"
        | "missingauthenticationtokenexception" => ErrorKind::Authentication,
        "accessdeniedexception" => ErrorKind::PermissionDenied,
        "resourcenotfoundexception" => ErrorKind::NotFound,
        "throttlingexception" | "servicequotaexceededexception" | "toomanyrequestsexception" => ErrorKind::RateLimited,
        "serviceunavailableexception" | "modelnotreadyexception" => ErrorKind::Overloaded,
        "modeltimeoutexception" => ErrorKind::Timeout,
        "internalserverexception" | "modelerrorexception" | "modelstreamerrorexception" => ErrorKind::Server,
        _ => status.map_or(ErrorKind::Server, ErrorKind::from_status),
    }
}

/// "Input is too long for requested model.", "prompt is too long", and similar.
fn is_context_length(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    ["too long", "context window", "maximum context length", "context length", "too many input tokens"]
        .iter()
        .any(|needle| lower.contains(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_map_to_kinds_whatever_their_spelling() {
        let kind = |t: &str, m: &str| classify(t, m, Some(StatusCode::BAD_REQUEST));
        assert_eq!(
            kind("ValidationException", "Input is too long for requested model."),
            ErrorKind::ContextLengthExceeded
        );
        assert_eq!(kind("validationException", "messages: field required"), ErrorKind::InvalidRequest);
        assert_eq!(kind("throttlingException", "slow down"), ErrorKind::RateLimited);
        assert_eq!(kind("ModelNotReadyException", "warming up"), ErrorKind::Overloaded);
        assert_eq!(
            kind("UnrecognizedClientException", "The security token included in the request is invalid."),
            ErrorKind::Authentication
        );
        assert_eq!(kind("BrandNewException", "?"), ErrorKind::InvalidRequest);
        assert_eq!(
            short_type("ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"),
            "ValidationException"
        );
        assert_eq!(short_type("com.amazon.coral.validate#ValidationException"), "ValidationException");
    }

    #[test]
    fn a_body_that_is_not_json_still_gives_a_message() {
        let err =
            decode_error(StatusCode::BAD_GATEWAY, &HeaderMap::new(), &Bytes::from_static(b"<html>bad gateway</html>"));
        assert_eq!((err.kind, err.status), (ErrorKind::Server, 502));
        assert!(err.message.contains("bad gateway"));
    }
}
