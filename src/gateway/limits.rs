//! Per-key enforcement: budgets (reserved before the call, settled after it), rpm/tpm, and
//! calls in flight. Budgets and rpm/tpm hold across instances when the router's state is in
//! Redis (atomic INCRBY); in memory they hold for one instance.
//!
//! A budget period is aligned to the epoch (`floor(now / duration)`), the same on every
//! instance. Its counter starts from the spend log's sum for the period, so a restart or a
//! new instance loses nothing; then every call adds its estimate before it starts and the
//! difference to its actual cost when it ends.
//!
//! What a call reserves is the most it is expected to cost or use (the prompt and its
//! reserved output: `max_tokens`, else the model's most, see [`crate::router::Estimate`]),
//! but never more than is left: a call is refused only when even its prompt does not fit,
//! and otherwise takes what is left. So concurrent calls cannot together pass a budget or a
//! minute's tokens; only a call whose reservation was cut to what was left (there is one at
//! a time: it takes everything) can end above it, by at most what its answer produced past
//! that reservation. Streams are stopped when they pass what they reserved and the budget
//! has no more room (`gateway::admission`).
//!
//! Counts refused calls never make: a call is counted against rpm/tpm only once it is
//! admitted (a refusal takes back what it counted), and every reservation is settled by a
//! drop guard (`gateway::admission::Admission`), whatever ends the call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use redis::aio::ConnectionManager;

use super::store::{KeyRecord, Store, TeamRecord, now_ms};
use crate::error::Result;
use crate::router::SharedState;
use crate::router::state::MinuteUsage;

/// Budget counters: in memory, or in Redis beside the router's state.
#[derive(Clone)]
pub(crate) enum Counters {
    Memory(Arc<Mutex<HashMap<String, i64>>>),
    Redis(ConnectionManager),
}

impl std::fmt::Debug for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Memory(_) => "Counters::Memory",
            Self::Redis(_) => "Counters::Redis",
        })
    }
}

/// Whose budget: a key's or a team's.
#[derive(Clone, Debug)]
pub struct BudgetOwner {
    team: bool,
    id: String,
    max: Option<i64>,
    duration_s: Option<i64>,
}

impl From<&KeyRecord> for BudgetOwner {
    fn from(key: &KeyRecord) -> Self {
        Self { team: false, id: key.id.clone(), max: key.max_budget_pico, duration_s: key.budget_duration_s }
    }
}

impl From<&TeamRecord> for BudgetOwner {
    fn from(team: &TeamRecord) -> Self {
        Self { team: true, id: team.id.clone(), max: team.max_budget_pico, duration_s: team.budget_duration_s }
    }
}

/// A budget reservation, settled when the call ends.
#[derive(Clone, Debug)]
pub struct Reservation {
    owner: BudgetOwner,
    counter: String,
    /// Pico-dollars reserved (a stream that needs more adds to it).
    pub estimate: i64,
}

/// Tokens a call reserved against its key's tpm, in the minute it reserved them.
#[derive(Clone, Debug)]
pub struct TokenHold {
    id: String,
    minute: u64,
    /// Tokens reserved.
    pub reserved: u64,
}

/// Why a key may not make a call now.
#[derive(Debug)]
pub enum Refusal {
    /// Its budget (or its team's) for the period has no room for the call's prompt.
    Budget { team: bool, spent: i64, max: i64 },
    /// Its rpm or tpm for this minute is spent.
    RateLimit { what: &'static str, limit: i64 },
    /// Too many of its calls are in flight.
    Parallel { limit: i64 },
}

/// The enforcement state.
#[derive(Debug)]
pub struct Limits {
    state: SharedState,
    counters: Counters,
    store: Store,
    in_flight: Mutex<HashMap<String, i64>>,
    /// Where settlements that need Redis run: the gateway's main event loop, which outlives
    /// every worker's (a worker's loop ends with its connections at shutdown).
    runtime: tokio::runtime::Handle,
    /// Settlements under way in tasks; [`Limits::drain`] waits for them.
    pending: std::sync::atomic::AtomicUsize,
    settled: tokio::sync::Notify,
}

/// The counter of an owner's current budget period, and when the period started.
fn period_counter(owner: &BudgetOwner, now: i64) -> (String, i64) {
    let kind = if owner.team { "team" } else { "key" };
    match owner.duration_s.filter(|d| *d > 0) {
        Some(secs) => {
            let length = secs.saturating_mul(1000);
            let index = now / length;
            (format!("budget:{kind}:{}:{index}", owner.id), index * length)
        }
        None => (format!("budget:{kind}:{}:all", owner.id), 0),
    }
}

const COUNTER_TTL_S: i64 = 40 * 86_400;

impl Limits {
    pub(crate) async fn new(state: SharedState, store: Store, redis_url: Option<&str>) -> Result<Self> {
        let counters = match redis_url {
            Some(url) => Counters::Redis(crate::redis_conn::connect(url).await?),
            None => Counters::Memory(Arc::default()),
        };
        Ok(Self {
            state,
            counters,
            store,
            in_flight: Mutex::new(HashMap::new()),
            runtime: tokio::runtime::Handle::current(),
            pending: std::sync::atomic::AtomicUsize::new(0),
            settled: tokio::sync::Notify::new(),
        })
    }

