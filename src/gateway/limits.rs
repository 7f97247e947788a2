//! Per-key enforcement: budgets (reserved before the call, settled after it), rpm/tpm, and
//! calls in flight. Budgets and rpm/tpm hold across instances when the router's state is in
//! Redis (atomic INCRBY); in memory they hold for one instance.
//!
//! A budget period is aligned to the epoch (`floor(now / duration)`), the same on every
//! instance. Its counter starts from the spend log's sum for the period, so a restart or a
//! new instance loses nothing; then every call adds its estimate before it starts and the
//! difference to its actual cost when it ends. Concurrent calls can therefore overspend by
//! at most the estimates in flight.

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
    /// Pico-dollars reserved.
    pub estimate: i64,
}

/// Why a key may not make a call now.
#[derive(Debug)]
pub enum Refusal {
    /// Its budget (or its team's) for the period is spent.
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
            Some(url) => Counters::Redis(crate::router::state::connect(url).await?),
            None => Counters::Memory(Arc::default()),
        };
        Ok(Self { state, counters, store, in_flight: Mutex::new(HashMap::new()) })
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
                let exists: bool = redis::cmd("EXISTS")
                    .arg(&name)
                    .query_async(&mut connection)
                    .await
                    .map_err(crate::router::state::redis_error)?;
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
                        .map_err(crate::router::state::redis_error)?;
                }
                redis::cmd("INCRBY")
                    .arg(&name)
                    .arg(by)
                    .query_async(&mut connection)
                    .await
                    .map_err(crate::router::state::redis_error)
            }
        }
    }

    /// Reserves `estimate` against a key's or team's budget, or refuses when the period's
    /// spend (with calls in flight) would pass it.
    pub async fn reserve(
        &self,
        owner: impl Into<BudgetOwner>,
        estimate: i64,
    ) -> Result<std::result::Result<Option<Reservation>, Refusal>> {
        let owner = owner.into();
        let Some(max) = owner.max else { return Ok(Ok(None)) };
        let (counter, since) = period_counter(&owner, now_ms());
        let after = self.add(&counter, &owner, since, estimate).await?;
        if after > max {
            self.add(&counter, &owner, since, -estimate).await?;
            return Ok(Err(Refusal::Budget { team: owner.team, spent: after - estimate, max }));
        }
        Ok(Ok(Some(Reservation { owner, counter, estimate })))
    }

    /// Replaces a reservation with the call's actual cost.
    pub async fn settle(&self, reservation: &Reservation, actual: i64) -> Result<()> {
        let (_, since) = period_counter(&reservation.owner, now_ms());
        self.add(&reservation.counter, &reservation.owner, since, actual - reservation.estimate).await.map(|_| ())
    }

    /// A key's or team's spend in its current period (pico-dollars), as the counters see it.
    pub async fn period_spend(&self, owner: impl Into<BudgetOwner>) -> Result<i64> {
        let owner = owner.into();
        let (counter, since) = period_counter(&owner, now_ms());
        self.add(&counter, &owner, since, 0).await
    }

    /// Counts a request (and its estimated tokens) against the key's rpm/tpm; refuses when
    /// this minute's allowance is spent. Returns what is left.
    pub async fn admit(&self, key: &KeyRecord, tokens: u64) -> Result<std::result::Result<MinuteUsage, Refusal>> {
        if key.rpm.is_none() && key.tpm.is_none() {
            return Ok(Ok(MinuteUsage::default()));
        }
        let id = format!("key:{}", key.id);
        let usage = self.state.add_usage(&id, 1, tokens).await?;
        let over = |used: u64, limit: Option<i64>| limit.is_some_and(|l| used > u64::try_from(l).unwrap_or(0));
        if over(usage.requests, key.rpm) {
            return Ok(Err(Refusal::RateLimit { what: "requests", limit: key.rpm.unwrap_or(0) }));
        }
        if over(usage.tokens, key.tpm) {
            return Ok(Err(Refusal::RateLimit { what: "tokens", limit: key.tpm.unwrap_or(0) }));
        }
        Ok(Ok(usage))
    }

    /// Counts the tokens a call used beyond its estimate against the key's tpm.
    pub async fn add_tokens(&self, key: &KeyRecord, tokens: u64) -> Result<()> {
        if key.tpm.is_none() || tokens == 0 {
            return Ok(());
        }
        self.state.add_usage(&format!("key:{}", key.id), 0, tokens).await.map(|_| ())
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
