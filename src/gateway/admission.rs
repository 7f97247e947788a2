//! Admission: whether a key may make a call now (its models, calls in flight, budget,
//! rpm/tpm), and what the call holds while it runs: a parallel slot, budget reservations
//! and tokens of its minute.
//!
//! What a call holds is an [`Admission`], handed to the router as the call's owner
//! ([`CallOwner`]), which is told how the call ended ([`super::settle`]); the handler keeps
//! its own typed reference. It is a drop guard: when the last reference goes (the call has ended, its stream included, or
//! it was cut short by a client that went away, a panic, a shutdown), the holds are settled
//! with the call's cost as the router's end-of-call event reported it ([`Admission::finish`]),
//! or released if the call never reached the router. No callback has to run for a
//! reservation to be given back.

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, HeaderValue};

use super::auth::Principal;
use super::guardrails::stream::GuardedStream;
use super::limits::{InFlightKey, Limits, Refusal, Reservation, TokenHold};
use super::settle::Settler;
use super::store::{KeyRecord, now_ms};
use super::{ApiFailure, Gateway};
use crate::ChatChunk;
use crate::error::ErrorKind;
use crate::hooks::{CallEvent, CallOwner};
use crate::router::Estimate;
use crate::router::state::MinuteUsage;

/// What a call holds while it runs, released (settled) when dropped.
#[derive(Debug)]
pub(super) struct Admission {
    pub key: Option<Arc<KeyRecord>>,
    limits: Option<Arc<Limits>>,
    /// The key's and the team's budget reservations.
    holds: Mutex<Vec<Reservation>>,
    /// Tokens held against the key's tpm.
    tokens: Option<TokenHold>,
    /// What the call was estimated to use.
    pub estimate: Estimate,
    /// The call's cost (pico-dollars) and tokens, once its end is known.
    outcome: Mutex<Option<(i64, u64)>>,
    /// Why the gateway cut the call short, if it did (for its spend row).
    cut: Mutex<Option<&'static str>>,
    /// In durable mode: the call's spend row being written, for the answer to wait on.
    written: Mutex<Option<super::spend::Written>>,
    /// Where the call's end goes.
    settler: Arc<Settler>,
    _in_flight: Option<InFlightKey>,
}

impl CallOwner for Admission {
    fn ended(&self, event: &CallEvent) {
        let (cost, written) = self.settler.settle(event, self.key.as_deref(), self.cut_reason(), true);
        let used = event.usage.as_ref().and_then(|u| u64::try_from(u.total_tokens).ok()).unwrap_or(0);
        self.finish(cost, used);
        if let Some(written) = written {
            self.written(written);
        }
    }
}

impl Admission {
    /// The admission of a call with nothing held (the master key).
    pub fn free(gateway: &Gateway) -> Arc<Self> {
        Arc::new(Self {
            key: None,
            limits: None,
            holds: Mutex::default(),
            tokens: None,
            estimate: Estimate::default(),
            outcome: Mutex::default(),
            cut: Mutex::default(),
            written: Mutex::default(),
            settler: gateway.settler.clone(),
            _in_flight: None,
        })
    }

    /// Records how the call ended: what it cost and the tokens it used. The holds are
    /// settled with these when the admission is dropped.
    fn finish(&self, cost: i64, tokens: u64) {
        *self.outcome.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some((cost, tokens));
    }

    /// Keeps the call's spend row being written, for [`Admission::wait_written`].
    fn written(&self, written: super::spend::Written) {
        *self.written.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(written);
    }

    /// In durable mode, waits until the call's spend row is written; at once otherwise.
    pub async fn wait_written(&self) {
        let written = self.written.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(written) = written {
            written.wait().await;
        }
    }

    /// Why the gateway cut the call short, if it did.
    fn cut_reason(&self) -> Option<&'static str> {
        *self.cut.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn has_budget(&self) -> bool {
        !self.holds.lock().unwrap_or_else(std::sync::PoisonError::into_inner).is_empty()
    }

    /// What the budget reservations hold, the least of them (pico-dollars).
    fn reserved(&self) -> i64 {
        let holds = self.holds.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        holds.iter().map(|r| r.estimate).min().unwrap_or(i64::MAX)
    }