    /// The owner's spend since `since` from the spend log.
    async fn logged(&self, owner: &BudgetOwner, since: i64) -> Result<i64> {
        if owner.team {
            self.store.team_spend_since(&owner.id, since).await
        } else {
            self.store.key_spend_since(&owner.id, since).await
        }
    }

    /// Adds `by` to a counter, loading it from the spend log first if it is new; returns the
    /// new value.
    async fn add(&self, counter: &str, owner: &BudgetOwner, since: i64, by: i64) -> Result<i64> {
        match &self.counters {
            Counters::Memory(map) => {
                let known = map.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(counter).copied();
                let base = match known {
                    Some(_) => 0,
                    None => self.logged(owner, since).await?,
                };
                let mut map = map.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let value = map.entry(counter.to_string()).or_insert(base);
                *value = value.saturating_add(by);
                Ok(*value)
            }
            Counters::Redis(connection) => {
                let mut connection = connection.clone();
                let name = format!("switchyard:{counter}");
                let exists: bool =
                    redis::cmd("EXISTS").arg(&name).query_async(&mut connection).await.map_err(crate::Error::redis)?;
                if !exists {
                    let base = self.logged(owner, since).await?;
                    let _: Option<String> = redis::cmd("SET")
                        .arg(&name)
                        .arg(base)
                        .arg("NX")
                        .arg("EX")
                        .arg(COUNTER_TTL_S)
                        .query_async(&mut connection)
                        .await
                        .map_err(crate::Error::redis)?;
                }
                redis::cmd("INCRBY").arg(&name).arg(by).query_async(&mut connection).await.map_err(crate::Error::redis)
            }
        }
    }

    /// Reserves against a key's or team's budget: `full` (the most the call is expected to
    /// cost), or what is left of the budget when that is less, as long as `floor` (what the
    /// call costs at least: its prompt) fits; refuses when it does not.
    pub async fn reserve(
        &self,
        owner: impl Into<BudgetOwner>,
        floor: i64,
        full: i64,
    ) -> Result<std::result::Result<Option<Reservation>, Refusal>> {
        let owner = owner.into();
        let Some(max) = owner.max else { return Ok(Ok(None)) };
        let full = full.max(floor).max(0);
        let (counter, since) = period_counter(&owner, now_ms());
        let after = self.add(&counter, &owner, since, full).await?;
        let before = after.saturating_sub(full);
        if before >= max || before.saturating_add(floor) > max {
            self.add(&counter, &owner, since, -full).await?;
            return Ok(Err(Refusal::Budget { team: owner.team, spent: before, max }));
        }
        let mut estimate = full;
        if after > max {
            // Only what is left: this call takes the rest of the budget.
            let excess = after - max;
            self.add(&counter, &owner, since, -excess).await?;
            estimate -= excess;
        }
        Ok(Ok(Some(Reservation { owner, counter, estimate })))
    }

    /// Adds `by` to a reservation (a stream that has passed what it reserved); `false`, and
    /// nothing added, when the budget has no room for it.
    pub async fn extend(&self, reservation: &mut Reservation, by: i64) -> Result<bool> {
        let Some(max) = reservation.owner.max else { return Ok(true) };
        let (_, since) = period_counter(&reservation.owner, now_ms());
        let after = self.add(&reservation.counter, &reservation.owner, since, by).await?;
        if after > max {
            self.add(&reservation.counter, &reservation.owner, since, -by).await?;
            return Ok(false);
        }
        reservation.estimate = reservation.estimate.saturating_add(by);
        Ok(true)
    }

    /// Replaces reservations with the call's actual cost, and its token hold with the
    /// tokens it used: at once for counters in memory, in a task on the main loop for
    /// Redis (awaited by [`Limits::drain`]). Called from a drop guard; never fails the call.
    pub fn settle(self: &Arc<Self>, reservations: Vec<Reservation>, actual: i64, tokens: Option<(TokenHold, u64)>) {
        use futures_util::FutureExt as _;
        let memory_counters = match &self.counters {
            Counters::Memory(map) => {
                let mut map = map.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                for reservation in &reservations {
                    if let Some(value) = map.get_mut(&reservation.counter) {
                        *value = value.saturating_add(actual.saturating_sub(reservation.estimate));
                    }
                }
                true
            }
            Counters::Redis(_) => false,
        };
        let memory_state = matches!(self.state, SharedState::Memory(_));
        if memory_state && let Some((hold, used)) = &tokens {
            // Memory state answers without waiting: its future is ready at once.
            if let Some(Err(err)) = self.settle_tokens(hold, *used).now_or_never() {
                tracing::warn!(error = %err, "cannot settle a key's tokens");
            }
        }
        let reservations = if memory_counters { Vec::new() } else { reservations };
        let tokens = if memory_state { None } else { tokens };
        if reservations.is_empty() && tokens.is_none() {
            return;
        }
        self.pending.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        let limits = self.clone();
        self.runtime.spawn(async move {
            for reservation in &reservations {
                let (_, since) = period_counter(&reservation.owner, now_ms());
                let delta = actual.saturating_sub(reservation.estimate);
                if let Err(err) = limits.add(&reservation.counter, &reservation.owner, since, delta).await {
                    tracing::warn!(owner = %reservation.owner.id, error = %err, "cannot settle a budget reservation");
                }
            }
            if let Some((hold, used)) = &tokens
                && let Err(err) = limits.settle_tokens(hold, *used).await
            {
                tracing::warn!(key = %hold.id, error = %err, "cannot settle a key's tokens");
            }
            if limits.pending.fetch_sub(1, std::sync::atomic::Ordering::AcqRel) == 1 {
                limits.settled.notify_waiters();
            }
        });
    }

