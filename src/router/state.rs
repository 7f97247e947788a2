//! The small state routing policy reads and writes: cooldowns, failure counts and per-minute
//! request and token counts per deployment. In one process it lives in memory; when several
//! instances share load it lives in Redis, so every instance sees one cooldown and one rpm
//! count. Both backends have the same semantics and are tested alike.
//!
//! Windows are fixed: a failure window starts at the first failure and lasts `window`; usage
//! counts belong to the wall-clock minute (the same minute on every instance).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

#[cfg(feature = "redis")]
use redis::AsyncCommands as _;
#[cfg(feature = "redis")]
use redis::aio::ConnectionManager;

#[cfg(feature = "redis")]
use crate::error::Error;
use crate::error::Result;

/// Requests and tokens counted in the current minute.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MinuteUsage {
    /// Requests started.
    pub requests: u64,
    /// Tokens (prompt and completion).
    pub tokens: u64,
}

/// Where router state lives.
#[derive(Clone)]
pub enum SharedState {
    /// This process only.
    Memory(std::sync::Arc<MemoryState>),
    /// Redis, shared by every instance that uses the same key prefix.
    #[cfg(feature = "redis")]
    Redis(RedisState),
}

impl std::fmt::Debug for SharedState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Memory(_) => f.write_str("SharedState::Memory"),
            #[cfg(feature = "redis")]
            Self::Redis(r) => write!(f, "SharedState::{r:?}"),
        }
    }
}

/// In-process state.
#[derive(Debug, Default)]
pub struct MemoryState {
    entries: Mutex<HashMap<String, (u64, Instant)>>,
}

/// State in Redis. Keys are `{prefix}:{what}:{deployment}[:{minute}]` and always expire.
#[derive(Clone)]
#[cfg(feature = "redis")]
pub struct RedisState {
    connection: ConnectionManager,
    prefix: String,
}

/// The current wall-clock minute, the same on every instance.
#[cfg(feature = "redis")]
impl std::fmt::Debug for RedisState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisState").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

/// The current wall-clock minute since the epoch (what usage counts are kept per).
pub fn minute_now() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs() / 60).unwrap_or(0)
}

/// The rpm and tpm counter keys of `deployment` for `minute`.
fn usage_keys(prefix: &str, deployment: &str, minute: u64) -> (String, String) {
    (format!("{prefix}rpm:{deployment}:{minute}"), format!("{prefix}tpm:{deployment}:{minute}"))
}

#[cfg(feature = "redis")]
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl MemoryState {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, (u64, Instant)>) -> T) -> T {
        // A poisoned lock only means another thread panicked mid-update of plain counters.
        let mut map = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        map.retain(|_, (_, expires)| *expires > now);
        f(&mut map)
    }

    /// Adds `by` to a counter that expires `ttl` after it was created; returns the new value.
    fn add(&self, key: String, by: u64, ttl: Duration) -> u64 {
        self.add_signed(key, i64::try_from(by).unwrap_or(i64::MAX), ttl)
    }

    /// Adds `by` (negative: takes away, down to zero) to a counter.
    fn add_signed(&self, key: String, by: i64, ttl: Duration) -> u64 {
        self.with(|map| {
            let entry = map.entry(key).or_insert((0, crate::bounds::deadline(Instant::now(), ttl)));
            entry.0 = if by >= 0 {
                entry.0.saturating_add(by.unsigned_abs())
            } else {
                entry.0.saturating_sub(by.unsigned_abs())
            };
            entry.0
        })
    }

    fn get(&self, key: &str) -> Option<(u64, Instant)> {
        self.with(|map| map.get(key).copied())
    }
}

impl SharedState {
    /// State for this process only.
    pub fn memory() -> Self {
        Self::Memory(std::sync::Arc::default())
    }

    /// State in Redis at `url` (`redis://127.0.0.1:6379/0`), under `prefix`. Connects now,
    /// so a wrong URL or a Redis that is down is reported at start-up.
    #[cfg(feature = "redis")]
    pub async fn redis(url: &str, prefix: &str) -> Result<Self> {
        let connection = crate::redis_conn::connect(url).await?;
        Ok(Self::Redis(RedisState { connection, prefix: prefix.to_string() }))
    }

    /// Skips `deployment` for `duration` from now (a later call restarts the cooldown).
    pub async fn start_cooldown(&self, deployment: &str, duration: Duration) -> Result<()> {
        match self {
            Self::Memory(m) => {
                m.with(|map| {
                    map.insert(format!("cooldown:{deployment}"), (1, crate::bounds::deadline(Instant::now(), duration)))
                });
                Ok(())
            }
            #[cfg(feature = "redis")]
            Self::Redis(r) => {
                let key = format!("{}:cooldown:{deployment}", r.prefix);
                let mut c = r.connection.clone();
                c.pset_ex::<_, _, ()>(key, 1, millis(duration)).await.map_err(Error::redis)
            }
        }
    }

