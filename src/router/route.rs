//! The routing loop: pick, attempt, learn from the failure, re-pick or fall back.
//!
//! - Retries stay in the group and re-pick, preferring deployments that have not failed this
//!   call. Errors that another attempt cannot fix (authentication, invalid request, context
//!   length, content policy) are not retried; they go straight to the fallbacks.
//! - A failure counts against its deployment (rate limits, auth, not found, server errors,
//!   timeouts); more than `allowed_fails` inside the failure window cools it down. A 429 that
//!   says when to come back (`Retry-After`) cools it down for exactly that long: the upstream
//!   told us, on behalf of every instance sharing the state.
//! - When every deployment of a group is cooling down, a retry waits for the first to come
//!   back if that is within the retry policy's `max_retry_after`; otherwise the call fails
//!   with a rate-limit error naming the group, and its `retry_after`.
//! - Fallbacks follow the requested group's lists: context-window errors (the provider's, or
//!   our pre-call check) use `context_window_fallbacks`, content-policy refusals use
//!   `content_policy_fallbacks`, then either falls back to the general `fallbacks`, which
//!   serve every other error except an invalid request (another group would refuse it too).
//! - Shared state is advisory: when Redis is unreachable the router logs it and routes on
//!   what it knows, rather than failing calls because a counter could not be read.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tracing::Instrument as _;

use super::call::Call;
use super::deployment::{InFlight, Live};
use super::policy::{self, Candidate};
use super::state::MinuteUsage;
use super::{Attempt, CallOptions, Inner, Routed, RoutedStream, Router};
use crate::cache::{ResponseCache, replay_chunks};
use crate::engine::{self, Operation};
use crate::error::{Error, ErrorKind, Result};
use crate::hooks::EventKind;
use crate::pricing::Receipt;
use crate::provider::chat_stream::ChatStream;
use crate::provider::{Provider, ProviderKind};
use crate::spec::openai::CompletionUsage;
use crate::tokens::{TokenCount, chat_upper_bound, count_chat_async, reserved_output};
use crate::transport::Transport;
use crate::{ChatChunk, ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse};

/// An operation the router can route: the engine's, with what the router needs to know of it.
pub(crate) trait Routable: Operation {
    /// The chat request, for token counts (none for embeddings).
    fn chat_request(&self) -> Option<&ChatRequest>;

    /// When the answer was in hand, for the deployment's latency: a stream's first chunk;
    /// `None` for when the attempt returned.
    fn answered_at(_: &Self::Output) -> Option<Instant> {
        None
    }
}

impl Routable for engine::Chat<'_> {
    fn chat_request(&self) -> Option<&ChatRequest> {
        Some(self.0)
    }
}

impl Routable for engine::Embed<'_> {
    fn chat_request(&self) -> Option<&ChatRequest> {
        None
    }
}

/// A stream, attempted until its first chunk: a failure before it is retried and falls back
/// like any other.
struct FirstChunk<'r>(&'r ChatRequest);

/// A stream that has started.
struct Opened {
    stream: ChatStream,
    /// Its first chunk (none for an empty stream).
    first: Option<ChatChunk>,
    /// When that chunk came.
    at: Instant,
}

impl Operation for FirstChunk<'_> {
    type Output = Opened;
    const STREAM: bool = true;

    async fn attempt(&self, provider: &Provider, transport: &Transport, model: &str, drop: bool) -> Result<Opened> {
        let mut stream = engine::Stream(self.0).attempt(provider, transport, model, drop).await?;
        let first = stream.next_chunk().await.transpose()?;
        Ok(Opened { stream, first, at: Instant::now() })
    }
}

impl Routable for FirstChunk<'_> {
    fn chat_request(&self) -> Option<&ChatRequest> {
        Some(self.0)
    }

    fn answered_at(opened: &Opened) -> Option<Instant> {
        Some(opened.at)
    }
}