    /// Waits until every settlement under way is done (at shutdown).
    pub async fn drain(&self) {
        loop {
            let settled = self.settled.notified();
            if self.pending.load(std::sync::atomic::Ordering::Acquire) == 0 {
                return;
            }
            settled.await;
        }
    }

    /// Tokens used against tokens held: the rest goes back to the minute they were held
    /// in (while it lasts), or what was used beyond them counts in this minute.
    async fn settle_tokens(&self, hold: &TokenHold, used: u64) -> Result<()> {
        let signed = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        if used < hold.reserved {
            if hold.minute == crate::router::state::minute_now() {
                self.state.add_usage_at(&hold.id, hold.minute, 0, -signed(hold.reserved - used)).await?;
            }
        } else if used > hold.reserved {
            self.state.add_usage(&hold.id, 0, used - hold.reserved).await?;
        }
        Ok(())
    }

    /// A key's or team's spend in its current period (pico-dollars), as the counters see it.
    pub async fn period_spend(&self, owner: impl Into<BudgetOwner>) -> Result<i64> {
        let owner = owner.into();
        let (counter, since) = period_counter(&owner, now_ms());
        self.add(&counter, &owner, since, 0).await
    }

    /// Counts a request against the key's rpm and holds tokens against its tpm: `full`
    /// (the prompt and its reserved output), or what is left of the minute when that is
    /// less, as long as `prompt` fits; refuses (taking back what it counted) when the
    /// minute's requests are spent or the prompt does not fit. Returns the minute's usage
    /// and the tokens held.
    pub async fn admit(
        &self,
        key: &KeyRecord,
        prompt: u64,
        full: u64,
    ) -> Result<std::result::Result<(MinuteUsage, Option<TokenHold>), Refusal>> {
        if key.rpm.is_none() && key.tpm.is_none() {
            return Ok(Ok((MinuteUsage::default(), None)));
        }
        let id = format!("key:{}", key.id);
        let minute = crate::router::state::minute_now();
        let tpm = key.tpm.map(|l| u64::try_from(l).unwrap_or(0));
        let held = if tpm.is_some() { full.max(prompt) } else { 0 };
        let signed = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let mut usage = self.state.add_usage_at(&id, minute, 1, signed(held)).await?;
        let refused = if key.rpm.is_some_and(|l| usage.requests > u64::try_from(l).unwrap_or(0)) {
            Some(Refusal::RateLimit { what: "requests", limit: key.rpm.unwrap_or(0) })
        } else if let Some(limit) = tpm
            && let before = usage.tokens.saturating_sub(held)
            && (before >= limit || before.saturating_add(prompt) > limit)
        {
            Some(Refusal::RateLimit { what: "tokens", limit: key.tpm.unwrap_or(0) })
        } else {
            None
        };
        if let Some(refusal) = refused {
            self.state.add_usage_at(&id, minute, -1, -signed(held)).await?;
            return Ok(Err(refusal));
        }
        let mut reserved = held;
        if let Some(limit) = tpm
            && usage.tokens > limit
        {
            // Only what is left of the minute: this call takes the rest.
            let excess = usage.tokens - limit;
            usage = self.state.add_usage_at(&id, minute, 0, -signed(excess)).await?;
            reserved -= excess;
        }
        let hold = tpm.map(|_| TokenHold { id, minute, reserved });
        Ok(Ok((usage, hold)))
    }

    /// Starts a call in flight for the key, or refuses past `max_parallel` (per instance).
    pub fn enter(self: &Arc<Self>, key: &KeyRecord) -> std::result::Result<Option<InFlightKey>, Refusal> {
        let Some(limit) = key.max_parallel else { return Ok(None) };
        let mut map = self.in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = map.entry(key.id.clone()).or_insert(0);
        if *count >= limit {
            return Err(Refusal::Parallel { limit });
        }
        *count += 1;
        Ok(Some(InFlightKey { limits: self.clone(), key_id: key.id.clone() }))
    }
}

/// A key's call in flight, until dropped.
#[derive(Debug)]
pub struct InFlightKey {
    limits: Arc<Limits>,
    key_id: String,
}

impl Drop for InFlightKey {
    fn drop(&mut self) {
        let mut map = self.limits.in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = map.get_mut(&self.key_id) {
            *count -= 1;
            if *count <= 0 {
                map.remove(&self.key_id);
            }
        }
    }
}
