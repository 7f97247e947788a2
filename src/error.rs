//! One error type for every provider, with OpenAI's taxonomy of kinds.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;

use crate::catalog::ProviderKind;

/// What went wrong, in OpenAI's taxonomy. Every provider's errors map onto these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request is malformed or has a bad value (HTTP 400, 413, 422).
    InvalidRequest,
    /// The key is missing, wrong or revoked (401).
    Authentication,
    /// The key may not do this (403), or the account has no quota left.
    PermissionDenied,
    /// The model, deployment or route does not exist (404).
    NotFound,
    /// Too many requests or tokens (429).
    RateLimited,
    /// The prompt and the requested output do not fit the model's context window.
    ContextLengthExceeded,
    /// A content filter blocked the prompt or the answer.
    ContentFiltered,
    /// The provider is overloaded or unavailable (503, Anthropic's 529).
    Overloaded,
    /// The provider failed (500, 502), or its answer could not be read.
    Server,
    /// The request timed out (408, or a local timeout).
    Timeout,
}

impl ErrorKind {
    /// The kind an HTTP status means when the body says nothing more (every provider's error
    /// decoder starts from this, then refines it with what the body says).
    pub fn from_status(status: http::StatusCode) -> Self {
        match status.as_u16() {
            401 => Self::Authentication,
            402 | 403 => Self::PermissionDenied,
            404 => Self::NotFound,
            408 => Self::Timeout,
            429 => Self::RateLimited,
            503 | 529 => Self::Overloaded,
            504 => Self::Timeout,
            500..=599 => Self::Server,
            _ => Self::InvalidRequest,
        }
    }

    /// OpenAI's `type` string for this kind, as the gateway writes it in error envelopes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request_error",
            Self::Authentication => "authentication_error",
            Self::PermissionDenied => "permission_denied",
            Self::NotFound => "not_found_error",
            Self::RateLimited => "rate_limit_error",
            Self::ContextLengthExceeded => "context_length_exceeded",
            Self::ContentFiltered => "content_filter",
            Self::Overloaded => "overloaded_error",
            Self::Server => "server_error",
            Self::Timeout => "timeout",
        }
    }

    /// Every kind, in declaration order.
    pub const ALL: [ErrorKind; 10] = [
        Self::InvalidRequest,
        Self::Authentication,
        Self::PermissionDenied,
        Self::NotFound,
        Self::RateLimited,
        Self::ContextLengthExceeded,
        Self::ContentFiltered,
        Self::Overloaded,
        Self::Server,
        Self::Timeout,
    ];

    /// The kind's name in snake case (`rate_limited`), as configuration and reports spell it.
    pub fn name(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::Authentication => "authentication",
            Self::PermissionDenied => "permission_denied",
            Self::NotFound => "not_found",
            Self::RateLimited => "rate_limited",
            Self::ContextLengthExceeded => "context_length_exceeded",
            Self::ContentFiltered => "content_filtered",
            Self::Overloaded => "overloaded",
            Self::Server => "server",
            Self::Timeout => "timeout",
        }
    }

    /// The kind with this [`ErrorKind::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The HTTP status an OpenAI-compatible server answers with for this kind.
    pub fn http_status(self) -> u16 {
        match self {
            Self::InvalidRequest | Self::ContextLengthExceeded | Self::ContentFiltered => 400,
            Self::Authentication => 401,
            Self::PermissionDenied => 403,
            Self::NotFound => 404,
            Self::Timeout => 408,
            Self::RateLimited => 429,
            Self::Server => 500,
            Self::Overloaded => 503,
        }
    }

    /// Whether trying again (later, or elsewhere) can succeed.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::RateLimited | Self::Overloaded | Self::Server | Self::Timeout)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error answer from a provider, mapped to [`ErrorKind`].
