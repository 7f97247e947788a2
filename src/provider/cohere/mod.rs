//! Cohere (`cohere/...`): `POST /v2/chat` (streaming with server-sent events),
//! `POST /v2/embed`, and `GET /v1/models`.
//!
//! Upstream docs: <https://docs.cohere.com/reference/chat>,
//! <https://docs.cohere.com/docs/streaming>, <https://docs.cohere.com/reference/embed>,
//! <https://docs.cohere.com/reference/errors>. The base URL is the host root
//! (`https://api.cohere.com`); LiteLLM's `cohere_chat/` spelling is not needed, since both of
//! its routes speak v2.

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use secrecy::SecretString;

use crate::error::{ApiError, Error, Result};
use crate::provider::requests::{bearer, get, join_url, post_json};
use crate::provider::{Adapter, Ctx, ProviderKind};
use crate::{ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse, ModelList};

pub(crate) mod error;
pub(crate) mod request;
pub(crate) mod response;
pub(crate) mod stream;

/// The OpenAI chat parameters Cohere has no equivalent for ([`crate::provider::params`]):
/// refused with `Unsupported`, or dropped with `drop_params`.
pub const UNSUPPORTED_PARAMS: &[&str] = &[
    "n",
    "logprobs",
    "top_logprobs",
    "logit_bias",
    "audio",
    "prediction",
    "prompt_cache_key",
    "verbosity",
    "web_search_options",
    "service_tier",
    "metadata",
    "store",
    "user",
    "safety_identifier",
    "parallel_tool_calls",
    "functions",
    "function_call",
];

/// Cohere's API host.
pub const DEFAULT_BASE_URL: &str = crate::catalog::COHERE_BASE_URL;

/// The Cohere adapter and its settings.
#[derive(Clone, Debug)]
pub struct Cohere {
    base_url: String,
    headers: HeaderMap,
}

impl Cohere {
    /// An adapter for `base_url` (Cohere's unless given) with the API key.
    pub fn new(base_url: Option<&str>, api_key: &SecretString, extra_headers: HeaderMap) -> Result<Self> {
        let mut headers = extra_headers;
        bearer(&mut headers, Some(api_key))?;
        Ok(Self { base_url: base_url.unwrap_or(DEFAULT_BASE_URL).trim_end_matches('/').to_string(), headers })
    }
}

impl Adapter for Cohere {
    type Stream = stream::Decoder;

    fn kind(&self) -> ProviderKind {
        ProviderKind::Cohere
    }

    fn encode_chat(&self, req: &ChatRequest, ctx: &Ctx<'_>) -> Result<http::Request<Bytes>> {
        post_json(&join_url(&self.base_url, "/v2/chat"), request::chat_body(req, ctx)?, &self.headers)
    }

    fn decode_chat(&self, response: http::Response<Bytes>, ctx: &Ctx<'_>) -> Result<ChatResponse> {
        response::decode(response, ctx)
    }

    fn stream_decoder(&self, ctx: &Ctx<'_>) -> stream::Decoder {
        stream::Decoder::new(ctx)
    }

    fn decode_error(&self, status: StatusCode, headers: &HeaderMap, body: &Bytes) -> ApiError {
        error::decode_error(status, headers, body)
    }

    fn encode_embed(&self, req: &EmbeddingRequest, ctx: &Ctx<'_>) -> Result<http::Request<Bytes>> {
        post_json(&join_url(&self.base_url, "/v2/embed"), request::embed_body(req, ctx)?, &self.headers)
    }

    fn decode_embed(&self, response: http::Response<Bytes>, ctx: &Ctx<'_>) -> Result<EmbeddingResponse> {
        response::decode_embeddings(response, ctx)
    }

    fn encode_models(&self) -> Result<http::Request<Bytes>> {
        get(&join_url(&self.base_url, "/v1/models"), &self.headers)
    }

    fn decode_models(&self, response: http::Response<Bytes>) -> Result<ModelList> {
        response::decode_models(response)
    }
}

/// The error for a request field Cohere cannot express.
pub(crate) fn unsupported(feature: impl Into<String>) -> Error {
    Error::Unsupported { provider: ProviderKind::Cohere, feature: feature.into() }
}
