//! The router: model names (groups) served by several deployments, with a strategy to pick
//! one, retries that re-pick, fallbacks to other groups, cooldowns, rpm/tpm limits, a response
//! cache, cost receipts and hooks. Policy ([`policy`]) is pure code over the small shared
//! [`state`], which lives in memory or in Redis (one view for a cluster).
//!
//! ```
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! use switchyard::router::{Deployment, Router};
//! use switchyard::{ChatMessage, ChatRequest};
//!
//! let router = Router::builder()
//!     .deployment("fast", Deployment::new("mock/echo"))
//!     .deployment("fast", Deployment::new("mock/echo").weight(3))
//!     .build()?;
//! let answer = router.chat(&ChatRequest::new("fast", vec![ChatMessage::user("Hi")])).await?;
//! assert_eq!(answer.response.text(), Some("Hi"));
//! assert_eq!(answer.report.attempts.len(), 1);
//! # Ok::<(), switchyard::Error>(()) })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::cache::{CacheControl, ResponseCache};
use crate::engine::Engine;
use crate::error::{Error, ErrorKind, Result};
use crate::hooks::Hooks;
use crate::model_ref::ModelRef;
use crate::pricing::{Receipt, Registry};
use crate::provider::native::Native;
use crate::provider::{Provider, ProviderKind};
use crate::transport::{RetryPolicy, Timeouts};

mod call;
mod deployment;
mod group;
mod names;
mod ops;
pub mod policy;
mod route;
mod sizing;
pub mod state;
mod stream;

pub use crate::hooks::CallContext;
#[cfg(feature = "gateway")]
pub(crate) use call::call_id;
pub use deployment::Deployment;
pub use names::matches as name_matches;
pub use policy::Strategy;
pub use sizing::{DEFAULT_RESERVED_OUTPUT, Estimate};
pub use state::SharedState;
pub use stream::RoutedStream;
#[cfg(feature = "gateway")]
pub(crate) use stream::output_bytes;

use deployment::Live;

/// An answer and how it was obtained.
#[derive(Clone, Debug)]
pub struct Routed<T> {
    /// The answer.
    pub response: T,
    /// Deployment, attempts, fallbacks, cost.
    pub report: CallReport,
}

/// How a call was served.
#[derive(Clone, Debug, Default)]
pub struct CallReport {
    /// The call's id (in hook events and tracing spans too).
    pub call_id: String,
    /// The model name asked for.
    pub group: String,
    /// The deployment that answered; none for a cache hit.
    pub deployment: Option<String>,
    /// Its provider.
    pub provider: Option<ProviderKind>,
    /// The model id the provider was asked for.
    pub model: Option<String>,
    /// The API base of the deployment, where it has one of its own.
    pub api_base: Option<String>,
    /// Every attempt, the answering one last.
    pub attempts: Vec<Attempt>,
    /// The groups fallen back to, in order.
    pub fallbacks: Vec<String>,
    /// The cost; `None` when the model is not priced (or a stream has not ended yet).
    pub receipt: Option<Receipt>,
    /// Served from the response cache.
    pub cache_hit: bool,
    /// From the call to the answer (to the stream's head for streams).
    pub latency: Duration,
    /// From the call to the first streamed chunk.
    pub time_to_first_token: Option<Duration>,
}

/// One attempt on one deployment.
#[derive(Clone, Debug)]
pub struct Attempt {
    /// The group it was made in.
    pub group: String,
    /// The deployment.
    pub deployment: String,
    /// Its provider.
    pub provider: ProviderKind,
    /// How long it took.
    pub duration: Duration,
    /// Why it failed, if it did.
    pub error: Option<(ErrorKind, String)>,
}

/// Per-call options.
#[derive(Clone, Debug, Default)]
pub struct CallOptions {
    /// Response cache control.
    pub cache: CacheControl,
    /// The caller's own context, handed to the hooks in [`crate::hooks::CallEvent::context`]
    /// (the gateway passes the key and its budget reservation this way).
    pub context: Option<CallContext>,
    /// The caller's own request in a provider's format (the gateway's `/v1/messages`
    /// body): sent as it came to deployments of that format, translated for the rest.
    pub native: Option<Arc<Native>>,
    /// The caller reads only the usage (and id, model, stop reason) of an answer that came
    /// back in `native`'s format, sending the upstream's bytes on itself: the router then
    /// decodes no more of it, unless its response cache stores the answer.
    pub usage_only: bool,
}