#[derive(Clone)]
#[non_exhaustive]
pub struct ApiError {
    /// The provider that answered.
    pub provider: ProviderKind,
    /// The upstream HTTP status (for an error inside a stream, the status that kind maps to).
    pub status: u16,
    /// What went wrong.
    pub kind: ErrorKind,
    /// The provider's message.
    pub message: String,
    /// The provider's error type string (`invalid_request_error`, `ValidationException`, ...).
    pub error_type: Option<String>,
    /// The provider's error code (`context_length_exceeded`, `rate_limit_exceeded`, ...).
    pub code: Option<String>,
    /// The request parameter at fault, where the provider names one.
    pub param: Option<String>,
    /// How long the provider asked us to wait (`Retry-After`, `retry-after-ms`, ...).
    pub retry_after: Option<Duration>,
    /// The provider's request id, for support tickets.
    pub request_id: Option<String>,
    /// The raw body, kept for debugging; never shown by `Display`.
    pub body: Bytes,
}

impl ApiError {
    /// A new error with only the essentials; the rest is filled in with the `with_` methods.
    pub fn new(provider: ProviderKind, status: u16, kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            provider,
            status,
            kind,
            message: message.into(),
            error_type: None,
            code: None,
            param: None,
            retry_after: None,
            request_id: None,
            body: Bytes::new(),
        }
    }

    /// Whether trying again can succeed. A 429 for an exhausted quota cannot.
    pub fn is_retryable(&self) -> bool {
        if self.code.as_deref() == Some("insufficient_quota") {
            return false;
        }
        self.kind.is_retryable() || matches!(self.status, 408 | 409)
    }
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiError")
            .field("provider", &self.provider)
            .field("status", &self.status)
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("error_type", &self.error_type)
            .field("code", &self.code)
            .field("param", &self.param)
            .field("retry_after", &self.retry_after)
            .field("request_id", &self.request_id)
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} returned {} ({}): {}", self.provider, self.status, self.kind, self.message)?;
        if let Some(code) = &self.code {
            write!(f, " [code {code}]")?;
        }
        if let Some(param) = &self.param {
            write!(f, " [param {param}]")?;
        }
        if let Some(wait) = self.retry_after {
            write!(f, " [retry after {:.1}s]", wait.as_secs_f64())?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

/// Which deadline passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeoutPhase {
    /// Establishing the connection.
    Connect,
    /// Waiting for the response to start.
    FirstByte,
    /// Waiting for the next piece of the body or stream.
    Idle,
    /// The whole request (when a total timeout is set).
    Total,
}

impl fmt::Display for TimeoutPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "connecting",
            Self::FirstByte => "waiting for the first byte",
            Self::Idle => "waiting for more of the response",
            Self::Total => "for the whole request",
        })
    }
}

