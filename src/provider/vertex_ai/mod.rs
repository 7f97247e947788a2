//! Gemini on Vertex AI (`vertex_ai/...`, aiplatform v1, Google's publisher models), and
//! Claude on Vertex AI (`vertex_ai/claude-...`, Anthropic's publisher models: see `claude`).
//!
//! Upstream docs: <https://cloud.google.com/vertex-ai/generative-ai/docs/reference/rest>.
//! The wire format is Gemini's (`crate::provider::gemini`); what differs is the URL
//! (`https://{location}-aiplatform.googleapis.com/v1/projects/{project}/locations/{location}/publishers/google/models/{model}:generateContent`,
//! `aiplatform.googleapis.com` for the `global` location) and authentication: an OAuth bearer
//! token, from a token given directly (`VERTEXAI_ACCESS_TOKEN`), from a service account's JSON
//! key (`VERTEXAI_CREDENTIALS` or `GOOGLE_APPLICATION_CREDENTIALS`, a path or the JSON itself)
//! through `gcp_auth`, or else from Application Default Credentials (the metadata server,
//! `gcloud`). Tokens are cached and refreshed by `gcp_auth`. The last two need the
//! `gcp-auth` feature (on with the gateway); without it a token must be given.
//!
//! Vertex AI errors use Google's `google.rpc.Status` envelope, read by
//! `crate::provider::gemini::error`. Failing to get an access token is an `authentication`
//! error, or a transport error when the token endpoint cannot be reached (see `mod.rs`).
//!
//! Vertex AI answers are Gemini's (`crate::provider::gemini::response`), decoded by the same
//! code; `tests/conformance.rs` pins this with the `vertex_ai` cases.
//!
//! Vertex AI streams are Gemini's (`streamGenerateContent?alt=sse`), decoded by
//! `crate::provider::gemini::stream::Decoder`.

use std::fmt;
use std::sync::Arc;

use std::collections::VecDeque;

use bytes::Bytes;
use futures_core::future::BoxFuture;
use http::{HeaderMap, StatusCode};
use secrecy::{ExposeSecret, SecretString};
#[cfg(feature = "gcp-auth")]
use tokio::sync::OnceCell;

use crate::error::ApiError;
#[cfg(feature = "gcp-auth")]
use crate::error::ErrorKind;
use crate::error::{Error, Result};
use crate::provider::gemini::{Endpoint, Google, Method, resource_name};
use crate::provider::native::Native;
use crate::provider::requests::bearer;
use crate::provider::{Adapter, Credentials, Ctx, Flow, ProviderKind, StreamDecode, anthropic, gemini};
use crate::transport::sse::{SseEvent, SseFramer};
use crate::{ChatChunk, ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse, ModelList};

pub mod claude;
pub(crate) mod request;

/// The OAuth scope Vertex AI needs.
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// The location used when none is configured.
pub const DEFAULT_LOCATION: &str = "us-central1";

/// How Vertex AI requests get their bearer token.
pub enum VertexCredentials {
    /// A token given directly (it is not refreshed).
    Token(SecretString),
    /// A service account's JSON key.
    #[cfg(feature = "gcp-auth")]
    ServiceAccount(Arc<gcp_auth::CustomServiceAccount>),
    /// Application Default Credentials, looked up on first use.
    #[cfg(feature = "gcp-auth")]
    Default(OnceCell<Arc<dyn gcp_auth::TokenProvider>>),
}

impl fmt::Debug for VertexCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Token(_) => "Token([REDACTED])",
            #[cfg(feature = "gcp-auth")]
            Self::ServiceAccount(_) => "ServiceAccount([REDACTED])",
            #[cfg(feature = "gcp-auth")]
            Self::Default(_) => "Default",
        })
    }
}

impl VertexCredentials {
    /// Credentials from a service account key: the JSON itself, or a path to it.
    #[cfg(feature = "gcp-auth")]
    pub fn service_account(json_or_path: &str) -> Result<Self> {
        let account = if json_or_path.trim_start().starts_with('{') {
            gcp_auth::CustomServiceAccount::from_json(json_or_path)
        } else {
            gcp_auth::CustomServiceAccount::from_file(json_or_path)
        }
        .map_err(|e| Error::Config(format!("vertex_ai: cannot read the service account key: {e}")))?;
        Ok(Self::ServiceAccount(Arc::new(account)))
    }

    /// Application Default Credentials (the metadata server, `gcloud`), looked up on first use.
    #[cfg(feature = "gcp-auth")]
    pub fn default_credentials() -> Result<Self> {
        Ok(Self::Default(OnceCell::new()))
    }

    /// Credentials from a service account key: this build has no `gcp-auth` feature.
    #[cfg(not(feature = "gcp-auth"))]
    pub fn service_account(_json_or_path: &str) -> Result<Self> {
        Err(without_gcp_auth())
    }

