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

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tracing::Instrument as _;

use super::call::Call;
use super::deployment::{InFlight, Live};
use super::ops::Routable;
use super::policy::{self, Candidate};
use super::route::advisory;
use super::sizing::Sizing;
use super::state::MinuteUsage;
use super::{Attempt, Inner};
use crate::error::{Error, ErrorKind, Result};

/// A deployment that took the call.
pub(super) struct Placed<T> {
    pub(super) live: Arc<Live>,
    pub(super) in_flight: InFlight,
    pub(super) outcome: T,
    /// Tokens counted against its tpm before the call.
    pub(super) precharged: u64,
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

impl Inner {
    /// Runs the call in its group, then in the fallbacks the errors lead to.
    pub(super) async fn run<O: Routable>(&self, call: &mut Call, op: &O) -> Result<Placed<O::Output>> {
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