/// Every error the SDK returns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The provider answered with an error.
    #[error(transparent)]
    Api(Box<ApiError>),
    /// The request could not be sent or the connection broke.
    #[error("transport error talking to {provider}: {message}")]
    Transport {
        /// The provider being called.
        provider: ProviderKind,
        /// What failed.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// A deadline passed.
    #[error("timed out {phase} ({after:?}) talking to {provider}")]
    Timeout {
        /// The provider being called.
        provider: ProviderKind,
        /// Which deadline.
        phase: TimeoutPhase,
        /// The deadline that passed.
        after: Duration,
    },
    /// The provider's answer could not be read.
    #[error("could not decode {provider}'s {what}: {message}")]
    Decode {
        /// The provider that answered.
        provider: ProviderKind,
        /// What was being decoded (`response`, `stream event`, ...).
        what: &'static str,
        /// Why it failed.
        message: String,
        /// The bytes that failed to decode (not shown by `Display`).
        body: Bytes,
    },
    /// An upstream's answer passed a size limit: a body, one stream event, or a whole
    /// stream. Memory is bounded whatever an upstream sends.
    #[error("{provider}'s {what} is larger than the {limit}-byte limit")]
    TooLarge {
        /// The provider that answered.
        provider: ProviderKind,
        /// What was too large (`response body`, `stream event`, `stream`).
        what: &'static str,
        /// The limit, in bytes.
        limit: usize,
    },
    /// A stream broke off or went wrong after it started.
    #[error("{provider} stream failed ({kind}): {message}")]
    Stream {
        /// The provider streaming.
        provider: ProviderKind,
        /// What went wrong.
        kind: ErrorKind,
        /// Details.
        message: String,
    },
    /// The provider cannot express something the request asks for. Set `drop_params` to
    /// drop such parameters instead.
    #[error("{provider} does not support {feature}")]
    Unsupported {
        /// The provider.
        provider: ProviderKind,
        /// The parameter or feature, named as in the request.
        feature: String,
    },
    /// The request is invalid before anything is sent.
    #[error("invalid request: {message}")]
    InvalidRequest {
        /// What is wrong.
        message: String,
        /// The parameter at fault, where there is one.
        param: Option<String>,
    },
    /// The client is misconfigured (missing key, bad URL, unknown provider, ...).
    #[error("configuration error: {0}")]
    Config(String),
    /// The shared state (the router's cooldowns and counts, the response cache, in Redis)
    /// could not be read or written.
    #[error("shared state unavailable: {0}")]
    State(String),
    /// The gateway's database (keys, teams, spend rows) could not be read or written.
    #[error("database unavailable: {0}")]
    Store(String),
    /// A value of our own could not be encoded (a cached answer into JSON or into chunks):
    /// a bug, not a condition of the call.
    #[error("internal error: {0}")]
    Internal(String),
    /// The router could not place the call: an unknown model group, every deployment cooling
    /// down or at its limits, or a prompt larger than every deployment's context window.
    #[error("{message}")]
    Routing {
        /// What kind of failure this is (`NotFound`, `RateLimited`, `ContextLengthExceeded`).
        kind: ErrorKind,
        /// What happened, naming the group.
        message: String,
        /// When a deployment will be available again, if one will.
        retry_after: Option<Duration>,
    },
}

