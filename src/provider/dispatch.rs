//! The HTTP flow of one attempt, written once for every adapter: encode, send once, then
//! decode the answer or map the error. Retries and the total timeout are the engine's
//! ([`crate::engine`]).
//!
//! This is the only place that matches on [`Provider`], and it has no wildcard arm: a new
//! variant makes the compiler point here.

use crate::error::{Error, Result};
use crate::provider::chat_stream::ChatStream;
use std::sync::Arc;

use crate::provider::native::{Native, Tap};
use crate::provider::{Adapter, Ctx, Provider};
use crate::transport::Transport;
use crate::{ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse, ModelList};

/// Runs `$body` with `$adapter` bound to the provider's adapter.
macro_rules! with_adapter {
    ($provider:expr, $adapter:ident => $body:expr) => {
        match $provider {
            Provider::OpenAi($adapter) => $body,
            Provider::Azure($adapter) => $body,
            Provider::Anthropic($adapter) => $body,
            Provider::Gemini($adapter) => $body,
            Provider::VertexAi($adapter) => $body,
            Provider::Bedrock($adapter) => $body,
            Provider::Cohere($adapter) => $body,
            Provider::Mistral($adapter) => $body,
            Provider::OpenAiCompat($adapter) => $body,
            Provider::Mock($adapter) => $body,
        }
    };
}

/// A chat completion; `native`, when the caller has the request in its own format too, goes
/// out as it came to a provider of that format, and the answer's bytes are kept in its tap.
pub(crate) async fn chat(
    provider: &Provider,
    transport: &Transport,
    request: &ChatRequest,
    ctx: &Ctx<'_>,
    native: Option<&Native>,
) -> Result<ChatResponse> {
    with_adapter!(provider, adapter => {
        let token = token(adapter).await?;
        let ctx = Ctx { auth_token: token.as_ref(), ..*ctx };
        let (http_request, tap, ctx) = encode(adapter, request, &ctx, native)?;
        let response = send_whole(adapter, transport, http_request).await?;
        if let Some(tap) = tap {
            tap.headers(response.headers());
            tap.push(response.body());
        }
        adapter.decode_chat(response, &ctx)
    })
}

/// A chat stream: resolves once the response head arrived (so errors before the first chunk
/// surface here), then yields chunks; a native request's stream bytes go to its tap as they
/// arrive.
pub(crate) async fn chat_stream(
    provider: &Provider,
    transport: &Transport,
    request: &ChatRequest,
    ctx: &Ctx<'_>,
    native: Option<&Native>,
) -> Result<ChatStream> {
    with_adapter!(provider, adapter => {
        let token = token(adapter).await?;
        let ctx = Ctx { auth_token: token.as_ref(), ..*ctx };
        let (http_request, tap, ctx) = encode(adapter, request, &ctx, native)?;
        let raw = execute(adapter, transport, http_request, true).await?;
        if let Some(tap) = tap {
            tap.headers(&raw.headers);
        }
        let mut decoder = adapter.stream_decoder(&ctx);
        crate::provider::StreamDecode::on_headers(&mut decoder, &raw.headers);
        let limits = (transport.timeouts().idle, transport.max_body());
        Ok(ChatStream::new(adapter.kind(), raw.body, decoder, limits, tap.cloned()))
    })
}

/// One attempt's request, the tap its answer goes to, and the context to decode it with.
type Encoded<'c, 'n> = (http::Request<bytes::Bytes>, Option<&'n Arc<Tap>>, Ctx<'c>);

/// The request for one attempt: the native body where the adapter speaks its format (with
/// the tap to keep the answer in, and a context that undoes nothing the translation would
/// have done), else the translated request, unless the native one cannot be translated.
fn encode<'c, 'n, A: Adapter>(
    adapter: &A,
    request: &ChatRequest,
    ctx: &Ctx<'c>,
    native: Option<&'n Native>,
) -> Result<Encoded<'c, 'n>> {
    let Some(native) = native else { return Ok((adapter.encode_chat(request, ctx)?, None, *ctx)) };
    if let Some(encoded) = adapter.encode_native(native, ctx) {
        native.tap.begin(true);
        let usage_only = ctx.usage_only;
        return Ok((encoded?, Some(&native.tap), Ctx { response_format: None, native: true, usage_only, ..*ctx }));
    }
    native.tap.begin(false);
    // What the translation itself could not carry is named first: it says more than what
    // the check against our description finds.
    if let Some(why) = native.untranslatable_reason() {
        return Err(Error::Unsupported { provider: adapter.kind(), feature: why.to_string() });
    }
    native.check_translatable()?;
    Ok((adapter.encode_chat(request, ctx)?, None, *ctx))
}