/// A deployment that took the call.
struct Placed<T> {
    live: Arc<Live>,
    in_flight: InFlight,
    outcome: T,
    /// Tokens counted against its tpm before the call.
    precharged: u64,
}

/// Token counts for the context-window pre-check and tpm limits, counted only when needed.
struct Sizing<'r> {
    request: Option<&'r ChatRequest>,
    bound: u64,
    reserved: u64,
    counts: HashMap<(ProviderKind, String), TokenCount>,
}

impl<'r> Sizing<'r> {
    fn new(request: Option<&'r ChatRequest>) -> Self {
        Self {
            request,
            bound: request.map_or(0, chat_upper_bound),
            reserved: request.map_or(0, reserved_output),
            counts: HashMap::new(),
        }
    }

    /// The prompt's tokens for the deployment's tokenizer, counted once per tokenizer (off
    /// the event loop when the prompt is large: [`count_chat_async`]).
    async fn count(&mut self, live: &Live) -> u64 {
        let Some(request) = self.request else { return 0 };
        let key = (live.kind, live.model.clone());
        if let Some(count) = self.counts.get(&key) {
            return count.tokens;
        }
        let count = count_chat_async(live.kind, &live.model, request, self.bound).await;
        self.counts.insert(key, count);
        count.tokens
    }

    /// The prompt's tokens as far as known without counting: a count made for any
    /// deployment, else four bytes a token.
    fn estimate(&self) -> u64 {
        self.counts.values().map(|c| c.tokens).max().unwrap_or_else(|| self.bound.div_ceil(4))
    }

    /// Whether the prompt and the reserved output fit the deployment's window.
    async fn fits(&mut self, live: &Live) -> bool {
        let Some(window) = live.context_window else { return true };
        self.request.is_none()
            || self.bound + self.reserved <= window
            || self.count(live).await + self.reserved <= window
    }

    /// Tokens to count against the deployment's tpm before the call.
    async fn for_limits(&mut self, live: &Live) -> u64 {
        if live.tpm.is_some() { self.count(live).await } else { 0 }
    }
}

