//! The engine under both front doors: providers and the transport, and the one owner of
//! retries, backoff and timeouts.
//!
//! An [`Operation`] (a chat, a stream, embeddings, a model list) is attempted on a
//! [`Provider`] by [`Engine::attempt`]: encode, one send, decode, under the total timeout.
//! [`Client`](crate::Client) calls [`Engine::call`], which attempts again as the
//! [`RetryPolicy`] says; the [`Router`](crate::router::Router) chooses a deployment for each
//! attempt itself, and asks the engine whether another may follow ([`Engine::may_retry`]),
//! and how long to back off ([`Engine::backoff`]). Each operation names its answer's type, so
//! a caller cannot receive an answer of another kind.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::error::{Error, Result, TimeoutPhase};
use crate::provider::chat_stream::ChatStream;
use crate::provider::native::Native;
use crate::provider::{Ctx, Provider, dispatch};
use crate::transport::{RetryPolicy, Timeouts, Transport};
use crate::{ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse, ModelList};

/// Providers, the transport and the retry policy.
#[derive(Debug)]
pub(crate) struct Engine {
    transport: Transport,
    retry: RetryPolicy,
    drop_params: bool,
}

/// One kind of call to a provider, and the answer it gives.
pub(crate) trait Operation: Sync {
    /// The answer.
    type Output: Send;
    /// A stream is not under the total timeout: its head is bounded by the first-byte
    /// timeout and each piece by the idle one.
    const STREAM: bool;

    /// One attempt: encode, send once, decode.
    fn attempt<'a>(
        &'a self,
        provider: &'a Provider,
        transport: &'a Transport,
        model: &'a str,
        drop_params: bool,
    ) -> impl Future<Output = Result<Self::Output>> + Send + 'a;
}

/// A chat completion (and the caller's own request, to send as it came where the provider
/// speaks its format; with `usage_only`, an answer in that format is decoded only for its
/// usage, id, model and stop reason: [`Ctx::usage_only`]).
pub(crate) struct Chat<'r> {
    pub request: &'r ChatRequest,
    pub native: Option<&'r Native>,
    pub usage_only: bool,
}
/// A streamed chat completion, open once its head arrived.
pub(crate) struct Stream<'r>(pub &'r ChatRequest, pub Option<&'r Native>);
/// Embeddings.
pub(crate) struct Embed<'r>(pub &'r EmbeddingRequest);
/// The exact input tokens of a native body.
pub(crate) struct CountNative<'r>(pub &'r Native);
/// The provider's models (the model argument is not used).
pub(crate) struct Models;

impl Operation for Chat<'_> {
    type Output = ChatResponse;
    const STREAM: bool = false;

    async fn attempt(
        &self,
        provider: &Provider,
        transport: &Transport,
        model: &str,
        drop: bool,
    ) -> Result<ChatResponse> {
        let hinted = hinted(self.request, self.native, provider, model);
        let request = hinted.as_deref().unwrap_or(self.request);
        let ctx = Ctx { usage_only: self.usage_only, ..Ctx::for_chat(model, request, false, drop) };
        dispatch::chat(provider, transport, request, &ctx, self.native).await
    }
}

impl Operation for Stream<'_> {
    type Output = ChatStream;
    const STREAM: bool = true;

    async fn attempt(&self, provider: &Provider, transport: &Transport, model: &str, drop: bool) -> Result<ChatStream> {
        let hinted = hinted(self.0, self.1, provider, model);
        let request = hinted.as_deref().unwrap_or(self.0);
        dispatch::chat_stream(provider, transport, request, &Ctx::for_chat(model, request, true, drop), self.1).await
    }
}

/// The request for an attempt on `model`. A request translated from the caller's own
/// format (`native`) carries `reasoning_effort` for Anthropic's thinking and effort, which
/// shape how an answer is produced, not what it says: a model the built-in registry knows
/// does not reason (gpt-4o, which refuses the parameter) gets the request without it: the
/// changed request, boxed (`None` when the request goes as it is), so the attempt's future
/// does not hold room for a whole request it rarely needs.
fn hinted(
    request: &ChatRequest,
    native: Option<&Native>,
    provider: &Provider,
    model: &str,
) -> Option<Box<ChatRequest>> {
    if native.is_some()
        && request.reasoning_effort.is_some()
        && crate::pricing::Registry::known_not_to_reason(&provider.kind().to_string(), model)
    {
        tracing::debug!(
            model,
            "leaving out reasoning_effort (from thinking or effort) for a model that does not reason"
        );
        return Some(Box::new(ChatRequest { reasoning_effort: None, ..request.clone() }));
    }
    None
}