/// Routes calls over groups of deployments. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct Router {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    groups: HashMap<String, Vec<Arc<Live>>>,
    patterns: names::Patterns,
    strategy: Strategy,
    allowed_fails: u64,
    cooldown: Duration,
    failure_window: Duration,
    fallbacks: HashMap<String, Vec<String>>,
    context_window_fallbacks: HashMap<String, Vec<String>>,
    content_policy_fallbacks: HashMap<String, Vec<String>>,
    state: SharedState,
    cache: Option<ResponseCache>,
    prices: Arc<Registry>,
    hooks: Hooks,
    engine: Engine,
    rng: Mutex<fastrand::Rng>,
}

impl Inner {
    /// The group serving `name` (see [`Router::resolve`]).
    pub(crate) fn resolve<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        if self.groups.contains_key(name) { Some(name) } else { self.patterns.find(name) }
    }

    /// The group serving `name`, or the name itself (the routing loop then says no group
    /// serves it).
    pub(crate) fn group_for<'a>(&'a self, name: &'a str) -> &'a str {
        self.resolve(name).unwrap_or(name)
    }
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut groups: Vec<_> = self.inner.groups.iter().map(|(g, d)| (g, d.len())).collect();
        groups.sort();
        f.debug_struct("Router")
            .field("groups", &groups)
            .field("strategy", &self.inner.strategy)
            .field("state", &self.inner.state)
            .field("cache", &self.inner.cache)
            .field("hooks", &self.inner.hooks)
            .finish_non_exhaustive()
    }
}

impl Router {
    /// A builder.
    pub fn builder() -> RouterBuilder {
        RouterBuilder::default()
    }

    /// The group names, sorted.
    pub fn groups(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.inner.groups.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// The group that serves a model name: the group of that name, else the most specific
    /// wildcard group matching it (`claude-*`); `None` when none does.
    pub fn resolve<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        self.inner.resolve(name)
    }

    /// The deployment ids of a group.
    pub fn deployments(&self, group: &str) -> Vec<&str> {
        self.inner.groups.get(group).map(|d| d.iter().map(|l| l.id.as_str()).collect()).unwrap_or_default()
    }

    /// The shared state the router reads and writes.
    pub fn state(&self) -> &SharedState {
        &self.inner.state
    }
}

/// Builds a [`Router`].
#[derive(Debug)]
pub struct RouterBuilder {
    deployments: Vec<(String, Deployment)>,
    strategy: Strategy,
    retry: RetryPolicy,
    allowed_fails: u64,
    cooldown: Duration,
    failure_window: Duration,
    fallbacks: HashMap<String, Vec<String>>,
    context_window_fallbacks: HashMap<String, Vec<String>>,
    content_policy_fallbacks: HashMap<String, Vec<String>>,
    state: Option<SharedState>,
    cache: Option<ResponseCache>,
    prices: Option<Registry>,
    hooks: Hooks,
    timeouts: Timeouts,
    read_env: bool,
    drop_params: bool,
}

impl Default for RouterBuilder {
    fn default() -> Self {
        Self {
            deployments: Vec::new(),
            strategy: Strategy::default(),
            retry: RetryPolicy::default(),
            allowed_fails: 3,
            cooldown: Duration::from_secs(5),
            failure_window: Duration::from_secs(60),
            fallbacks: HashMap::new(),
            context_window_fallbacks: HashMap::new(),
            content_policy_fallbacks: HashMap::new(),
            state: None,
            cache: None,
            prices: None,
            hooks: Hooks::default(),
            timeouts: Timeouts::default(),
            read_env: true,
            drop_params: false,
        }
    }
}

impl RouterBuilder {
    /// Adds a deployment to the group `group` (the model name callers use).
    #[must_use]
    pub fn deployment(mut self, group: impl Into<String>, deployment: Deployment) -> Self {
        self.deployments.push((group.into(), deployment));
        self
    }

    /// How a group picks a deployment (default: weighted shuffle).
    #[must_use]
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Retries per group, each re-picking a deployment (default 2), and their backoff. A
    /// `Retry-After` up to `max_retry_after` is waited out; a longer one ends the retries.
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Failures a deployment may have inside the failure window before it cools down
    /// (default 3: the fourth cools it down).
    #[must_use]
    pub fn allowed_fails(mut self, n: u64) -> Self {
        self.allowed_fails = n;
        self
    }

    /// How long a failing deployment is skipped (default 5 s).
    #[must_use]
    pub fn cooldown(mut self, duration: Duration) -> Self {
        self.cooldown = duration;
        self
    }

    /// The window failures are counted in (default 60 s).
    #[must_use]
    pub fn failure_window(mut self, window: Duration) -> Self {
        self.failure_window = window;
        self
    }

    /// Groups to try, in order, when `group` fails.
    #[must_use]
    pub fn fallbacks(mut self, group: impl Into<String>, to: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.fallbacks.insert(group.into(), to.into_iter().map(Into::into).collect());
        self
    }