/// Logs a shared-state failure and goes on with `fallback`.
fn advisory<T>(result: Result<T>, fallback: T, what: &str) -> T {
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

/// The error when no deployment of `group` can take a call now: `soonest` is when the first
/// cooling down is back (none: every one is at its rpm/tpm limit, until the next minute).
fn unavailable(group: &str, soonest: Option<Duration>) -> Error {
    let message = match soonest {
        Some(wait) => format!(
            "every deployment of `{group}` is cooling down after failures or rate limits; the first is back in {:.1} s",
            wait.as_secs_f64()
        ),
        None => format!("every deployment of `{group}` is at its rpm/tpm limit for this minute"),
    };
    let retry_after = soonest.or_else(|| {
        let secs = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Some(Duration::from_secs(60 - secs % 60))
    });
    Error::Routing { kind: ErrorKind::RateLimited, message, retry_after }
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
        let mut call = Call::new(inner, &request.model, false, options.context.clone());
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
            let placed = match inner.run(&mut call, &engine::Chat(request)).await {
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
            call.end(EventKind::Success, &report, response.usage.clone(), None);
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
        let mut call = Call::new(inner, &request.model, true, options.context.clone());
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
            let placed = match inner.run(&mut call, &FirstChunk(request)).await {
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
        let mut call = Call::new(inner, &request.model, false, options.context);
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

/// Output tokens reserved for a call that sets no `max_tokens` on a model whose most the
/// price registry does not know.
pub const DEFAULT_RESERVED_OUTPUT: u64 = 4096;

/// What a call may use, worked out before it is made: what the gateway reserves against a
/// key's budget and tokens per minute.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Estimate {
    /// The prompt's tokens (the largest count over the group's tokenizers).
    pub prompt_tokens: u64,
    /// The output reserved: `max_completion_tokens` / `max_tokens`, else the model's most
    /// (from the price registry), else [`DEFAULT_RESERVED_OUTPUT`]; the largest over the group.
    pub output_tokens: u64,
    /// The prompt alone at the priciest deployment: what the call costs at least.
    pub prompt_cost: Option<crate::pricing::Usd>,
    /// The prompt and the reserved output at the priciest deployment: what it costs at most
    /// (when the provider keeps to the reserved output).
    pub full_cost: Option<crate::pricing::Usd>,
}

impl Router {
    /// What this request can be expected to use on its group ([`Estimate`]); `None` when
    /// the group is unknown. Large prompts are counted off the event loop.
    pub async fn estimate(&self, request: &ChatRequest) -> Option<Estimate> {
        let deployments = self.inner.groups.get(&request.model)?;
        let mut sizing = Sizing::new(Some(request));
        let mut estimate = Estimate::default();
        // Each of `n` choices has its own output.
        let choices = request.n.unwrap_or(1).clamp(1, crate::spec::ext::MAX_CHOICES).unsigned_abs();
        for live in deployments {
            let prompt = sizing.count(live).await;
            let output = match sizing.reserved {
                0 => live.max_output.unwrap_or(DEFAULT_RESERVED_OUTPUT),
                reserved => reserved,
            }
            .saturating_mul(choices);
            estimate.prompt_tokens = estimate.prompt_tokens.max(prompt);
            estimate.output_tokens = estimate.output_tokens.max(output);
            estimate.prompt_cost = estimate.prompt_cost.max(live.expected_cost(prompt, 0));
            estimate.full_cost = estimate.full_cost.max(live.expected_cost(prompt, output));
        }
        Some(estimate)
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

    /// Runs the call in its group, then in the fallbacks the errors lead to.
    async fn run<O: Routable>(&self, call: &mut Call, op: &O) -> Result<Placed<O::Output>> {
        let origin = call.group.clone();
        let mut sizing = Sizing::new(op.chat_request());
        let mut group = origin.clone();
        loop {
            match self.run_group(&group, call, op, &mut sizing).await {
                Ok(placed) => return Ok(placed),
                Err(err) => {
                    let Some(next) = self.next_fallback(&origin, &err, &call.fallbacks) else { return Err(err) };
                    tracing::info!(from = %group, to = %next, error = %err, "falling back");
                    call.fallbacks.push(next.clone());
                    group = next;
                }
            }
        }
    }

    fn next_fallback(&self, origin: &str, err: &Error, taken: &[String]) -> Option<String> {
        let specific = match err.kind() {
            ErrorKind::ContextLengthExceeded => self.context_window_fallbacks.get(origin),
            ErrorKind::ContentFiltered => self.content_policy_fallbacks.get(origin),
            ErrorKind::InvalidRequest => return None,
            _ => None,
        };
        // An unknown group is the caller's mistake, not a reason to serve another model.
        if matches!(err, Error::Routing { kind: ErrorKind::NotFound, .. }) {
            return None;
        }
        specific
            .into_iter()
            .chain(self.fallbacks.get(origin))
            .flatten()
            .find(|g| g.as_str() != origin && !taken.contains(g))
            .cloned()
    }

    /// The group's deployments, or the error naming the groups there are.
    fn deployments(&self, group: &str) -> Result<&[Arc<Live>]> {
        self.groups.get(group).map(Vec::as_slice).ok_or_else(|| {
            let mut known: Vec<&str> = self.groups.keys().map(String::as_str).collect();
            known.sort_unstable();
            Error::Routing {
                kind: ErrorKind::NotFound,
                message: format!(
                    "no deployment serves the model `{}` (known: {})",
                    crate::bounds::shown(group),
                    known.join(", ")
                ),
                retry_after: None,
            }
        })
    }

    /// Which deployments the prompt fits; an error when it fits none.
    async fn fitting(&self, group: &str, deployments: &[Arc<Live>], sizing: &mut Sizing<'_>) -> Result<Vec<bool>> {
        let mut fits = Vec::with_capacity(deployments.len());
        for live in deployments {
            fits.push(sizing.fits(live).await);
        }
        if fits.contains(&true) {
            return Ok(fits);
        }
        let largest = deployments.iter().filter_map(|d| d.context_window).max().unwrap_or(0);
        let mut prompt = 0;
        for live in deployments {
            prompt = prompt.max(sizing.count(live).await);
        }
        Err(Error::Routing {
            kind: ErrorKind::ContextLengthExceeded,
            message: format!(
                "the prompt (about {prompt} tokens, {} reserved for output) does not fit the context window of any deployment of `{group}` (largest: {largest} tokens)",
                sizing.reserved
            ),
            retry_after: None,
        })
    }

    /// Runs the call in one group: pick a deployment, attempt, learn from a failure, and
    /// again while the engine allows another attempt.
    async fn run_group<O: Routable>(
        &self,
        group: &str,
        call: &mut Call,
        op: &O,
        sizing: &mut Sizing<'_>,
    ) -> Result<Placed<O::Output>> {
        let deployments = self.deployments(group)?;
        let fits = self.fitting(group, deployments, sizing).await?;
        let mut retries = 0u32;
        let mut failed_here: Vec<usize> = Vec::new();
        loop {
            let index = match self.pick(deployments, &fits, &failed_here, sizing).await {
                Ok(index) => index,
                Err(soonest) => {
                    if let Some(wait) = soonest
                        && self.engine.may_wait(retries, wait)
                    {
                        tracing::debug!(group, ?wait, "every deployment is cooling down; waiting for the first back");
                        tokio::time::sleep(wait).await;
                        retries += 1;
                        continue;
                    }
                    return Err(unavailable(group, soonest));
                }
            };
            let live = &deployments[index];
            let err = match self.place(group, live, call, op, sizing).await {
                Ok(placed) => return Ok(placed),
                Err(err) => err,
            };
            tracing::info!(deployment = %live.id, error = %err, "attempt failed");
            self.learn(live, &err).await;
            if !self.engine.may_retry(retries, &err) {
                return Err(err);
            }
            if !failed_here.contains(&index) {
                failed_here.push(index);
            }
            // Back off only when the same deployment is the only one left to try
            // (a Retry-After is waited out through the cooldown instead).
            if deployments.len() == failed_here.len()
                && err.retry_after().is_none()
                && let Some(delay) = self.engine.backoff(retries, None)
            {
                tokio::time::sleep(delay).await;
            }
            retries += 1;
        }
    }

    /// Chooses a deployment by the strategy, preferring those that have not failed this call;
    /// when none can take it, `Err` with when the first cooling down is back (none: every
    /// deployment is at its limits for the minute).
    async fn pick(
        &self,
        deployments: &[Arc<Live>],
        fits: &[bool],
        failed_here: &[usize],
        sizing: &mut Sizing<'_>,
    ) -> std::result::Result<usize, Option<Duration>> {
        let mut candidates = Vec::with_capacity(deployments.len());
        let mut soonest: Option<Duration> = None;
        let mut tokens = 0;
        // One round of state reads, all deployments at once (one round trip to Redis).
        let reads = futures_util::future::join_all(deployments.iter().map(|live| async move {
            let left = advisory(self.state.cooldown_left(&live.id).await, None, "read a cooldown");
            let usage = if live.rpm.is_some() || live.tpm.is_some() {
                advisory(self.state.usage(&live.id).await, MinuteUsage::default(), "read usage")
            } else {
                MinuteUsage::default()
            };
            (left, usage)
        }))
        .await;
        for (i, (live, (left, usage))) in deployments.iter().zip(reads).enumerate() {
            if fits[i]
                && let Some(left) = left
            {
                soonest = Some(soonest.map_or(left, |s| s.min(left)));
            }
            if live.rpm.is_some() || live.tpm.is_some() {
                tokens = tokens.max(sizing.for_limits(live).await);
            }
            let cost = if self.strategy == policy::Strategy::LowestCost {
                live.expected_cost(sizing.count(live).await, sizing.reserved)
            } else {
                None
            };
            candidates.push(Candidate {
                weight: live.weight,
                order: live.order,
                rpm: live.rpm,
                tpm: live.tpm,
                usage,
                in_flight: live.in_flight.load(std::sync::atomic::Ordering::Relaxed),
                latency: live.latency(),
                cost,
                cooling_down: left.is_some() || !fits[i],
            });
        }
        let mut rng = self.rng.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let fresh: Vec<Candidate> = candidates
            .iter()
            .enumerate()
            .map(|(i, c)| Candidate { cooling_down: c.cooling_down || failed_here.contains(&i), ..c.clone() })
            .collect();
        policy::choose(self.strategy, &fresh, tokens, &mut rng)
            .or_else(|| policy::choose(self.strategy, &candidates, tokens, &mut rng))
            .ok_or(soonest)
    }

    /// One attempt on the chosen deployment: counted against its limits, timed, recorded in
    /// the call's attempts.
    async fn place<O: Routable>(
        &self,
        group: &str,
        live: &Arc<Live>,
        call: &mut Call,
        op: &O,
        sizing: &mut Sizing<'_>,
    ) -> Result<Placed<O::Output>> {
        let precharged = sizing.for_limits(live).await;
        if live.rpm.is_some() || live.tpm.is_some() {
            advisory(self.state.add_usage(&live.id, 1, precharged).await.map(|_| ()), (), "count a request");
        }
        let in_flight = InFlight::start(live);
        call.current = Some(live.clone());
        call.prompt_tokens = sizing.estimate();
        let started = Instant::now();
        let span = tracing::info_span!(
            "switchyard.attempt",
            group,
            deployment = %live.id,
            provider = %live.kind,
            model = %live.model,
            attempt = call.attempts.len() + 1
        );
        let result = self
            .engine
            .attempt(op, &live.provider, &live.model)
            .instrument(span)
            .await
            .map_err(|err| err.redact(&live.secrets));
        let duration = started.elapsed();
        call.attempts.push(Attempt {
            group: group.to_string(),
            deployment: live.id.clone(),
            provider: live.kind,
            duration,
            error: result.as_ref().err().map(|e| (e.kind(), e.to_string())),
        });
        match result {
            Ok(outcome) => {
                live.observe_latency(O::answered_at(&outcome).map_or(duration, |at| at.duration_since(started)));
                Ok(Placed { live: live.clone(), in_flight, outcome, precharged })
            }
            Err(err) => {
                drop(in_flight);
                call.current = None;
                Err(err)
            }
        }
    }

    /// Records a failure against its deployment and starts a cooldown when it calls for one.
    async fn learn(&self, live: &Live, err: &Error) {
        if err.kind() == ErrorKind::RateLimited
            && let Some(wait) = err.retry_after().filter(|w| !w.is_zero())
        {
            advisory(self.state.start_cooldown(&live.id, wait).await, (), "start a cooldown");
            return;
        }
        let counts = matches!(
            err.kind(),
            ErrorKind::RateLimited
                | ErrorKind::Authentication
                | ErrorKind::PermissionDenied
                | ErrorKind::NotFound
                | ErrorKind::Overloaded
                | ErrorKind::Server
                | ErrorKind::Timeout
        );
        if !counts {
            return;
        }
        let failures = advisory(self.state.record_failure(&live.id, self.failure_window).await, 0, "count a failure");
        if failures > self.allowed_fails {
            tracing::warn!(deployment = %live.id, failures, cooldown = ?self.cooldown, "deployment cooling down");
            advisory(self.state.start_cooldown(&live.id, self.cooldown).await, (), "start a cooldown");
        }
    }
}