    /// How long `deployment` is still cooling down; `None` when it is not.
    pub async fn cooldown_left(&self, deployment: &str) -> Result<Option<Duration>> {
        match self {
            Self::Memory(m) => Ok(m
                .get(&format!("cooldown:{deployment}"))
                .map(|(_, until)| until.saturating_duration_since(Instant::now()))),
            #[cfg(feature = "redis")]
            Self::Redis(r) => {
                let key = format!("{}:cooldown:{deployment}", r.prefix);
                let mut c = r.connection.clone();
                // PTTL: -2 no key, -1 no expiry (never set by us), else milliseconds left.
                let left: i64 = c.pttl(key).await.map_err(Error::redis)?;
                Ok(u64::try_from(left).ok().map(Duration::from_millis))
            }
        }
    }

    /// Counts a failure of `deployment`; returns the failures in the current window, which
    /// starts at the first failure and lasts `window`.
    pub async fn record_failure(&self, deployment: &str, window: Duration) -> Result<u64> {
        match self {
            Self::Memory(m) => Ok(m.add(format!("fails:{deployment}"), 1, window)),
            #[cfg(feature = "redis")]
            Self::Redis(r) => {
                let key = format!("{}:fails:{deployment}", r.prefix);
                let mut c = r.connection.clone();
                let (count,): (u64,) = redis::pipe()
                    .atomic()
                    .incr(&key, 1)
                    .cmd("PEXPIRE")
                    .arg(&key)
                    .arg(millis(window))
                    .arg("NX")
                    .ignore()
                    .query_async(&mut c)
                    .await
                    .map_err(Error::redis)?;
                Ok(count)
            }
        }
    }

    /// Adds requests and tokens to `deployment`'s counts for this minute; returns the totals.
    pub async fn add_usage(&self, deployment: &str, requests: u64, tokens: u64) -> Result<MinuteUsage> {
        let signed = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.add_usage_at(deployment, minute_now(), signed(requests), signed(tokens)).await
    }

    /// Adds (negative: gives back) requests and tokens to `deployment`'s counts for
    /// `minute` (from [`minute_now`]); returns the totals, never below zero. A refused call
    /// takes back what it counted; a call that used fewer tokens than it reserved gives the
    /// rest back to the minute it reserved them in.
    pub async fn add_usage_at(&self, deployment: &str, minute: u64, requests: i64, tokens: i64) -> Result<MinuteUsage> {
        let ttl = Duration::from_secs(120);
        match self {
            Self::Memory(m) => {
                let (rpm, tpm) = usage_keys("", deployment, minute);
                Ok(MinuteUsage { requests: m.add_signed(rpm, requests, ttl), tokens: m.add_signed(tpm, tokens, ttl) })
            }
            #[cfg(feature = "redis")]
            Self::Redis(r) => {
                let (rpm, tpm) = usage_keys(&format!("{}:", r.prefix), deployment, minute);
                let mut c = r.connection.clone();
                let (requests, tokens): (i64, i64) = redis::pipe()
                    .atomic()
                    .incr(&rpm, requests)
                    .incr(&tpm, tokens)
                    .expire(&rpm, 120)
                    .ignore()
                    .expire(&tpm, 120)
                    .ignore()
                    .query_async(&mut c)
                    .await
                    .map_err(Error::redis)?;
                let count = |n: i64| u64::try_from(n).unwrap_or(0);
                Ok(MinuteUsage { requests: count(requests), tokens: count(tokens) })
            }
        }
    }

    /// `deployment`'s counts for this minute (a read: nothing is written).
    pub async fn usage(&self, deployment: &str) -> Result<MinuteUsage> {
        let minute = minute_now();
        match self {
            Self::Memory(m) => {
                let (rpm, tpm) = usage_keys("", deployment, minute);
                let count = |key: &str| m.get(key).map_or(0, |(n, _)| n);
                Ok(MinuteUsage { requests: count(&rpm), tokens: count(&tpm) })
            }
            #[cfg(feature = "redis")]
            Self::Redis(r) => {
                let (rpm, tpm) = usage_keys(&format!("{}:", r.prefix), deployment, minute);
                let mut c = r.connection.clone();
                let (requests, tokens): (Option<i64>, Option<i64>) =
                    redis::cmd("MGET").arg(&rpm).arg(&tpm).query_async(&mut c).await.map_err(Error::redis)?;
                let count = |n: Option<i64>| n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
                Ok(MinuteUsage { requests: count(requests), tokens: count(tokens) })
            }
        }
    }

    /// Whether the store answers (for readiness checks).
    pub async fn ping(&self) -> Result<()> {
        match self {
            Self::Memory(_) => Ok(()),
            #[cfg(feature = "redis")]
            Self::Redis(r) => {
                let mut c = r.connection.clone();
                redis::cmd("PING").query_async::<String>(&mut c).await.map(drop).map_err(Error::redis)
            }
        }
    }
}
