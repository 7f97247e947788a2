//! The router's front doors: chat, streams and embeddings, each through the response cache
//! (chat), the routing loop ([`super::group`]) and its settlement: tokens counted, receipt,
//! one hook event per call.

use tracing::Instrument as _;

use super::call::Call;
use super::deployment::Live;
use super::ops::{FirstChunk, Opened};
use super::{CallOptions, Inner, Routed, RoutedStream, Router};
use crate::cache::{ResponseCache, replay_chunks};
use crate::engine;
use crate::error::{Error, Result};
use crate::hooks::EventKind;
use crate::pricing::Receipt;
use crate::provider::dispatch;
use crate::provider::native::Native;
use crate::spec::openai::CompletionUsage;
use crate::{ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse};

/// Logs a shared-state failure and goes on with `fallback`.
pub(super) fn advisory<T>(result: Result<T>, fallback: T, what: &str) -> T {
    result.unwrap_or_else(|err| {
        tracing::warn!(error = %err, "router state: cannot {what}; routing without it");
        fallback
    })
}

fn usage_of_embedding(response: &EmbeddingResponse) -> Option<CompletionUsage> {
    response.usage.as_ref().map(|u| CompletionUsage {
        completion_tokens: 0,
        completion_tokens_details: None,
        prompt_tokens: u.prompt_tokens,
        prompt_tokens_details: None,
        total_tokens: u.total_tokens,
        extra: serde_json::Map::new(),
    })
}

fn total_tokens(usage: Option<&CompletionUsage>) -> u64 {
    usage.and_then(|u| u64::try_from(u.total_tokens).ok()).unwrap_or(0)
}

impl Router {
    /// A chat completion through the group named by `request.model`.
    pub async fn chat(&self, request: &ChatRequest) -> Result<Routed<ChatResponse>> {
        self.chat_with(request, CallOptions::default()).await
    }

    /// A chat completion with per-call options (cache control).
    pub async fn chat_with(&self, request: &ChatRequest, options: CallOptions) -> Result<Routed<ChatResponse>> {
        let inner = &self.inner;
        let mut call = Call::new(inner, inner.group_for(&request.model), false, options.context.clone());
        let span = tracing::info_span!("switchyard.call", call_id = %call.id, group = %call.group, stream = false);
        async {
            let cache_key = match inner.cache_key(request, &options) {
                Ok(key) => key,
                Err(err) => return Err(inner.failed(&mut call, err)),
            };
            if let Some((cache, key)) = &cache_key
                && !options.cache.no_cache
                && let Some(hit) = inner.cache_get(cache, key).await
            {
                let report = call.report(None, inner.cached_receipt(&call.group, hit.usage.as_ref()), true);
                call.end(EventKind::Success, &report, hit.usage.clone(), None);
                return Ok(Routed { response: hit, report });
            }
            // A caller that reads only a native answer's usage gets it decoded for no more,
            // unless the cache keeps the answer.
            let stored = cache_key.is_some() && !options.cache.no_store;
            let op =
                engine::Chat { request, native: options.native.as_deref(), usage_only: options.usage_only && !stored };
            let placed = match inner.run(&mut call, &op).await {
                Ok(placed) => placed,
                Err(err) => return Err(inner.failed(&mut call, err)),
            };
            let response = placed.outcome;
            // From here the answer is known: a caller that goes away now is charged for it.
            call.usage.clone_from(&response.usage);
            inner.settle(&placed.live, placed.precharged, response.usage.as_ref()).await;
            if let Some((cache, key)) = &cache_key
                && !options.cache.no_store
            {
                advisory(cache.put(key, &response, options.cache.ttl).await, (), "store a cached answer");
            }
            let receipt = inner.receipt(&placed.live, response.usage.as_ref());
            let report = call.report(Some(&placed.live), receipt, false);
            drop(placed.in_flight);
            // The call ends here, so its copy of the usage goes to the event.
            let usage = call.usage.take();
            call.end(EventKind::Success, &report, usage, None);
            Ok(Routed { response, report })
        }
        .instrument(span)
        .await
    }

    /// A streamed chat completion. Resolves at the first chunk: failures before it are
    /// retried and fall back like any other; a failure after it ends the stream with a typed
    /// error. The report's receipt is filled in when the stream ends.
    pub async fn chat_stream(&self, request: &ChatRequest) -> Result<RoutedStream> {
        self.chat_stream_with(request, CallOptions::default()).await
    }