    /// Adds `by` to every budget reservation, all or none: `false` when a budget has no room.
    async fn extend(&self, by: i64) -> bool {
        let Some(limits) = &self.limits else { return true };
        let mut holds = std::mem::take(&mut *self.holds.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        let mut extended = 0;
        let mut room = true;
        for hold in &mut holds {
            match limits.extend(hold, by).await {
                Ok(true) => extended += 1,
                Ok(false) => {
                    room = false;
                    break;
                }
                Err(err) => {
                    // The counters cannot be reached: the stream goes on (as a call would be
                    // admitted), and the settlement at its end counts what it cost.
                    tracing::warn!(error = %err, "cannot extend a budget reservation");
                    extended += 1;
                }
            }
        }
        if !room {
            for hold in holds.iter_mut().take(extended) {
                let _ = limits.extend(hold, -by).await;
            }
        }
        self.holds.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend(holds);
        room
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let Some(limits) = &self.limits else { return };
        let outcome = self.outcome.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        // No outcome: the call never reached the router's end (it was refused after being
        // admitted, or failed before routing): nothing was spent.
        let (cost, used) = outcome.unwrap_or((0, 0));
        let holds = std::mem::take(&mut *self.holds.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        let tokens = self.tokens.take().map(|hold| (hold, used));
        limits.settle(holds, cost, tokens);
    }
}

/// The model check of [`admit`], made before the guardrails run too.
/// Whether a key's model entry allows a name: the name itself, or a wildcard (`claude-*`)
/// that matches it.
fn allows(entry: &str, name: &str) -> bool {
    entry == name || (entry.contains('*') && crate::router::name_matches(entry, name))
}

pub(super) fn check_model(principal: &Principal, group: &str) -> Result<(), ApiFailure> {
    match principal.key() {
        Some(key) if !key.models.is_empty() && !key.models.iter().any(|m| allows(m, group)) => Err(ApiFailure::new(
            ErrorKind::PermissionDenied,
            format!(
                "the key {} may not use the model `{}` (it may use: {})",
                key.id,
                super::envelope::shown(group),
                key.models.join(", ")
            ),
        )
        .code("model_not_allowed")),
        _ => Ok(()),
    }
}

/// Checks a key may make this call now, in an order that counts nothing for a call that is
/// refused: its models, its calls in flight, its budget and its team's (reserving
/// `estimate`), then its rpm/tpm. The master key passes. `estimate` is asked for only when
/// the key has a budget or a tpm.
pub(super) async fn admit<F>(
    gateway: &Gateway,
    principal: &Principal,
    group: &str,
    estimate: F,
) -> Result<(Arc<Admission>, Option<MinuteUsage>), ApiFailure>
where
    F: AsyncFnOnce() -> Estimate,
{
    let Some(key) = principal.key() else {
        return Ok((Admission::free(gateway), None));
    };
    check_model(principal, group)?;
    let in_flight = gateway.limits.enter(key).map_err(refusal)?;
    let team = match &key.team_id {
        Some(id) => gateway.team(id).await?,
        None => None,
    };
    let budgeted = key.max_budget_pico.is_some() || team.as_ref().is_some_and(|t| t.max_budget_pico.is_some());
    let estimate = if budgeted || key.tpm.is_some() { Box::pin(estimate()).await } else { Estimate::default() };
    let pico = |usd: Option<crate::pricing::Usd>| usd.map_or(0, |u| i64::try_from(u.0).unwrap_or(i64::MAX));
    let (floor, full) = (pico(estimate.prompt_cost), pico(estimate.full_cost));
    let mut admission = Admission {
        key: Some(key.clone()),
        limits: Some(gateway.limits.clone()),
        holds: Mutex::default(),
        tokens: None,
        estimate,
        outcome: Mutex::default(),
        cut: Mutex::default(),
        written: Mutex::default(),
        settler: gateway.settler.clone(),
        _in_flight: in_flight,
    };
    // From here every hold is in `admission`: a refusal drops it, which gives them back.
    if let Some(reservation) = gateway.limits.reserve(key.as_ref(), floor, full).await?.map_err(refusal)? {
        admission.holds.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner).push(reservation);
    }
    if let Some(team) = &team
        && let Some(reservation) = gateway.limits.reserve(team.as_ref(), floor, full).await?.map_err(refusal)?
    {
        admission.holds.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner).push(reservation);
    }
    let prompt = estimate.prompt_tokens;
    let (usage, tokens) =
        gateway.limits.admit(key, prompt, prompt.saturating_add(estimate.output_tokens)).await?.map_err(refusal)?;
    admission.tokens = tokens;
    Ok((Arc::new(admission), Some(usage)))
}