impl Error {
    /// The kind of error, in OpenAI's taxonomy.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Api(api) => api.kind,
            Self::Transport { .. } | Self::Decode { .. } | Self::TooLarge { .. } => ErrorKind::Server,
            Self::Timeout { .. } => ErrorKind::Timeout,
            Self::Stream { kind, .. } => *kind,
            Self::Unsupported { .. } | Self::InvalidRequest { .. } => ErrorKind::InvalidRequest,
            Self::Config(_) => ErrorKind::InvalidRequest,
            Self::State(_) | Self::Store(_) | Self::Internal(_) => ErrorKind::Server,
            Self::Routing { kind, .. } => *kind,
        }
    }

    /// The upstream HTTP status, for errors the provider answered with.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api(api) => Some(api.status),
            _ => None,
        }
    }

    /// The provider's error details, for errors the provider answered with.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Self::Api(api) => Some(api),
            _ => None,
        }
    }

    /// How long the provider asked us to wait before trying again.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Routing { retry_after, .. } => *retry_after,
            _ => self.api().and_then(|api| api.retry_after),
        }
    }

    /// Whether trying again (later, or on another deployment) can succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Api(api) => api.is_retryable(),
            Self::Transport { .. } | Self::Timeout { .. } | Self::State(_) | Self::Store(_) => true,
            Self::Stream { kind, .. } | Self::Routing { kind, .. } => kind.is_retryable(),
            Self::Decode { .. }
            | Self::TooLarge { .. }
            | Self::Unsupported { .. }
            | Self::InvalidRequest { .. }
            | Self::Internal(_)
            | Self::Config(_) => false,
        }
    }

    /// The error as raised by `provider`: a provider that speaks another's format (Claude on
    /// Vertex AI or Bedrock, in Anthropic's) decodes with that one's code, and its errors
    /// must name the provider that was called.
    pub(crate) fn answered_by(mut self, provider: ProviderKind) -> Self {
        match &mut self {
            Self::Api(api) => api.provider = provider,
            Self::Transport { provider: p, .. }
            | Self::Timeout { provider: p, .. }
            | Self::Decode { provider: p, .. }
            | Self::TooLarge { provider: p, .. }
            | Self::Stream { provider: p, .. }
            | Self::Unsupported { provider: p, .. } => *p = provider,
            _ => {}
        }
        self
    }

    /// The error with every occurrence of `secrets` in its text (message and kept body)
    /// replaced by `[redacted]`: an upstream that echoes the credential it was sent must not
    /// pass it on to whoever reads the error (a gateway's client, a log).
    pub fn redact(self, secrets: &[secrecy::SecretString]) -> Self {
        use secrecy::ExposeSecret as _;
        let secrets: Vec<&str> = secrets.iter().map(|s| s.expose_secret()).filter(|s| s.len() >= 8).collect();
        if secrets.is_empty() {
            return self;
        }
        let text = |text: &mut String| {
            for secret in &secrets {
                if text.contains(secret) {
                    *text = text.replace(secret, "[redacted]");
                }
            }
        };
        let bytes = |body: &mut Bytes| {
            for secret in &secrets {
                if memchr::memmem::find(body, secret.as_bytes()).is_some() {
                    let replaced = String::from_utf8_lossy(body).replace(secret, "[redacted]");
                    *body = Bytes::from(replaced);
                }
            }
        };
        match self {
            Self::Api(mut api) => {
                text(&mut api.message);
                bytes(&mut api.body);
                Self::Api(api)
            }
            Self::Transport { provider, mut message, source } => {
                text(&mut message);
                // The source's text may hold it too; what it said is in the message.
                let source = if secrets.iter().any(|s| source.as_ref().is_some_and(|e| e.to_string().contains(s))) {
                    None
                } else {
                    source
                };
                Self::Transport { provider, message, source }
            }
            Self::Decode { provider, what, mut message, mut body } => {
                text(&mut message);
                bytes(&mut body);
                Self::Decode { provider, what, message, body }
            }
            Self::Stream { provider, kind, mut message } => {
                text(&mut message);
                Self::Stream { provider, kind, message }
            }
            other => other,
        }
    }

    /// A Redis command failed (shared state or the cache).
    #[cfg(feature = "redis")]
    pub(crate) fn redis(e: redis::RedisError) -> Self {
        Self::State(format!("redis: {e}"))
    }

    pub(crate) fn invalid(message: impl Into<String>, param: Option<&str>) -> Self {
        Self::InvalidRequest { message: message.into(), param: param.map(str::to_string) }
    }

    pub(crate) fn decode(provider: ProviderKind, what: &'static str, err: impl fmt::Display, body: Bytes) -> Self {
        Self::Decode { provider, what, message: err.to_string(), body }
    }
}

impl From<ApiError> for Error {
    fn from(api: ApiError) -> Self {
        Self::Api(Box::new(api))
    }
}

impl From<crate::spec::ext::OutOfRange> for Error {
    fn from(invalid: crate::spec::ext::OutOfRange) -> Self {
        Self::InvalidRequest { message: invalid.message, param: Some(invalid.param.to_string()) }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_store_and_internal_failures_are_told_apart() {
        let state = Error::State("redis: connection refused".into());
        let store = Error::Store("pool timed out".into());
        let internal = Error::Internal("cache: a float that is not a number".into());
        for err in [&state, &store, &internal] {
            assert_eq!(err.kind(), ErrorKind::Server, "{err}");
        }
        assert!(state.is_retryable() && store.is_retryable(), "an unreachable backend may come back");
        assert!(!internal.is_retryable(), "a bug does not go away by trying again");
        assert_eq!(store.to_string(), "database unavailable: pool timed out");
    }
}
