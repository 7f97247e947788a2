//! The HTTP flow, written once for every adapter: encode, send (with retries as the
//! transport's policy says, and its timeouts), then decode the answer or map the error.
//!
//! This is the only place that matches on [`Provider`], and it has no wildcard arm: a new
//! variant makes the compiler point here.

use crate::error::{Error, Result, TimeoutPhase};
use crate::provider::chat_stream::ChatStream;
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
            Provider::OpenAiCompat($adapter) => $body,
            Provider::Mock($adapter) => $body,
        }
    };
}

/// A chat completion.
pub(crate) async fn chat(
    provider: &Provider,
    transport: &Transport,
    request: &ChatRequest,
    ctx: &Ctx<'_>,
) -> Result<ChatResponse> {
    with_adapter!(provider, adapter => with_total(adapter.kind(), transport, async {
        let token = token(adapter).await?;
        let ctx = Ctx { auth_token: token.as_ref(), ..*ctx };
        let http_request = adapter.encode_chat(request, &ctx)?;
        let response = send_whole(adapter, transport, http_request).await?;
        adapter.decode_chat(response, &ctx)
    }).await)
}

/// A chat stream: resolves once the response head arrived (so errors before the first chunk,
/// retries included, surface here), then yields chunks.
pub(crate) async fn chat_stream(
    provider: &Provider,
    transport: &Transport,
    request: &ChatRequest,
    ctx: &Ctx<'_>,
) -> Result<ChatStream> {
    with_adapter!(provider, adapter => {
        let token = token(adapter).await?;
        let ctx = Ctx { auth_token: token.as_ref(), ..*ctx };
        let http_request = adapter.encode_chat(request, &ctx)?;
        let raw = execute(adapter, transport, http_request, true).await?;
        let mut decoder = adapter.stream_decoder(&ctx);
        crate::provider::StreamDecode::on_headers(&mut decoder, &raw.headers);
        Ok(ChatStream::new(adapter.kind(), raw.body, decoder, transport.timeouts().idle, transport.max_body()))
    })
}

/// Embeddings.
pub(crate) async fn embed(
    provider: &Provider,
    transport: &Transport,
    request: &EmbeddingRequest,
    ctx: &Ctx<'_>,
) -> Result<EmbeddingResponse> {
    with_adapter!(provider, adapter => with_total(adapter.kind(), transport, async {
        let token = token(adapter).await?;
        let ctx = Ctx { auth_token: token.as_ref(), ..*ctx };
        let http_request = adapter.encode_embed(request, &ctx)?;
        let response = send_whole(adapter, transport, http_request).await?;
        adapter.decode_embed(response, &ctx)
    }).await)
}

/// The provider's models.
pub(crate) async fn models(provider: &Provider, transport: &Transport) -> Result<ModelList> {
    with_adapter!(provider, adapter => with_total(adapter.kind(), transport, async {
        let http_request = adapter.encode_models()?;
        let response = send_whole(adapter, transport, http_request).await?;
        adapter.decode_models(response)
    }).await)
}

/// A fresh bearer token, for adapters that authenticate with one.
async fn token<A: Adapter>(adapter: &A) -> Result<Option<secrecy::SecretString>> {
    match adapter.credentials() {
        Some(credentials) => credentials.bearer_token().await.map(Some),
        None => Ok(None),
    }
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

/// Sends a request, retrying as the transport's policy allows, until a successful response
/// head. Error answers are read and mapped with the adapter's `decode_error`.
async fn execute<A: Adapter + ?Sized>(
    adapter: &A,
    transport: &Transport,
    request: http::Request<bytes::Bytes>,
    stream: bool,
) -> Result<crate::transport::RawResponse> {
    let provider = adapter.kind();
    let first_byte = transport.first_byte(stream);
    let mut attempt = 0;
    loop {
        let err = match transport.send(provider, adapter.upstream(), request.clone(), first_byte).await {
            Ok(raw) if raw.status.is_success() => return Ok(raw),
            Ok(raw) if raw.status.is_redirection() => crate::transport::redirected(provider, raw.status),
            Ok(raw) => {
                let (status, headers) = (raw.status, raw.headers.clone());
                let body = transport.error_body(provider, raw).await?;
                Error::from(adapter.decode_error(status, &headers, &body))
            }
            Err(err) => err,
        };
        let delay = if err.is_retryable() { transport.retry().delay(attempt, err.retry_after()) } else { None };
        let Some(delay) = delay else { return Err(err) };
        tracing::debug!(%provider, attempt, ?delay, error = %err, "retrying");
        tokio::time::sleep(delay).await;
        attempt += 1;
    }
}

async fn send_whole<A: Adapter>(
    adapter: &A,
    transport: &Transport,
    request: http::Request<bytes::Bytes>,
) -> Result<http::Response<bytes::Bytes>> {
    let raw = execute(adapter, transport, request, false).await?;
    raw.into_full(adapter.kind(), transport.max_body(), transport.timeouts().idle).await
}

/// The call under the total timeout, if one is set. Not an `async fn`: that would hold the
/// call twice (as its argument, then inside the timeout), and this future is in every
/// request's; as an `Either` it is the call's size plus the timer.
fn with_total<T>(
    provider: crate::provider::ProviderKind,
    transport: &Transport,
    call: impl std::future::Future<Output = Result<T>>,
) -> impl std::future::Future<Output = Result<T>> {
    use futures_util::future::{Either, FutureExt as _};
    match transport.timeouts().total {
        Some(total) => Either::Left(tokio::time::timeout(total, call).map(move |answer| {
            answer.unwrap_or_else(|_| Err(Error::Timeout { provider, phase: TimeoutPhase::Total, after: total }))
        })),
        None => Either::Right(call),
    }
}