    /// Application Default Credentials: this build has no `gcp-auth` feature.
    #[cfg(not(feature = "gcp-auth"))]
    pub fn default_credentials() -> Result<Self> {
        Err(without_gcp_auth())
    }
}

#[cfg(not(feature = "gcp-auth"))]
fn without_gcp_auth() -> Error {
    Error::Config(
        "vertex_ai: service accounts and default credentials need the `gcp-auth` feature; \
         give a token (VERTEXAI_ACCESS_TOKEN) instead"
            .into(),
    )
}

impl Credentials for VertexCredentials {
    #[cfg(feature = "gcp-auth")]
    fn bearer_token(&self) -> BoxFuture<'_, Result<SecretString>> {
        Box::pin(async move {
            let provider: &dyn gcp_auth::TokenProvider = match self {
                Self::Token(token) => return Ok(token.clone()),
                Self::ServiceAccount(account) => account.as_ref(),
                Self::Default(cell) => cell.get_or_try_init(gcp_auth::provider).await.map_err(token_error)?.as_ref(),
            };
            let token = provider.token(&[SCOPE]).await.map_err(token_error)?;
            Ok(SecretString::from(token.as_str().to_string()))
        })
    }

    #[cfg(not(feature = "gcp-auth"))]
    fn bearer_token(&self) -> BoxFuture<'_, Result<SecretString>> {
        let Self::Token(token) = self;
        let token = token.clone();
        Box::pin(async move { Ok(token) })
    }
}

/// A failure to get a token: the token endpoint unreachable is a transport error (worth a
/// retry); anything else is an authentication error.
#[cfg(feature = "gcp-auth")]
fn token_error(err: gcp_auth::Error) -> Error {
    let provider = ProviderKind::VertexAi;
    match err {
        gcp_auth::Error::Http(what, source) => Error::Transport {
            provider,
            message: format!("fetching a Vertex AI access token: {what}: {source}"),
            source: Some(Box::new(source)),
        },
        other => ApiError::new(
            provider,
            ErrorKind::Authentication.http_status(),
            ErrorKind::Authentication,
            format!("could not get a Vertex AI access token: {other}"),
        )
        .into(),
    }
}

/// The Vertex AI endpoint: project, location, base URL and credentials.
#[derive(Debug)]
pub struct Vertex {
    base_url: String,
    project: String,
    location: String,
    credentials: VertexCredentials,
    headers: HeaderMap,
}

/// The Vertex AI adapter: Google's models in Gemini's format, Anthropic's (`claude-...`) in
/// Anthropic's.
#[derive(Clone, Debug)]
pub struct VertexAi {
    gemini: Google<Arc<Vertex>>,
    vertex: Arc<Vertex>,
}

impl VertexAi {
    /// An adapter for `project` in `location` (`us-central1` unless given); `base_url`
    /// replaces the regional host.
    pub fn new(
        project: &str,
        location: Option<&str>,
        base_url: Option<&str>,
        credentials: VertexCredentials,
        headers: HeaderMap,
    ) -> Result<Self> {
        if project.is_empty() {
            return Err(Error::Config("vertex_ai needs a project: set VERTEXAI_PROJECT".into()));
        }
        let location = location.unwrap_or(DEFAULT_LOCATION).to_string();
        let base_url = match base_url {
            Some(base) => base.trim_end_matches('/').to_string(),
            None => request::default_host(&location),
        };
        let vertex = Arc::new(Vertex { base_url, project: project.to_string(), location, credentials, headers });
        Ok(Self { gemini: Google::with_endpoint(vertex.clone()), vertex })
    }
}

impl Vertex {
    /// The headers of a request: the configured ones and the bearer token.
    fn headers(&self, ctx: &Ctx<'_>) -> Result<HeaderMap> {
        let token = ctx.auth_token.ok_or_else(|| Error::Config("vertex_ai: no access token was fetched".into()))?;
        if token.expose_secret().is_empty() {
            return Err(Error::Config("vertex_ai: the access token is empty".into()));
        }
        let mut headers = self.headers.clone();
        bearer(&mut headers, Some(token))?;
        Ok(headers)
    }
}

impl Adapter for VertexAi {
    type Stream = Decoder;

    fn kind(&self) -> ProviderKind {
        ProviderKind::VertexAi
    }

    fn credentials(&self) -> Option<&dyn Credentials> {
        Some(&self.vertex.credentials)
    }

    fn encode_chat(&self, req: &ChatRequest, ctx: &Ctx<'_>) -> Result<http::Request<Bytes>> {
        if claude::is_claude(ctx.model) {
            claude::encode_chat(&self.vertex, req, ctx)
        } else {
            self.gemini.encode_chat(req, ctx)
        }
    }

    fn encode_native(&self, native: &Native, ctx: &Ctx<'_>) -> Option<Result<http::Request<Bytes>>> {
        claude::is_claude(ctx.model).then(|| claude::encode_native(&self.vertex, native, ctx))
    }

