//! Providers: which ones exist ([`ProviderKind`]), their configured form ([`Provider`]), and
//! the sans-IO [`Adapter`] contract each one implements.
//!
//! An adapter only turns requests into `http::Request`s and `http::Response`s into OpenAI
//! types; it never touches the network. `dispatch` holds the HTTP flow once, and is the only
//! place that matches on [`Provider`].

use std::collections::VecDeque;
use std::str::FromStr;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use crate::error::{ApiError, Error, Result};
use secrecy::SecretString;

use crate::spec::openai::{EmbeddingEncodingFormat, ResponseFormat};
use crate::{ChatChunk, ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse, ModelList};

pub mod anthropic;
pub mod azure;
pub mod bedrock;
pub(crate) mod blocks;
pub(crate) mod chat_stream;
pub mod cohere;
pub(crate) mod convert;
pub(crate) mod dispatch;
pub(crate) mod errors;
pub mod gemini;
pub(crate) mod ids;
pub mod mistral;
pub mod mock;
pub mod native;
pub mod openai;
pub mod openai_compat;
pub mod params;
pub(crate) mod requests;
pub(crate) mod settings;
pub mod vertex_ai;

pub use crate::catalog::{CompatVendor, ProviderKind, Quirks};
pub use crate::transport::{Framer, InProcess, Upstream};

impl FromStr for ProviderKind {
    type Err = Error;
    fn from_str(id: &str) -> Result<Self> {
        Self::from_id(id)
            .ok_or_else(|| Error::Config(format!("unknown provider `{id}`; known providers: {}", Self::known_ids())))
    }
}

/// A configured provider: one variant per adapter, holding its settings.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Provider {
    /// OpenAI.
    OpenAi(openai::OpenAi),
    /// Azure OpenAI.
    Azure(azure::Azure),
    /// Anthropic.
    Anthropic(anthropic::Anthropic),
    /// Gemini (AI Studio).
    Gemini(gemini::Gemini),
    /// Gemini on Vertex AI.
    VertexAi(vertex_ai::VertexAi),
    /// Amazon Bedrock.
    Bedrock(bedrock::Bedrock),
    /// Cohere.
    Cohere(cohere::Cohere),
    /// Mistral AI.
    Mistral(mistral::Mistral),
    /// An OpenAI-compatible vendor, or any server given by base URL.
    OpenAiCompat(openai_compat::OpenAiCompat),
    /// The built-in mock.
    Mock(mock::Mock),
}

/// Seconds since the Unix epoch, for the `created` of answers an upstream does not date.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Provider {
    /// Which provider this is.
    pub fn kind(&self) -> ProviderKind {
        dispatch::kind(self)
    }

    /// The HTTP request a chat call to this provider would send, with no network: for tools,
    /// tests and benchmarks. Tokens fetched per call (Vertex AI's OAuth) are not in it.
    pub fn encode_chat(&self, request: &ChatRequest, ctx: &Ctx<'_>) -> Result<http::Request<Bytes>> {
        dispatch::encode_chat(self, request, ctx)
    }

    /// Decodes a whole answer (or an error answer) as this provider would send it, with no
    /// network: for tools, tests and fuzzing.
    pub fn decode_answer(&self, response: http::Response<Bytes>, ctx: &Ctx<'_>) -> Result<ChatResponse> {
        dispatch::decode_answer(self, response, ctx)
    }

    /// Decodes a stream's bytes, in the pieces they arrived in, with no network: the chunks
    /// and the error that ended the stream, if one did. However the bytes are split, the
    /// result is the same.
    pub fn decode_stream(
        &self,
        headers: &HeaderMap,
        pieces: &[&[u8]],
        ctx: &Ctx<'_>,
    ) -> (Vec<ChatChunk>, Option<Error>) {
        dispatch::decode_stream(self, headers, pieces, ctx)
    }
}

