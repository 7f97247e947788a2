//! The one HTTP client every provider shares: connection pooling, TLS (rustls) and
//! per-attempt timeouts; the [`RetryPolicy`] the engine applies between attempts. SSE framing
//! lives in [`sse`], Bedrock's event stream in [`eventstream`].
//!
//! There is deliberately no single global timeout: it would cut long streams. Instead each
//! attempt has a connect timeout, a first-byte timeout (until the response head arrives),
//! a total deadline for whole (non-stream) answers, so an upstream that sends its headers
//! and then stalls or drips cannot hold a call, and for streams an idle deadline between
//! complete lines or frames (not bytes: a drip that never finishes a line is idle).

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode};

use crate::catalog::ProviderKind;
use crate::error::{Error, Result, TimeoutPhase};

mod client;
pub mod eventstream;
mod frame;
pub mod retry;
pub mod sse;

pub use frame::Framer;
pub use retry::RetryPolicy;

/// Per-attempt deadlines.
#[derive(Clone, Debug)]
pub struct Timeouts {
    /// Establishing a connection (TCP and TLS). Default 10 s.
    pub connect: Duration,
    /// From sending the request to the response head (for a stream, the least of this and
    /// `idle`). Default 600 s, as OpenAI's own SDKs.
    pub first_byte: Duration,
    /// For streams, between two complete lines or frames (an SSE keep-alive comment
    /// counts); for whole answers, between two pieces of the body. Default 300 s (reasoning
    /// models can think silently for minutes). LiteLLM's `stream_timeout`.
    pub idle: Duration,
    /// A whole (non-stream) answer, from sending to its last byte, retries included when
    /// the client retries. Default 600 s, as OpenAI's own SDKs; `None` for no limit.
    /// LiteLLM's `timeout`.
    pub total: Option<Duration>,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            first_byte: Duration::from_secs(600),
            idle: Duration::from_secs(300),
            total: Some(Duration::from_secs(600)),
        }
    }
}

/// The largest non-stream body read by default (embedding batches can be large).
pub const DEFAULT_MAX_BODY: usize = 256 * 1024 * 1024;

/// The largest error body read; an error answer bigger than this is itself an error.
const MAX_ERROR_BODY: usize = 4 * 1024 * 1024;

thread_local! {
    static LANE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Gives this thread's calls connections of their own: an event loop that runs on one
/// thread (as each of the gateway's workers does) calls this once with its own number, and
/// its upstream connections are then opened and driven on that loop. Without it, a
/// connection opened by one loop and picked from the pool by another would hand every
/// request and its answer across threads (a wake-up each way). Threads that never call it
/// share lane 0, one pool, as a work-stealing runtime's threads should.
pub fn set_lane(lane: usize) {
    LANE.with(|l| l.set(lane % client::LANES));
}

/// The shared HTTP client with its policies. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Transport {
    http: Arc<client::Lanes>,
    timeouts: Arc<Timeouts>,
    max_body: usize,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("timeouts", &self.timeouts)
            .field("max_body", &self.max_body)
            .field("proxied", &self.http.proxied())
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// A transport with these policies.
    pub fn new(timeouts: Timeouts) -> Result<Self> {
        let http = Arc::new(client::Lanes::new(client::Settings::from_env(timeouts.connect))?);
        Ok(Self { http, timeouts: Arc::new(timeouts), max_body: DEFAULT_MAX_BODY })
    }

    /// The timeouts in force.
    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// How long a response head may take: for a stream, the idle deadline too (LiteLLM's
    /// `stream_timeout` bounds the wait for a stream's first chunk), so a provider that hangs
    /// before it starts is given up on sooner and another tried.
    pub fn first_byte(&self, stream: bool) -> Duration {
        if stream { self.timeouts.first_byte.min(self.timeouts.idle) } else { self.timeouts.first_byte }
    }

    /// Reads an error answer's body, bounded (for the provider's error decoder).
    pub async fn error_body(&self, provider: ProviderKind, raw: RawResponse) -> Result<Bytes> {
        raw.body.collect(provider, self.max_body.min(MAX_ERROR_BODY), self.timeouts.idle).await
    }

    /// Sends a request once, and returns the response head whatever its status, within
    /// `first_byte`. Redirects are not followed (see [`redirected`]).
    pub async fn send(
        &self,
        provider: ProviderKind,
        upstream: Upstream<'_>,
        request: http::Request<Bytes>,
        first_byte: Duration,
    ) -> Result<RawResponse> {
        let timed_out = || Error::Timeout { provider, phase: TimeoutPhase::FirstByte, after: first_byte };
        match upstream {
            Upstream::InProcess(upstream) => {
                tokio::time::timeout(first_byte, upstream.call(request)).await.map_err(|_| timed_out())
            }
            Upstream::Http => {
                tracing::debug!(%provider, method = %request.method(), uri = %request.uri(), "sending");
                let client = self.http.get(LANE.with(std::cell::Cell::get));
                let response = tokio::time::timeout(first_byte, client.send(request))
                    .await
                    .map_err(|_| timed_out())?
                    .map_err(|e| self.send_error(provider, e))?;
                Ok(RawResponse { status: response.status, headers: response.headers, body: Body::Http(response.body) })
            }
        }
    }

    fn send_error(&self, provider: ProviderKind, err: client::SendError) -> Error {
        let (connect, err) = match err {
            client::SendError::ConnectTimeout => {
                return Error::Timeout { provider, phase: TimeoutPhase::Connect, after: self.timeouts.connect };
            }
            client::SendError::Failed { connect, error } => (connect, error),
        };
        let mut message = (if connect { "could not connect" } else { "request failed" }).to_string();
        let mut source: Option<&dyn std::error::Error> = std::error::Error::source(&*err);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Error::Transport { provider, message, source: Some(err) }
    }

    /// The largest non-stream body this transport reads.
    pub fn max_body(&self) -> usize {
        self.max_body
    }
}

