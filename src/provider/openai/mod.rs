//! OpenAI (`openai/...`): chat completions, streaming, embeddings, models.
//!
//! Upstream docs: <https://platform.openai.com/docs/api-reference/chat>. With a base URL of
//! your own (`openai/<model>` plus `base_url`), this is also the generic adapter for any
//! OpenAI-compatible server: everything the caller sent is passed through.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use secrecy::SecretString;

use crate::error::{ApiError, Result};
use crate::provider::requests::{bearer, get, join_url, post_json};
use crate::provider::{Adapter, Ctx, InProcess, ProviderKind, Quirks, Upstream};
use crate::{ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse, ModelList};

/// Error answers: OpenAI's envelope is read by the tolerant reader every provider falls back on.
pub(crate) use super::errors as error;
pub(crate) mod request;
pub(crate) mod response;
pub(crate) mod stream;

/// OpenAI's API base.
pub const DEFAULT_BASE_URL: &str = crate::catalog::OPENAI_BASE_URL;

/// The OpenAI adapter and its settings.
#[derive(Clone, Debug)]
pub struct OpenAi {
    base_url: String,
    headers: HeaderMap,
}

impl OpenAi {
    /// An adapter for `base_url` (OpenAI's unless given), with an optional key, organization
    /// and project, and extra headers.
    pub fn new(
        base_url: Option<&str>,
        api_key: Option<&SecretString>,
        organization: Option<&str>,
        project: Option<&str>,
        extra_headers: HeaderMap,
    ) -> Result<Self> {
        let mut headers = extra_headers;
        bearer(&mut headers, api_key)?;
        for (name, value) in [("openai-organization", organization), ("openai-project", project)] {
            if let Some(value) = value {
                let value = HeaderValue::from_str(value)
                    .map_err(|_| crate::Error::Config(format!("invalid {name} `{value}`")))?;
                headers.insert(name, value);
            }
        }
        Ok(Self { base_url: base_url.unwrap_or(DEFAULT_BASE_URL).trim_end_matches('/').to_string(), headers })
    }

    /// The API base requests go to.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }
}

impl OpenAiFormat for OpenAi {
    fn provider(&self) -> ProviderKind {
        ProviderKind::OpenAi
    }

    fn url(&self, operation: Operation, _model: &str) -> String {
        join_url(&self.base_url, operation.path())
    }

    fn headers(&self) -> &HeaderMap {
        &self.headers
    }
}

/// An operation of the OpenAI API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// `POST /chat/completions`.
    Chat,
    /// `POST /embeddings`.
    Embeddings,
    /// `GET /models`.
    Models,
}

impl Operation {
    /// The path below the API base.
    pub fn path(self) -> &'static str {
        match self {
            Self::Chat => "/chat/completions",
            Self::Embeddings => "/embeddings",
            Self::Models => "/models",
        }
    }
}

/// A provider that speaks OpenAI's wire format (OpenAI, Azure, every compatible vendor, the
/// mock). It says only where requests go and with which headers and quirks; encoding,
/// decoding, streams and errors are shared, through the one [`Adapter`] impl below.
pub trait OpenAiFormat: Send + Sync {
    /// Which provider this is.
    fn provider(&self) -> ProviderKind;

    /// The URL of an operation for a model (the deployment, for Azure).
    fn url(&self, operation: Operation, model: &str) -> String;

    /// Headers for every request (authentication included).
    fn headers(&self) -> &HeaderMap;

    /// Where the provider departs from OpenAI's request format.
    fn quirks(&self) -> &Quirks {
        &Quirks::NONE
    }

    /// An in-process upstream answering instead of HTTP (the mock).
    fn in_process(&self) -> Option<&dyn InProcess> {
        None
    }

    /// Maps an error answer; OpenAI's envelope unless the provider knows better.
    fn map_error(&self, status: StatusCode, headers: &HeaderMap, body: &Bytes) -> ApiError {
        error::decode_error(self.provider(), status, headers, body)
    }
}

impl<T: OpenAiFormat> Adapter for T {
    type Stream = stream::Decoder;

    fn kind(&self) -> ProviderKind {
        self.provider()
    }

    fn upstream(&self) -> Upstream<'_> {
        self.in_process().map_or(Upstream::Http, Upstream::InProcess)
    }

    fn encode_chat(&self, req: &ChatRequest, ctx: &Ctx<'_>) -> Result<http::Request<Bytes>> {
        let body = request::chat_body(self.provider(), req, ctx, self.quirks())?;
        post_json(&self.url(Operation::Chat, ctx.model), body, self.headers())
    }

    fn decode_chat(&self, response: http::Response<Bytes>, _ctx: &Ctx<'_>) -> Result<ChatResponse> {
        response::decode_json(self.provider(), "chat completion", response)
    }

    fn stream_decoder(&self, _ctx: &Ctx<'_>) -> stream::Decoder {
        stream::Decoder::new(self.provider())
    }

    fn decode_error(&self, status: StatusCode, headers: &HeaderMap, body: &Bytes) -> ApiError {
        self.map_error(status, headers, body)
    }

    fn encode_embed(&self, req: &EmbeddingRequest, ctx: &Ctx<'_>) -> Result<http::Request<Bytes>> {
        let body = request::embed_body(self.provider(), req, ctx)?;
        post_json(&self.url(Operation::Embeddings, ctx.model), body, self.headers())
    }

    fn decode_embed(&self, response: http::Response<Bytes>, _ctx: &Ctx<'_>) -> Result<EmbeddingResponse> {
        response::decode_json(self.provider(), "embeddings", response)
    }

    fn encode_models(&self) -> Result<http::Request<Bytes>> {
        get(&self.url(Operation::Models, ""), self.headers())
    }

    fn decode_models(&self, response: http::Response<Bytes>) -> Result<ModelList> {
        response::decode_json(self.provider(), "models list", response)
    }
}