/// The exact input tokens of a native body, counted by the provider; an `Unsupported`
/// error where it has no count for the format.
pub(crate) async fn count_native(
    provider: &Provider,
    transport: &Transport,
    native: &Native,
    model: &str,
) -> Result<u64> {
    with_adapter!(provider, adapter => {
        let token = token(adapter).await?;
        let ctx = Ctx { auth_token: token.as_ref(), ..Ctx::new(model) };
        let Some(http_request) = adapter.encode_native_count(native, &ctx) else {
            return Err(Error::Unsupported { provider: adapter.kind(), feature: "counting tokens".into() });
        };
        let response = send_whole(adapter, transport, http_request?).await?;
        /// Anthropic's `{"input_tokens": n}`, Bedrock's `{"inputTokens": n}`.
        #[derive(serde::Deserialize)]
        struct Count {
            #[serde(alias = "inputTokens")]
            input_tokens: u64,
        }
        serde_json::from_slice::<Count>(response.body())
            .map(|c| c.input_tokens)
            .map_err(|e| Error::decode(adapter.kind(), "token count", e, response.body().clone()))
    })
}

/// Whether the provider counts native bodies for `model` exactly.
pub(crate) fn counts_native(provider: &Provider, model: &str) -> bool {
    with_adapter!(provider, adapter => adapter.counts_native(model))
}

/// Embeddings.
pub(crate) async fn embed(
    provider: &Provider,
    transport: &Transport,
    request: &EmbeddingRequest,
    ctx: &Ctx<'_>,
) -> Result<EmbeddingResponse> {
    with_adapter!(provider, adapter => {
        let token = token(adapter).await?;
        let ctx = Ctx { auth_token: token.as_ref(), ..*ctx };
        let http_request = adapter.encode_embed(request, &ctx)?;
        let response = send_whole(adapter, transport, http_request).await?;
        adapter.decode_embed(response, &ctx)
    })
}

/// The provider's models.
pub(crate) async fn models(provider: &Provider, transport: &Transport) -> Result<ModelList> {
    with_adapter!(provider, adapter => {
        let http_request = adapter.encode_models()?;
        let response = send_whole(adapter, transport, http_request).await?;
        adapter.decode_models(response)
    })
}

/// A fresh bearer token, for adapters that authenticate with one.
async fn token<A: Adapter>(adapter: &A) -> Result<Option<secrecy::SecretString>> {
    match adapter.credentials() {
        Some(credentials) => credentials.bearer_token().await.map(Some),
        None => Ok(None),
    }
}

/// The HTTP request a chat call would send (credentials fetched per call, such as Vertex
/// AI's OAuth token, are not in it), built with no network.
pub(crate) fn encode_chat(
    provider: &Provider,
    request: &ChatRequest,
    ctx: &Ctx<'_>,
) -> Result<http::Request<bytes::Bytes>> {
    with_adapter!(provider, adapter => adapter.encode_chat(request, ctx))
}

/// A whole answer (or error answer) as the provider would send it, decoded with no
/// network: the same decoding a call does once the bytes are in.
pub(crate) fn decode_answer(
    provider: &Provider,
    response: http::Response<bytes::Bytes>,
    ctx: &Ctx<'_>,
) -> Result<ChatResponse> {
    with_adapter!(provider, adapter => {
        if response.status().is_success() {
            adapter.decode_chat(response, ctx)
        } else {
            Err(Error::from(adapter.decode_error(response.status(), response.headers(), response.body())))
        }
    })
}

/// A stream's bytes, in the pieces they arrived in, decoded with no network: the chunks,
/// and the error that ended the stream, if one did.
pub(crate) fn decode_stream(
    provider: &Provider,
    headers: &http::HeaderMap,
    pieces: &[&[u8]],
    ctx: &Ctx<'_>,
) -> (Vec<crate::ChatChunk>, Option<Error>) {
    with_adapter!(provider, adapter => {
        let mut decoder = adapter.stream_decoder(ctx);
        crate::provider::StreamDecode::on_headers(&mut decoder, headers);
        let mut pump = crate::provider::chat_stream::Pump::new(adapter.kind(), decoder, crate::transport::DEFAULT_MAX_BODY);
        for piece in pieces {
            pump.push(piece);
        }
        pump.end();
        (pump.pending.into_iter().collect(), pump.deferred)
    })
}

/// The provider's kind.
pub(crate) fn kind(provider: &Provider) -> crate::provider::ProviderKind {
    with_adapter!(provider, adapter => adapter.kind())
}

/// Sends a request once, to a successful response head. Error answers are read and mapped
/// with the adapter's `decode_error`.
async fn execute<A: Adapter + ?Sized>(
    adapter: &A,
    transport: &Transport,
    request: http::Request<bytes::Bytes>,
    stream: bool,
) -> Result<crate::transport::RawResponse> {
    let provider = adapter.kind();
    let raw = transport.send(provider, adapter.upstream(), request, transport.first_byte(stream)).await?;
    if raw.status.is_success() {
        return Ok(raw);
    }
    if raw.status.is_redirection() {
        return Err(crate::transport::redirected(provider, raw.status));
    }
    let (status, headers) = (raw.status, raw.headers.clone());
    let body = transport.error_body(provider, raw).await?;
    Err(Error::from(adapter.decode_error(status, &headers, &body)))
}

async fn send_whole<A: Adapter>(
    adapter: &A,
    transport: &Transport,
    request: http::Request<bytes::Bytes>,
) -> Result<http::Response<bytes::Bytes>> {
    let raw = execute(adapter, transport, request, false).await?;
    raw.into_full(adapter.kind(), transport.max_body(), transport.timeouts().idle).await
}
