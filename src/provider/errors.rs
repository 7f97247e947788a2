//! Error answers in OpenAI's envelope, and the tolerant reader every provider falls back on
//! for a body that is not its own envelope; shared by OpenAI, Azure and every compatible vendor.
//!
//! Compatible servers disagree about the envelope, so every shape seen in the field is read:
//! `{"error": {...}}` (OpenAI, Azure, Groq, DeepSeek), `{"error": "text"}` (Ollama),
//! `{"message": ..., "type": ..., "code": ...}` (vLLM, Mistral), `{"detail": ...}` (FastAPI
//! validation errors), and bodies that are not JSON at all (a proxy's HTML page).

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::Value;

use crate::error::{ApiError, ErrorKind};
use crate::provider::ProviderKind;
use crate::transport::retry::retry_after;

/// Maps an OpenAI-format error answer to an [`ApiError`].
pub fn decode_error(provider: ProviderKind, status: StatusCode, headers: &HeaderMap, body: &Bytes) -> ApiError {
    let parsed = serde_json::from_slice::<Value>(body).ok();
    let fields = parsed.as_ref().map(fields).unwrap_or_default();
    let message = fields.message.clone().unwrap_or_else(|| fallback_message(status, headers, body, parsed.is_some()));
    let kind = classify(status, &fields, &message);
    let mut err = ApiError::new(provider, status.as_u16(), kind, message);
    err.error_type = fields.error_type;
    err.code = fields.code;
    err.param = fields.param;
    err.retry_after = retry_after(headers);
    err.request_id = request_id(headers);
    err.body = body.clone();
    err
}

/// The fields of an error envelope, wherever the server put them.
#[derive(Default, Debug)]
pub(crate) struct ErrorFields {
    pub message: Option<String>,
    pub error_type: Option<String>,
    pub code: Option<String>,
    pub param: Option<String>,
    pub inner_code: Option<String>,
}

pub(crate) fn fields(body: &Value) -> ErrorFields {
    let object = match body.get("error") {
        Some(Value::String(text)) => {
            return ErrorFields { message: Some(text.clone()), ..Default::default() };
        }
        Some(inner @ Value::Object(_)) => inner,
        _ => body,
    };
    let text = |key: &str| match object.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        // Some servers (Mistral's validation errors) put a structure in `message`.
        Some(other @ (Value::Object(_) | Value::Array(_))) if key == "message" => Some(other.to_string()),
        _ => None,
    };
    let detail = match object.get("detail") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(other @ (Value::Array(_) | Value::Object(_))) => Some(other.to_string()),
        _ => None,
    };
    ErrorFields {
        message: text("message").or(detail),
        error_type: text("type"),
        code: text("code"),
        param: text("param"),
        inner_code: object.pointer("/innererror/code").and_then(Value::as_str).map(str::to_string),
    }
}

/// The kind, from the status refined by what the body says.
pub(crate) fn classify(status: StatusCode, fields: &ErrorFields, message: &str) -> ErrorKind {
    refine(fields, message).unwrap_or_else(|| ErrorKind::from_status(status))
}

/// The kind of an error that arrived without a status (an error event inside a stream): what
/// the body says specifically, else what its `type` names, else a server error.
pub(crate) fn classify_without_status(fields: &ErrorFields, message: &str) -> ErrorKind {
    refine(fields, message).or_else(|| kind_from_type(fields.error_type.as_deref())).unwrap_or(ErrorKind::Server)
}

/// The kinds a body can establish whatever the status: context length and content filters.
fn refine(fields: &ErrorFields, message: &str) -> Option<ErrorKind> {
    let code = fields.code.as_deref().unwrap_or("");
    if code == "context_length_exceeded" || is_context_length_message(message) {
        return Some(ErrorKind::ContextLengthExceeded);
    }
    if matches!(code, "content_filter" | "content_policy_violation")
        || fields.inner_code.as_deref() == Some("ResponsibleAIPolicyViolation")
    {
        return Some(ErrorKind::ContentFiltered);
    }
    None
}

/// The kind an OpenAI-format error `type` names.
fn kind_from_type(error_type: Option<&str>) -> Option<ErrorKind> {
    Some(match error_type? {
        "invalid_request_error" => ErrorKind::InvalidRequest,
        "authentication_error" => ErrorKind::Authentication,
        "permission_error" | "permission_denied" => ErrorKind::PermissionDenied,
        "not_found_error" => ErrorKind::NotFound,
        "rate_limit_error" | "rate_limit_exceeded" | "tokens" | "requests" => ErrorKind::RateLimited,
        "overloaded_error" | "service_unavailable" => ErrorKind::Overloaded,
        "server_error" | "api_error" => ErrorKind::Server,
        _ => return None,
    })
}

/// Messages OpenAI-format servers use for an over-long prompt.
fn is_context_length_message(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    ["maximum context length", "context_length_exceeded", "context length is", "prompt is too long"]
        .iter()
        .any(|needle| lower.contains(needle))
}

fn fallback_message(status: StatusCode, headers: &HeaderMap, body: &Bytes, is_json: bool) -> String {
    let reason = status.canonical_reason().unwrap_or("error");
    if body.is_empty() {
        return format!("HTTP {} {reason} with an empty body", status.as_u16());
    }
    if is_json {
        return format!("HTTP {} {reason}", status.as_u16());
    }
    let content_type =
        headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("no content type");
    format!("HTTP {} {reason} with a non-JSON body ({content_type})", status.as_u16())
}

/// The upstream's request id, under any of the usual header names.
pub fn request_id(headers: &HeaderMap) -> Option<String> {
    ["x-request-id", "request-id", "apim-request-id", "x-amzn-requestid"]
        .iter()
        .find_map(|name| headers.get(*name))
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}