pub(super) fn refusal(refusal: Refusal) -> ApiFailure {
    match refusal {
        Refusal::Budget { team, spent, max } => ApiFailure::new(
            ErrorKind::RateLimited,
            format!(
                "the {}'s budget is spent: ${:.6} of ${:.6} (with the calls in flight) for this period",
                if team { "team" } else { "key" },
                spent as f64 / 1e12,
                max as f64 / 1e12
            ),
        )
        .code("insufficient_quota"),
        Refusal::RateLimit { what, limit } => {
            let mut failure = ApiFailure::new(
                ErrorKind::RateLimited,
                format!("the key's limit of {limit} {what} per minute is reached"),
            )
            .code("rate_limit_exceeded");
            let secs = now_ms() / 1000 % 60;
            failure.retry_after = Some(u64::try_from(60 - secs).unwrap_or(60));
            failure
        }
        Refusal::Parallel { limit } => {
            ApiFailure::new(ErrorKind::RateLimited, format!("the key has {limit} calls in flight, its most at once"))
                .code("max_parallel_requests")
        }
    }
}

/// OpenAI-style `x-ratelimit-*` headers for a key with limits.
pub(super) fn limit_headers(headers: &mut HeaderMap, key: Option<&Arc<KeyRecord>>, usage: Option<MinuteUsage>) {
    let (Some(key), Some(usage)) = (key, usage) else { return };
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    if let Some(rpm) = key.rpm {
        set("x-ratelimit-limit-requests", rpm.to_string());
        set(
            "x-ratelimit-remaining-requests",
            (rpm - i64::try_from(usage.requests).unwrap_or(i64::MAX)).max(0).to_string(),
        );
    }
    if let Some(tpm) = key.tpm {
        set("x-ratelimit-limit-tokens", tpm.to_string());
        set("x-ratelimit-remaining-tokens", (tpm - i64::try_from(usage.tokens).unwrap_or(i64::MAX)).max(0).to_string());
    }
}

/// Output tokens a stream's reservation grows by when it runs past it.
const EXTEND_TOKENS: u64 = 1024;

/// A stream held to its key's (and team's) budget: when what it has streamed passes what
/// it reserved, the reservation grows by another [`EXTEND_TOKENS`] of output; when the
/// budget has no room for that, the stream ends with an `insufficient_quota` error. In
/// durable mode its end (`[DONE]`) waits for its spend row.
pub struct Metered {
    inner: GuardedStream,
    /// The call's admission.
    admission: Arc<Admission>,
    /// Output bytes streamed.
    bytes: u64,
    /// When the call has a budget: the answering deployment's unit prices, per prompt token
    /// and per output token.
    prices: Option<(i64, i64)>,
}

impl std::fmt::Debug for Metered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metered").field("budgeted", &self.prices.is_some()).finish_non_exhaustive()
    }
}

impl Metered {
    /// `inner`, metered against its admission's budgets when it has any.
    pub(super) fn new(gateway: &Gateway, inner: GuardedStream, admission: Arc<Admission>) -> Self {
        let prices = Some(&admission).filter(|a| a.has_budget()).and_then(|_| {
            let deployment = inner.report().deployment.as_deref()?;
            let price = |prompt: i64, completion: i64| {
                let usage = crate::spec::openai::CompletionUsage {
                    prompt_tokens: prompt,
                    completion_tokens: completion,
                    total_tokens: prompt + completion,
                    completion_tokens_details: None,
                    prompt_tokens_details: None,
                    extra: serde_json::Map::new(),
                };
                gateway.router.price_on(deployment, &usage).map(|r| i64::try_from(r.total.0).unwrap_or(i64::MAX))
            };
            let base = price(0, 0)?;
            Some((price(1, 0)? - base, price(0, 1)? - base))
        });
        Self { inner, admission, bytes: 0, prices }
    }

    /// The next chunk, or the error that ends the stream.
    pub async fn next_chunk(&mut self) -> Option<Result<ChatChunk, ApiFailure>> {
        let item = self.inner.next_chunk().await;
        let admission = &self.admission;
        match (&item, self.prices) {
            (Some(Ok(chunk)), Some((input, output))) => {
                self.bytes = self.bytes.saturating_add(crate::router::output_bytes(chunk));
                let tokens = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
                let spent = input
                    .saturating_mul(tokens(admission.estimate.prompt_tokens))
                    .saturating_add(output.saturating_mul(tokens(self.bytes.div_ceil(4))));
                if spent > admission.reserved() && !admission.extend(output.saturating_mul(tokens(EXTEND_TOKENS))).await
                {
                    *admission.cut.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some("budget_exceeded");
                    return Some(Err(ApiFailure::new(
                        ErrorKind::RateLimited,
                        "the stream was stopped: it reached the budget left for this period",
                    )
                    .code("insufficient_quota")));
                }
            }
            (None, _) => admission.wait_written().await,
            _ => {}
        }
        item
    }
}