    fn encode_native_count(&self, native: &Native, ctx: &Ctx<'_>) -> Option<Result<http::Request<Bytes>>> {
        claude::is_claude(ctx.model).then(|| claude::encode_native_count(&self.vertex, native, ctx))
    }

    fn counts_native(&self, model: &str) -> bool {
        claude::is_claude(model)
    }

    fn decode_chat(&self, response: http::Response<Bytes>, ctx: &Ctx<'_>) -> Result<ChatResponse> {
        if claude::is_claude(ctx.model) {
            anthropic::response::decode(response, ctx).map_err(|e| e.answered_by(ProviderKind::VertexAi))
        } else {
            self.gemini.decode_chat(response, ctx)
        }
    }

    fn stream_decoder(&self, ctx: &Ctx<'_>) -> Decoder {
        if claude::is_claude(ctx.model) {
            Decoder::Claude(anthropic::stream::Decoder::new(ctx))
        } else {
            Decoder::Gemini(self.gemini.stream_decoder(ctx))
        }
    }

    fn decode_error(&self, status: StatusCode, headers: &HeaderMap, body: &Bytes) -> ApiError {
        claude::decode_error(status, headers, body)
    }

    fn encode_embed(&self, req: &EmbeddingRequest, ctx: &Ctx<'_>) -> Result<http::Request<Bytes>> {
        self.gemini.encode_embed(req, ctx)
    }

    fn decode_embed(&self, response: http::Response<Bytes>, ctx: &Ctx<'_>) -> Result<EmbeddingResponse> {
        self.gemini.decode_embed(response, ctx)
    }

    fn encode_models(&self) -> Result<http::Request<Bytes>> {
        self.gemini.encode_models()
    }

    fn decode_models(&self, response: http::Response<Bytes>) -> Result<ModelList> {
        self.gemini.decode_models(response)
    }
}

/// A Vertex AI stream: Gemini's events or Anthropic's, both server-sent events.
#[derive(Debug)]
pub enum Decoder {
    /// A Google model's stream.
    Gemini(gemini::stream::Decoder),
    /// A Claude model's stream.
    Claude(anthropic::stream::Decoder),
}

impl StreamDecode for Decoder {
    type Framer = SseFramer;

    fn framer(&self) -> SseFramer {
        SseFramer::new()
    }

    fn on_headers(&mut self, headers: &HeaderMap) {
        match self {
            Self::Gemini(d) => d.on_headers(headers),
            Self::Claude(d) => d.on_headers(headers),
        }
    }

    fn on_frame(&mut self, frame: SseEvent, out: &mut VecDeque<ChatChunk>) -> Result<Flow> {
        match self {
            Self::Gemini(d) => d.on_frame(frame, out),
            Self::Claude(d) => d.on_frame(frame, out).map_err(|e| e.answered_by(ProviderKind::VertexAi)),
        }
    }

    fn on_eof(&mut self, out: &mut VecDeque<ChatChunk>) -> Result<()> {
        match self {
            Self::Gemini(d) => d.on_eof(out),
            Self::Claude(d) => d.on_eof(out).map_err(|e| e.answered_by(ProviderKind::VertexAi)),
        }
    }
}

impl Endpoint for Arc<Vertex> {
    fn kind(&self) -> ProviderKind {
        ProviderKind::VertexAi
    }

    fn model_name(&self, model: &str) -> String {
        format!("projects/{}/locations/{}/publishers/google/{}", self.project, self.location, resource_name(model))
    }

    fn url(&self, model: &str, method: Method) -> String {
        request::url(&self.base_url, &self.project, &self.location, model, method)
    }

    fn headers(&self, ctx: &Ctx<'_>) -> Result<HeaderMap> {
        Vertex::headers(self, ctx)
    }

    fn models_url(&self) -> Option<String> {
        None
    }

    fn credentials(&self) -> Option<&dyn Credentials> {
        Some(&self.credentials)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::chat_stream::Pump;

    /// Claude's stream on Vertex AI is decoded with Anthropic's code, but what goes wrong in it
    /// names the provider that was called.
    #[test]
    fn a_claude_stream_error_names_vertex_ai() {
        let ctx = Ctx::new("claude-sonnet-4-5@20250929");
        let mut pump =
            Pump::new(ProviderKind::VertexAi, Decoder::Claude(anthropic::stream::Decoder::new(&ctx)), 1 << 20);
        pump.push(
            b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n\
              event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
        );
        pump.end();
        match pump.deferred {
            Some(Error::Stream { provider, kind, .. }) => {
                assert_eq!(provider, ProviderKind::VertexAi);
                assert_eq!(kind, crate::error::ErrorKind::Overloaded);
            }
            other => panic!("expected a stream error, got {other:?}"),
        }
    }
}