/// What an adapter needs to know about the call beyond the request itself. Decoding sees
/// the context too, so what encoding chose (a stream's usage, a JSON mode) can be undone.
#[derive(Clone, Copy, Debug)]
pub struct Ctx<'a> {
    /// The model id as the provider knows it (the model string without its provider prefix).
    pub model: &'a str,
    /// Drop parameters the provider cannot express instead of failing with `Unsupported`.
    pub drop_params: bool,
    /// Whether this is a streaming call.
    pub stream: bool,
    /// Whether the caller asked for a usage chunk at the end of the stream.
    pub include_usage: bool,
    /// The output format the caller asked for.
    pub response_format: Option<&'a ResponseFormat>,
    /// For embeddings: the encoding the caller asked for.
    pub encoding_format: Option<&'a EmbeddingEncodingFormat>,
    /// A bearer token fetched for this call (see [`Credentials`]).
    pub auth_token: Option<&'a SecretString>,
    /// The request went out in the caller's own format ([`Adapter::encode_native`]): the
    /// answer is in that format too, where the adapter's is another.
    pub native: bool,
    /// With `native`: the caller sends the upstream's own bytes on and reads only the usage,
    /// id, model and stop reason of the decoded answer (no guardrail, cache or translation
    /// reads its content), so the content is not decoded.
    pub usage_only: bool,
}

impl<'a> Ctx<'a> {
    /// A context for `model` with nothing else set.
    pub fn new(model: &'a str) -> Self {
        Self {
            model,
            drop_params: false,
            stream: false,
            include_usage: false,
            response_format: None,
            encoding_format: None,
            auth_token: None,
            native: false,
            usage_only: false,
        }
    }

    /// The context of an embeddings call.
    pub fn for_embed(model: &'a str, request: &'a EmbeddingRequest, drop_params: bool) -> Self {
        Self { drop_params, encoding_format: request.encoding_format.as_ref(), ..Self::new(model) }
    }

    /// The context of a chat call.
    pub fn for_chat(model: &'a str, request: &'a ChatRequest, stream: bool, drop_params: bool) -> Self {
        Self {
            drop_params,
            stream,
            include_usage: stream && request.stream_options.as_ref().and_then(|o| o.include_usage) == Some(true),
            response_format: request.response_format.as_ref(),
            ..Self::new(model)
        }
    }
}

/// The contract every provider implements: pure translation, no I/O.
pub trait Adapter: Send + Sync {
    /// The stream decoder for this provider's chat streams.
    type Stream: StreamDecode;

    /// Which provider this is.
    fn kind(&self) -> ProviderKind;

