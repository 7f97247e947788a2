//! Google Gemini through AI Studio (`gemini/...`, generativelanguage v1beta).
//!
//! Upstream docs: <https://ai.google.dev/api/generate-content>,
//! <https://ai.google.dev/api/embeddings>, <https://ai.google.dev/gemini-api/docs/function-calling>.
//! The base URL includes the version, as in LiteLLM (`https://generativelanguage.googleapis.com/v1beta`
//! -> `POST {base}/models/{model}:generateContent`); the key goes in `x-goog-api-key`, never
//! in the URL. Vertex AI speaks the same format (see `crate::provider::vertex_ai`): both are
//! a [`Google`] adapter over an [`Endpoint`].

use std::fmt;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use secrecy::{ExposeSecret, SecretString};

use crate::error::{ApiError, Result};
use crate::provider::requests::{get, post_json, secret_header};
use crate::provider::{Adapter, Credentials, Ctx, ProviderKind};
use crate::{ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse, ModelList};

mod embed;
pub(crate) mod error;
pub(crate) mod request;
pub(crate) mod response;
pub(crate) mod stream;

/// The OpenAI chat parameters Gemini has no equivalent for ([`crate::provider::params`]):
/// refused with `Unsupported`, or dropped with `drop_params`.
pub const UNSUPPORTED_PARAMS: &[&str] = &[
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "user",
    "safety_identifier",
    "metadata",
    "store",
    "audio",
    "prediction",
    "prompt_cache_key",
    "verbosity",
    "web_search_options",
    "parallel_tool_calls",
    "service_tier",
    "functions",
    "function_call",
];

/// AI Studio's API base.
pub const DEFAULT_BASE_URL: &str = crate::catalog::GEMINI_BASE_URL;

/// A method on a model resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `:generateContent`.
    Generate,
    /// `:streamGenerateContent?alt=sse`.
    Stream,
    /// `:embedContent`.
    Embed,
    /// `:batchEmbedContents`.
    BatchEmbed,
}

impl Method {
    /// The method as it ends the URL.
    pub fn suffix(self) -> &'static str {
        match self {
            Self::Generate => ":generateContent",
            Self::Stream => ":streamGenerateContent?alt=sse",
            Self::Embed => ":embedContent",
            Self::BatchEmbed => ":batchEmbedContents",
        }
    }
}

/// Where a Google adapter sends requests and how it authenticates.
pub trait Endpoint: Send + Sync + fmt::Debug {
    /// Which provider this is.
    fn kind(&self) -> ProviderKind;
    /// The resource name of a model as the API wants it inside requests (`models/x`).
    fn model_name(&self, model: &str) -> String;
    /// The URL of a method on a model.
    fn url(&self, model: &str, method: Method) -> String;
    /// Headers for a request, authentication included.
    fn headers(&self, ctx: &Ctx<'_>) -> Result<HeaderMap>;
    /// The URL listing models, where there is one.
    fn models_url(&self) -> Option<String>;
    /// Credentials fetched before each request (Vertex AI's OAuth tokens).
    fn credentials(&self) -> Option<&dyn Credentials> {
        None
    }
}

/// A Gemini-format adapter: the mapping is shared, the endpoint says where it goes.
#[derive(Clone, Debug)]
pub struct Google<E> {
    endpoint: E,
}

impl<E> Google<E> {
    /// An adapter for `endpoint`.
    pub fn with_endpoint(endpoint: E) -> Self {
        Self { endpoint }
    }
}

/// The AI Studio endpoint: a base URL and an API key.
#[derive(Clone)]
pub struct AiStudio {
    base_url: String,
    headers: HeaderMap,
}

impl fmt::Debug for AiStudio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AiStudio").field("base_url", &self.base_url).field("headers", &self.headers).finish()
    }
}

/// The Gemini (AI Studio) adapter.
pub type Gemini = Google<AiStudio>;

impl Gemini {
    /// An adapter for `base_url` (AI Studio's unless given) with the API key.
    pub fn new(base_url: Option<&str>, api_key: &SecretString, extra_headers: HeaderMap) -> Result<Self> {
        let mut headers = extra_headers;
        headers.insert("x-goog-api-key", secret_header(api_key.expose_secret())?);
        Ok(Self::with_endpoint(AiStudio {
            base_url: base_url.unwrap_or(DEFAULT_BASE_URL).trim_end_matches('/').to_string(),
            headers,
        }))
    }
}

/// `models/x` for a bare id; resource names (`models/...`, `tunedModels/...`) as they are.
pub(crate) fn resource_name(model: &str) -> String {
    if model.starts_with("models/") || model.starts_with("tunedModels/") {
        model.to_string()
    } else {
        format!("models/{model}")
    }
}

impl Endpoint for AiStudio {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Gemini
    }

    fn model_name(&self, model: &str) -> String {
        resource_name(model)
    }

    fn url(&self, model: &str, method: Method) -> String {
        format!("{}/{}{}", self.base_url, resource_name(model), method.suffix())
    }

    fn headers(&self, _ctx: &Ctx<'_>) -> Result<HeaderMap> {
        Ok(self.headers.clone())
    }

    fn models_url(&self) -> Option<String> {
        Some(format!("{}/models", self.base_url))
    }
}

impl<E: Endpoint> Adapter for Google<E> {
    type Stream = stream::Decoder;

    fn kind(&self) -> ProviderKind {
        self.endpoint.kind()
    }

    fn credentials(&self) -> Option<&dyn Credentials> {
        self.endpoint.credentials()
    }

    fn encode_chat(&self, req: &ChatRequest, ctx: &Ctx<'_>) -> Result<http::Request<Bytes>> {
        let method = if ctx.stream { Method::Stream } else { Method::Generate };
        let url = self.endpoint.url(ctx.model, method);
        let body = request::chat_body(self.kind(), req, ctx)?;
        post_json(&url, body, &self.endpoint.headers(ctx)?)
    }

    fn decode_chat(&self, response: http::Response<Bytes>, ctx: &Ctx<'_>) -> Result<ChatResponse> {
        response::decode(self.kind(), response, ctx)
    }

    fn stream_decoder(&self, ctx: &Ctx<'_>) -> stream::Decoder {
        stream::Decoder::new(self.kind(), ctx)
    }

    fn decode_error(&self, status: StatusCode, headers: &HeaderMap, body: &Bytes) -> ApiError {
        error::decode_error(self.kind(), status, headers, body)
    }

    fn encode_embed(&self, req: &EmbeddingRequest, ctx: &Ctx<'_>) -> Result<http::Request<Bytes>> {
        let (single, body) = embed::embed_body(self.kind(), req, &self.endpoint.model_name(ctx.model))?;
        let method = if single { Method::Embed } else { Method::BatchEmbed };
        post_json(&self.endpoint.url(ctx.model, method), body, &self.endpoint.headers(ctx)?)
    }

    fn decode_embed(&self, response: http::Response<Bytes>, ctx: &Ctx<'_>) -> Result<EmbeddingResponse> {
        response::decode_embeddings(self.kind(), response, ctx.model, ctx.encoding_format)
    }

    fn encode_models(&self) -> Result<http::Request<Bytes>> {
        let url = self
            .endpoint
            .models_url()
            .ok_or_else(|| crate::Error::Unsupported { provider: self.kind(), feature: "listing models".into() })?;
        let headers = self.endpoint.headers(&Ctx::new(""))?;
        get(&url, &headers)
    }

    fn decode_models(&self, response: http::Response<Bytes>) -> Result<ModelList> {
        response::decode_models(self.kind(), response)
    }
}
