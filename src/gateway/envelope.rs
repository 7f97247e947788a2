//! The error envelopes the gateway answers with: OpenAI's on every route
//! (`{"error": {"message": ..., "type": ..., "param": ..., "code": ...}}`), and Anthropic's on
//! `/v1/messages` (`{"type": "error", "error": {"type": ..., "message": ...}}`), from one
//! [`ApiFailure`].

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::{Error, ErrorKind};

pub use crate::bounds::shown;

/// The longest error message answered: a message that quotes a client's value (serde's
/// "invalid type: string ..." quotes it whole) is cut here.
pub const MAX_MESSAGE: usize = 2048;

/// An error answer.
#[derive(Debug)]
pub struct ApiFailure {
    /// The status.
    pub status: StatusCode,
    /// OpenAI's `type`.
    pub kind: &'static str,
    /// What went wrong.
    pub message: String,
    /// The parameter at fault.
    pub param: Option<String>,
    /// A machine-readable code.
    pub code: Option<String>,
    /// Seconds to wait before trying again.
    pub retry_after: Option<u64>,
    /// Headers to answer with (the guardrails' decisions); boxed, as most failures have none.
    pub headers: Option<Box<Vec<(&'static str, String)>>>,
}

impl ApiFailure {
    /// A failure of `kind` with this message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        let mut message = message.into();
        if message.len() > MAX_MESSAGE {
            let cut = (0..=MAX_MESSAGE).rev().find(|&i| message.is_char_boundary(i)).unwrap_or(0);
            message.truncate(cut);
            message.push_str("... (cut)");
        }
        Self {
            status: StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            kind: kind.as_str(),
            message,
            param: None,
            code: None,
            retry_after: None,
            headers: None,
        }
    }

    /// Sets the code.
    #[must_use]
    pub fn code(mut self, code: &str) -> Self {
        self.code = Some(code.to_string());
        self
    }

    /// Sets the parameter at fault.
    #[must_use]
    pub fn param(mut self, param: &str) -> Self {
        self.param = Some(param.to_string());
        self
    }

    /// Sets the status.
    #[must_use]
    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// Adds a header to answer with.
    #[must_use]
    pub fn header(mut self, name: &'static str, value: String) -> Self {
        self.headers.get_or_insert_with(Default::default).push((name, value));
        self
    }

    /// A 400 for a body that is not a valid request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidRequest, message)
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        json!({"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}})
    }
}

impl From<&Error> for ApiFailure {
    fn from(err: &Error) -> Self {
        let kind = err.kind();
        let mut failure = Self::new(kind, err.to_string());
        failure.retry_after = err.retry_after().map(|d| d.as_secs_f64().ceil() as u64);
        match err {
            Error::Api(api) => {
                failure.code = api.code.clone();
                failure.param = api.param.clone();
                // An upstream's own failure is a bad gateway, not ours; its 5xx say so.
                if kind == ErrorKind::Server {
                    failure.status = StatusCode::BAD_GATEWAY;
                }
            }
            Error::InvalidRequest { param, .. } => failure.param = param.clone(),
            Error::Routing { kind: ErrorKind::NotFound, .. } => failure.code = Some("model_not_found".into()),
            Error::Timeout { .. } => failure.status = StatusCode::GATEWAY_TIMEOUT,
            // A stream the upstream broke (cut off, corrupt, an error event of its own).
            Error::Stream { kind: ErrorKind::Server, .. } => failure.status = StatusCode::BAD_GATEWAY,
            Error::Transport { .. } | Error::Decode { .. } | Error::TooLarge { .. } => {
                failure.status = StatusCode::BAD_GATEWAY;
            }
            _ => {}
        }
        if kind == ErrorKind::ContextLengthExceeded && failure.code.is_none() {
            failure.code = Some("context_length_exceeded".into());
        }
        failure
    }
}

impl From<Error> for ApiFailure {
    fn from(err: Error) -> Self {
        Self::from(&err)
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        let body = self.body();
        self.respond(body)
    }
}

impl ApiFailure {
    /// `body` with the failure's status, its `Retry-After` and its extra headers: the one
    /// place both envelopes get them.
    fn respond(&self, body: serde_json::Value) -> Response {
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        for (name, value) in self.headers.iter().flat_map(|h| h.iter()) {
            if let Ok(value) = HeaderValue::from_str(value) {
                response.headers_mut().insert(*name, value);
            }
        }
        response
    }
}

/// Anthropic's error envelope for a failure.
pub fn anthropic_error(failure: &ApiFailure) -> Response {
    let kind = match failure.status.as_u16() {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        _ => "api_error",
    };
    failure.respond(json!({"type": "error", "error": {"type": kind, "message": failure.message}}))
}