    /// Where requests go; HTTP unless the provider answers in-process.
    fn upstream(&self) -> Upstream<'_> {
        Upstream::Http
    }

    /// Credentials to fetch before each request; the token reaches `encode_*` in
    /// [`Ctx::auth_token`]. None for providers with a static key.
    fn credentials(&self) -> Option<&dyn Credentials> {
        None
    }

    /// Builds the HTTP request for a chat completion (streaming when `ctx.stream`).
    fn encode_chat(&self, request: &ChatRequest, ctx: &Ctx<'_>) -> Result<http::Request<Bytes>>;

    /// Builds the HTTP request for a client's own request body in this provider's wire
    /// format ([`native::Native`]), sent as it came with only `ctx.model` and the credentials
    /// put in; `None` when the body is not in this provider's format (the translated
    /// request is sent instead).
    fn encode_native(&self, _native: &native::Native, _ctx: &Ctx<'_>) -> Option<Result<http::Request<Bytes>>> {
        None
    }

    /// Builds the request that counts a native body's input tokens exactly (Anthropic's
    /// `count_tokens`); `None` where the provider has no such count for the format.
    fn encode_native_count(&self, _native: &native::Native, _ctx: &Ctx<'_>) -> Option<Result<http::Request<Bytes>>> {
        None
    }

    /// Whether [`Adapter::encode_native_count`] counts a native body for `model` exactly.
    fn counts_native(&self, model: &str) -> bool {
        let _ = model;
        false
    }

    /// Reads a successful chat completion.
    fn decode_chat(&self, response: http::Response<Bytes>, ctx: &Ctx<'_>) -> Result<ChatResponse>;

    /// A fresh decoder for one chat stream.
    fn stream_decoder(&self, ctx: &Ctx<'_>) -> Self::Stream;

    /// Maps an error answer to an [`ApiError`].
    fn decode_error(&self, status: StatusCode, headers: &HeaderMap, body: &Bytes) -> ApiError;

    /// Builds the HTTP request for embeddings.
    fn encode_embed(&self, request: &EmbeddingRequest, ctx: &Ctx<'_>) -> Result<http::Request<Bytes>> {
        let _ = (request, ctx);
        Err(Error::Unsupported { provider: self.kind(), feature: "embeddings".into() })
    }

    /// Reads a successful embeddings answer.
    fn decode_embed(&self, response: http::Response<Bytes>, ctx: &Ctx<'_>) -> Result<EmbeddingResponse> {
        let _ = (response, ctx);
        Err(Error::Unsupported { provider: self.kind(), feature: "embeddings".into() })
    }

    /// Builds the HTTP request listing models.
    fn encode_models(&self) -> Result<http::Request<Bytes>> {
        Err(Error::Unsupported { provider: self.kind(), feature: "listing models".into() })
    }

    /// Reads a successful models list.
    fn decode_models(&self, response: http::Response<Bytes>) -> Result<ModelList> {
        let _ = response;
        Err(Error::Unsupported { provider: self.kind(), feature: "listing models".into() })
    }
}

/// A source of bearer tokens (OAuth), asked before each request; it caches and refreshes.
pub trait Credentials: Send + Sync {
    /// A valid token.
    fn bearer_token(&self) -> futures_core::future::BoxFuture<'_, Result<SecretString>>;
}

/// Whether a stream goes on after a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// More frames may follow.
    Continue,
    /// The stream is complete (e.g. `[DONE]`); anything after it is ignored.
    Done,
}

/// A state machine fed one framed event at a time, emitting OpenAI chunks.
pub trait StreamDecode: Send + 'static {
    /// Splits the byte stream into frames.
    type Framer: Framer;

    /// A framer for this stream's wire format.
    fn framer(&self) -> Self::Framer;

    /// Sees the response headers before the first frame (Bedrock takes its answer id from
    /// `x-amzn-requestid`).
    fn on_headers(&mut self, headers: &HeaderMap) {
        let _ = headers;
    }

    /// Handles one frame, pushing any chunks it yields onto `out`.
    fn on_frame(&mut self, frame: <Self::Framer as Framer>::Frame, out: &mut VecDeque<ChatChunk>) -> Result<Flow>;

    /// The byte stream ended without [`Flow::Done`]: emit what is owed, or say it was cut off.
    fn on_eof(&mut self, out: &mut VecDeque<ChatChunk>) -> Result<()>;

    /// Whether the caller of a native request is served the bytes this decoder renders
    /// ([`StreamDecode::take_native`]) rather than the wire's: where the wire wraps the
    /// caller's format in another (Bedrock's event frames around Anthropic's events).
    fn renders_native(&self) -> bool {
        false
    }

    /// The caller's bytes for what was decoded since the last take (see
    /// [`StreamDecode::renders_native`]).
    fn take_native(&mut self) -> Bytes {
        Bytes::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every native kind is listed (so it resolves from model strings), once, under its id.
    #[test]
    fn every_native_kind_is_listed_and_round_trips_its_id() {
        let every = [
            ProviderKind::OpenAi,
            ProviderKind::Azure,
            ProviderKind::Anthropic,
            ProviderKind::Gemini,
            ProviderKind::VertexAi,
            ProviderKind::Bedrock,
            ProviderKind::Cohere,
            ProviderKind::Mistral,
            ProviderKind::Mock,
        ];
        for kind in every {
            // A new variant makes this match fail to compile until it is added above.
            match kind {
                ProviderKind::OpenAi
                | ProviderKind::Azure
                | ProviderKind::Anthropic
                | ProviderKind::Gemini
                | ProviderKind::VertexAi
                | ProviderKind::Bedrock
                | ProviderKind::Cohere
                | ProviderKind::Mistral
                | ProviderKind::Mock
                | ProviderKind::Compat(_) => {}
            }
            assert_eq!(ProviderKind::from_id(kind.id()), Some(kind), "{kind} is not listed");
        }
        assert_eq!(ProviderKind::all().filter(|k| !matches!(k, ProviderKind::Compat(_))).count(), every.len());
    }
}