    /// Groups to try when the prompt does not fit `group`'s context windows.
    #[must_use]
    pub fn context_window_fallbacks(
        mut self,
        group: impl Into<String>,
        to: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.context_window_fallbacks.insert(group.into(), to.into_iter().map(Into::into).collect());
        self
    }

    /// Groups to try when `group`'s provider refuses the content.
    #[must_use]
    pub fn content_policy_fallbacks(
        mut self,
        group: impl Into<String>,
        to: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.content_policy_fallbacks.insert(group.into(), to.into_iter().map(Into::into).collect());
        self
    }

    /// Where cooldowns and rpm/tpm counts live (default: this process's memory).
    #[must_use]
    pub fn state(mut self, state: SharedState) -> Self {
        self.state = Some(state);
        self
    }

    /// A response cache (default: none).
    #[must_use]
    pub fn cache(mut self, cache: ResponseCache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// The price registry (default: the built-in one).
    #[must_use]
    pub fn prices(mut self, registry: Registry) -> Self {
        self.prices = Some(registry);
        self
    }

    /// Hooks called when each call ends.
    #[must_use]
    pub fn hooks(mut self, hooks: Hooks) -> Self {
        self.hooks = hooks;
        self
    }

    /// Per-attempt timeouts.
    #[must_use]
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// Whether unset settings come from the environment (default: yes).
    #[must_use]
    pub fn read_env(mut self, read: bool) -> Self {
        self.read_env = read;
        self
    }

    /// Drop parameters a provider cannot express instead of failing (default: fail).
    #[must_use]
    pub fn drop_params(mut self, drop: bool) -> Self {
        self.drop_params = drop;
        self
    }

    /// Builds the router: configures every deployment and checks every fallback names a group.
    pub fn build(self) -> Result<Router> {
        let env = if self.read_env { crate::client::env_snapshot() } else { HashMap::new() };
        let prices = Arc::new(match self.prices {
            Some(registry) => registry,
            None => Registry::builtin()?,
        });
        let mut groups: HashMap<String, Vec<Arc<Live>>> = HashMap::new();
        let mut ids = std::collections::HashSet::new();
        for (group, config) in &self.deployments {
            let members = groups.entry(group.clone()).or_default();
            let id = config.id.clone().unwrap_or_else(|| format!("{group}/{}", members.len()));
            let bad = |what: String| Error::Config(format!("deployment `{id}` of `{group}`: {what}"));
            if !ids.insert(id.clone()) {
                return Err(bad("the id is used twice".into()));
            }
            let (kind, model) = match config.provider {
                Some(kind) => {
                    let prefix = format!("{kind}/");
                    (kind, config.model.strip_prefix(&prefix).unwrap_or(&config.model).to_string())
                }
                None => {
                    let model_ref = ModelRef::parse(&config.model).map_err(|e| bad(e.to_string()))?;
                    (model_ref.provider, model_ref.model.to_string())
                }
            };
            let settings = config.settings.with_env(kind, &env);
            let provider = Provider::configure(kind, &settings).map_err(|e| bad(e.to_string()))?;
            let mut live = Live::new(id, kind, model, Arc::new(provider), config, &prices);
            live.api_base = settings.base_url.clone();
            live.secrets = settings.secrets();
            members.push(Arc::new(live));
        }
        for (kind, table) in [
            ("fallbacks", &self.fallbacks),
            ("context_window_fallbacks", &self.context_window_fallbacks),
            ("content_policy_fallbacks", &self.content_policy_fallbacks),
        ] {
            for (from, to) in table {
                if let Some(unknown) = std::iter::once(from).chain(to).find(|g| !groups.contains_key(*g)) {
                    return Err(Error::Config(format!(
                        "{kind} for `{from}` name `{unknown}`, which has no deployment"
                    )));
                }
            }
        }
        let engine = Engine::new(self.retry, self.timeouts, self.drop_params)?;
        Ok(Router {
            inner: Arc::new(Inner {
                patterns: names::Patterns::new(groups.keys()),
                groups,
                strategy: self.strategy,
                allowed_fails: self.allowed_fails,
                cooldown: self.cooldown,
                failure_window: self.failure_window,
                fallbacks: self.fallbacks,
                context_window_fallbacks: self.context_window_fallbacks,
                content_policy_fallbacks: self.content_policy_fallbacks,
                state: self.state.unwrap_or_else(SharedState::memory),
                cache: self.cache,
                prices,
                hooks: self.hooks,
                engine,
                rng: Mutex::new(fastrand::Rng::new()),
            }),
        })
    }
}