impl Operation for Embed<'_> {
    type Output = EmbeddingResponse;
    const STREAM: bool = false;

    async fn attempt(
        &self,
        provider: &Provider,
        transport: &Transport,
        model: &str,
        drop: bool,
    ) -> Result<EmbeddingResponse> {
        dispatch::embed(provider, transport, self.0, &Ctx::for_embed(model, self.0, drop)).await
    }
}

impl Operation for CountNative<'_> {
    type Output = u64;
    const STREAM: bool = false;

    async fn attempt(&self, provider: &Provider, transport: &Transport, model: &str, _: bool) -> Result<u64> {
        dispatch::count_native(provider, transport, self.0, model).await
    }
}

impl Operation for Models {
    type Output = ModelList;
    const STREAM: bool = false;

    async fn attempt(&self, provider: &Provider, transport: &Transport, _: &str, _: bool) -> Result<ModelList> {
        dispatch::models(provider, transport).await
    }
}

impl Engine {
    /// An engine with these policies.
    pub(crate) fn new(retry: RetryPolicy, timeouts: Timeouts, drop_params: bool) -> Result<Self> {
        Ok(Self { transport: Transport::new(timeouts)?, retry, drop_params })
    }

    /// One attempt of `op` on `provider`, under the total timeout.
    pub(crate) fn attempt<'a, O: Operation>(
        &'a self,
        op: &'a O,
        provider: &'a Provider,
        model: &'a str,
    ) -> impl Future<Output = Result<O::Output>> + Send + 'a {
        self.attempt_until(op, provider, model, self.deadline::<O>())
    }

    /// Attempts `op` on `provider` until it succeeds, fails in a way another attempt cannot
    /// fix, or the policy allows no more; every attempt and backoff inside one total timeout.
    pub(crate) async fn call<O: Operation>(&self, op: &O, provider: &Provider, model: &str) -> Result<O::Output> {
        let deadline = self.deadline::<O>();
        let mut retries = 0;
        loop {
            let err = match self.attempt_until(op, provider, model, deadline).await {
                Ok(answer) => return Ok(answer),
                Err(err) => err,
            };
            let delay = if self.may_retry(retries, &err) { self.backoff(retries, err.retry_after()) } else { None };
            let Some(delay) = delay else { return Err(err) };
            if let Some((at, total)) = deadline
                && Instant::now() + delay >= at
            {
                return Err(Error::Timeout { provider: provider.kind(), phase: TimeoutPhase::Total, after: total });
            }
            tracing::debug!(provider = %provider.kind(), retries, ?delay, error = %err, "retrying");
            tokio::time::sleep(delay).await;
            retries += 1;
        }
    }

    /// Whether another attempt may follow retry number `retries` (0 after the first attempt)
    /// that failed with `err`.
    pub(crate) fn may_retry(&self, retries: u32, err: &Error) -> bool {
        err.is_retryable() && retries < self.retry.max_retries
    }

    /// How long to wait before retry number `retries`: the upstream's `retry_after` (up to
    /// the policy's `max_retry_after`), else exponential backoff with jitter; `None` when no
    /// retry should be made.
    pub(crate) fn backoff(&self, retries: u32, retry_after: Option<Duration>) -> Option<Duration> {
        self.retry.delay(retries, retry_after)
    }

    /// Whether waiting `wait` for a deployment to come back is worth it before retry
    /// number `retries`.
    pub(crate) fn may_wait(&self, retries: u32, wait: Duration) -> bool {
        retries < self.retry.max_retries && wait <= self.retry.max_retry_after
    }

    /// When the total timeout of a call starting now ends, for operations under it.
    fn deadline<O: Operation>(&self) -> Option<(Instant, Duration)> {
        let total = self.transport.timeouts().total.filter(|_| !O::STREAM)?;
        Some((Instant::now() + total, total))
    }

    /// One attempt, given up at `deadline`. Not an `async fn`: that would hold the attempt
    /// twice (as its argument, then inside the timeout), and this future is in every
    /// request's; as an `Either` it is the attempt's size plus the timer.
    fn attempt_until<'a, O: Operation>(
        &'a self,
        op: &'a O,
        provider: &'a Provider,
        model: &'a str,
        deadline: Option<(Instant, Duration)>,
    ) -> impl Future<Output = Result<O::Output>> + Send + 'a {
        use futures_util::future::{Either, FutureExt as _};
        let attempt = op.attempt(provider, &self.transport, model, self.drop_params);
        match deadline {
            Some((at, total)) => Either::Left(tokio::time::timeout_at(at.into(), attempt).map(move |answer| {
                answer.unwrap_or_else(|_| {
                    Err(Error::Timeout { provider: provider.kind(), phase: TimeoutPhase::Total, after: total })
                })
            })),
            None => Either::Right(attempt),
        }
    }
}