    /// A streamed chat completion with per-call options.
    pub async fn chat_stream_with(&self, request: &ChatRequest, options: CallOptions) -> Result<RoutedStream> {
        let inner = &self.inner;
        let mut call = Call::new(inner, inner.group_for(&request.model), true, options.context.clone());
        let span = tracing::info_span!("switchyard.call", call_id = %call.id, group = %call.group, stream = true);
        let include_usage = request.stream_options.as_ref().and_then(|o| o.include_usage).unwrap_or(false);
        async {
            let cache_key = match inner.cache_key(request, &options) {
                Ok(key) => key,
                Err(err) => return Err(inner.failed(&mut call, err)),
            };
            if let Some((cache, key)) = &cache_key
                && !options.cache.no_cache
                && let Some(hit) = inner.cache_get(cache, key).await
            {
                let mut report = call.report(None, inner.cached_receipt(&call.group, hit.usage.as_ref()), true);
                report.time_to_first_token = Some(call.started.elapsed());
                let chunks = match replay_chunks(&hit, include_usage) {
                    Ok(chunks) => chunks,
                    Err(err) => return Err(inner.failed(&mut call, err)),
                };
                return Ok(RoutedStream::replay(self.inner.clone(), call, report, chunks, hit.usage));
            }
            let placed = match inner.run(&mut call, &FirstChunk(request, options.native.as_deref())).await {
                Ok(placed) => placed,
                Err(err) => return Err(inner.failed(&mut call, err)),
            };
            let Opened { stream, first, at } = placed.outcome;
            let mut report = call.report(Some(&placed.live), None, false);
            report.time_to_first_token = Some(at.duration_since(call.started));
            let store = cache_key
                .filter(|_| !options.cache.no_store)
                .map(|(cache, key)| (cache.clone(), key, options.cache.ttl));
            Ok(RoutedStream::live(
                self.inner.clone(),
                call,
                report,
                stream,
                first,
                placed.in_flight,
                placed.precharged,
                store,
            ))
        }
        .instrument(span)
        .await
    }

    /// Embeddings through the group named by `request.model`.
    pub async fn embed(&self, request: &EmbeddingRequest) -> Result<Routed<EmbeddingResponse>> {
        self.embed_with(request, CallOptions::default()).await
    }

    /// Embeddings with per-call options (the cache does not apply to embeddings).
    pub async fn embed_with(
        &self,
        request: &EmbeddingRequest,
        options: CallOptions,
    ) -> Result<Routed<EmbeddingResponse>> {
        let inner = &self.inner;
        let mut call = Call::new(inner, inner.group_for(&request.model), false, options.context);
        let span = tracing::info_span!("switchyard.call", call_id = %call.id, group = %call.group, stream = false);
        async {
            let placed = match inner.run(&mut call, &engine::Embed(request)).await {
                Ok(placed) => placed,
                Err(err) => return Err(inner.failed(&mut call, err)),
            };
            let response = placed.outcome;
            let usage = usage_of_embedding(&response);
            call.usage.clone_from(&usage);
            inner.settle(&placed.live, placed.precharged, usage.as_ref()).await;
            let report = call.report(Some(&placed.live), inner.receipt(&placed.live, usage.as_ref()), false);
            drop(placed.in_flight);
            call.end(EventKind::Success, &report, usage, None);
            Ok(Routed { response, report })
        }
        .instrument(span)
        .await
    }
}

impl Router {
    /// The exact input tokens of a request in a provider's own format, counted by the
    /// group's first deployment whose provider counts that format (Anthropic's
    /// `count_tokens`), with the engine's retries; `None` when no deployment does. A count
    /// is free: no receipt, no hook event, no limits.
    pub async fn count_native(&self, group: &str, native: &Native) -> Option<Result<u64>> {
        let live = self
            .inner
            .groups
            .get(self.inner.resolve(group)?)?
            .iter()
            .find(|l| dispatch::counts_native(&l.provider, &l.model))?;
        Some(self.inner.engine.call(&engine::CountNative(native), &live.provider, &live.model).await)
    }

    /// The price of `usage` on a deployment (by id), for calls whose usage is known only
    /// in part (a stream cut by a budget).
    pub fn price_on(&self, deployment: &str, usage: &CompletionUsage) -> Option<Receipt> {
        let live = self.inner.groups.values().flatten().find(|l| l.id == deployment)?;
        self.inner.receipt(live, Some(usage))
    }
}

impl Inner {
    fn cache_key(&self, request: &ChatRequest, options: &CallOptions) -> Result<Option<(&ResponseCache, String)>> {
        match &self.cache {
            Some(cache) if !(options.cache.no_cache && options.cache.no_store) => {
                Ok(Some((cache, ResponseCache::key(request)?)))
            }
            _ => Ok(None),
        }
    }

    async fn cache_get(&self, cache: &ResponseCache, key: &str) -> Option<ChatResponse> {
        advisory(cache.get(key).await, None, "read the response cache")
    }

    pub(crate) fn receipt(&self, live: &Live, usage: Option<&CompletionUsage>) -> Option<Receipt> {
        self.prices.receipt(&live.kind.to_string(), &live.priced_as, usage?)
    }

    /// A cache hit's receipt: the items as the group's first priced deployment prices them
    /// (the entry does not record which one answered), at no cost.
    fn cached_receipt(&self, group: &str, usage: Option<&CompletionUsage>) -> Option<Receipt> {
        self.groups.get(group)?.iter().find_map(|live| self.receipt(live, usage)).map(Receipt::for_cache_hit)
    }

    /// Counts the tokens the call used beyond what was charged before it.
    pub(crate) async fn settle(&self, live: &Live, precharged: u64, usage: Option<&CompletionUsage>) {
        let extra = total_tokens(usage).saturating_sub(precharged);
        if extra > 0 && live.tpm.is_some() {
            advisory(self.state.add_usage(&live.id, 0, extra).await.map(|_| ()), (), "count tokens");
        }
    }

    fn failed(&self, call: &mut Call, err: Error) -> Error {
        let report = call.report(None, None, false);
        call.end(EventKind::Failure, &report, None, Some(&err));
        err
    }
}