pub(crate) fn tls_config() -> Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls_platform_verifier::Verifier::new(provider.clone())
        .map_err(|e| Error::Config(format!("cannot load the system's TLS roots: {e}")))?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS configuration: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The error for a redirect from a provider endpoint: it is not followed, since the request
/// carries the provider's credential and body, and another origin's answer would reach the
/// client as the provider's.
pub(crate) fn redirected(provider: ProviderKind, status: StatusCode) -> Error {
    Error::Transport {
        provider,
        message: format!(
            "the upstream answered {} (a redirect); redirects from provider endpoints are not followed: check the deployment's api_base",
            status.as_u16()
        ),
        source: None,
    }
}

/// Where a provider's requests go.
pub enum Upstream<'a> {
    /// Over HTTP with the shared client.
    Http,
    /// Answered in this process (the mock provider).
    InProcess(&'a dyn InProcess),
}

impl fmt::Debug for Upstream<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Http => "Http",
            Self::InProcess(_) => "InProcess",
        })
    }
}

/// An upstream that answers in this process.
pub trait InProcess: Send + Sync {
    /// Answers one request.
    fn call(&self, request: http::Request<Bytes>) -> futures_core::future::BoxFuture<'static, RawResponse>;
}

/// A response head and a body still to be read.
#[derive(Debug)]
pub struct RawResponse {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Body,
}

impl RawResponse {
    /// A response with a whole body (used by in-process upstreams).
    pub fn full(status: StatusCode, headers: HeaderMap, body: Bytes) -> Self {
        Self { status, headers, body: Body::Chunks(VecDeque::from([Chunk { delay: Duration::ZERO, bytes: body }])) }
    }

    /// Reads the whole body into an `http::Response`.
    pub async fn into_full(
        self,
        provider: ProviderKind,
        max_body: usize,
        idle: Duration,
    ) -> Result<http::Response<Bytes>> {
        let body = self.body.collect(provider, max_body, idle).await?;
        let mut response = http::Response::new(body);
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers;
        Ok(response)
    }
}

/// A piece of an in-process body, delivered after a delay.
#[derive(Clone, Debug)]
pub struct Chunk {
    /// How long to wait before delivering it.
    pub delay: Duration,
    /// The bytes.
    pub bytes: Bytes,
}

/// A response body, read piece by piece.
#[derive(Debug)]
pub enum Body {
    /// From the network.
    Http(client::NetBody),
    /// From an in-process upstream.
    Chunks(VecDeque<Chunk>),
}

impl Body {
    /// The next piece, or `None` at the end; fails if none arrives within `idle`.
    pub async fn next_chunk(&mut self, provider: ProviderKind, idle: Duration) -> Result<Option<Bytes>> {
        let deadline = tokio::time::Instant::now().checked_add(idle);
        self.next_chunk_by(provider, deadline, idle).await
    }

    /// The next piece, or `None` at the end; fails at `deadline` (none: no deadline) with a
    /// timeout that names `idle`. One timer per piece, however the caller counts its time.
    pub(crate) async fn next_chunk_by(
        &mut self,
        provider: ProviderKind,
        deadline: Option<tokio::time::Instant>,
        idle: Duration,
    ) -> Result<Option<Bytes>> {
        let idle_timeout = || Error::Timeout { provider, phase: TimeoutPhase::Idle, after: idle };
        match self {
            Self::Http(body) => {
                let read = match deadline {
                    Some(deadline) => {
                        tokio::time::timeout_at(deadline, body.chunk()).await.map_err(|_| idle_timeout())?
                    }
                    None => body.chunk().await,
                };
                read.map_err(|e| Error::Transport {
                    provider,
                    message: format!("reading the response body: {e}"),
                    source: Some(e),
                })
            }
            Self::Chunks(chunks) => {
                let Some(chunk) = chunks.pop_front() else {
                    return Ok(None);
                };
                if let Some(deadline) = deadline
                    && tokio::time::Instant::now().checked_add(chunk.delay).is_none_or(|at| at > deadline)
                {
                    tokio::time::sleep_until(deadline).await;
                    return Err(idle_timeout());
                }
                if !chunk.delay.is_zero() {
                    tokio::time::sleep(chunk.delay).await;
                }
                Ok(Some(chunk.bytes))
            }
        }
    }

    /// Reads the rest of the body, up to `max` bytes.
    pub async fn collect(mut self, provider: ProviderKind, max: usize, idle: Duration) -> Result<Bytes> {
        let mut first: Option<Bytes> = None;
        let mut joined = BytesMut::new();
        while let Some(chunk) = self.next_chunk(provider, idle).await? {
            let len = first.as_ref().map_or(0, Bytes::len) + joined.len() + chunk.len();
            if len > max {
                return Err(Error::TooLarge { provider, what: "response body", limit: max });
            }
            match first.take() {
                None if joined.is_empty() => first = Some(chunk),
                None => joined.extend_from_slice(&chunk),
                Some(prev) => {
                    joined.extend_from_slice(&prev);
                    joined.extend_from_slice(&chunk);
                }
            }
        }
        Ok(first.unwrap_or_else(|| joined.freeze()))
    }
}
