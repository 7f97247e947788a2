//! Deployments: what a model name (a group) can be served by, as configured, and as the
//! router tracks them while it runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::client::ProviderSettings;
use crate::pricing::{Registry, Usd};
use crate::provider::{Provider, ProviderKind};

/// One deployment of a model group: a provider's model with its credentials and limits.
///
/// ```
/// use switchyard::router::Deployment;
/// let east = Deployment::new("azure/gpt-4o-east").api_key("...").base_url("https://east.example.com").rpm(600);
/// let west = Deployment::new("openai/gpt-4o").weight(2).order(1);
/// # let _ = (east, west);
/// ```
#[derive(Clone, Debug)]
pub struct Deployment {
    /// A stable id, the same on every instance (it keys the shared cooldowns and counts).
    /// Default: `{group}/{index in the group}`.
    pub id: Option<String>,
    /// The model string, provider first (`anthropic/claude-sonnet-4-5-20250929`).
    pub model: String,
    /// Credentials, base URL, API version...; unset ones come from the environment.
    pub settings: ProviderSettings,
    /// Share under weighted shuffle (default 1).
    pub weight: u32,
    /// Requests per minute allowed, across instances sharing state.
    pub rpm: Option<u64>,
    /// Tokens per minute allowed, across instances sharing state.
    pub tpm: Option<u64>,
    /// Priority tier: lower orders are used first, higher ones only when no lower one can
    /// take the call (default 0).
    pub order: u32,
    /// The context window, when the price registry does not know it (or knows it wrong).
    pub context_window: Option<u64>,
    /// The model to price and count tokens as, when the model id says nothing (an Azure
    /// deployment named `prod-chat` that runs `gpt-4o`; LiteLLM's `model_info.base_model`).
    pub base_model: Option<String>,
    /// The provider, when the model string's prefix is not a provider this build knows (an
    /// OpenAI-compatible server declared in a gateway config); the prefix is then removed
    /// from `model` if present.
    pub provider: Option<crate::provider::ProviderKind>,
}

impl Deployment {
    /// A deployment of `model` with default settings.
    pub fn new(model: impl Into<String>) -> Self {
        Self {
            id: None,
            model: model.into(),
            settings: ProviderSettings::default(),
            weight: 1,
            rpm: None,
            tpm: None,
            order: 0,
            context_window: None,
            base_model: None,
            provider: None,
        }
    }

    /// Sets the id.
    #[must_use]
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Sets the provider settings.
    #[must_use]
    pub fn settings(mut self, settings: ProviderSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Sets the API key.
    #[must_use]
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.settings.api_key = Some(key.into().into());
        self
    }

    /// Sets the base URL.
    #[must_use]
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.settings.base_url = Some(url.into());
        self
    }

    /// Sets the weight.
    #[must_use]
    pub fn weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }

    /// Sets the requests-per-minute limit.
    #[must_use]
    pub fn rpm(mut self, rpm: u64) -> Self {
        self.rpm = Some(rpm);
        self
    }

    /// Sets the tokens-per-minute limit.
    #[must_use]
    pub fn tpm(mut self, tpm: u64) -> Self {
        self.tpm = Some(tpm);
        self
    }

    /// Sets the priority tier.
    #[must_use]
    pub fn order(mut self, order: u32) -> Self {
        self.order = order;
        self
    }

    /// Sets the model to price and count tokens as.
    #[must_use]
    pub fn base_model(mut self, model: impl Into<String>) -> Self {
        self.base_model = Some(model.into());
        self
    }

    /// Sets the context window.
    #[must_use]
    pub fn context_window(mut self, tokens: u64) -> Self {
        self.context_window = Some(tokens);
        self
    }
}

/// A deployment as the router runs it.
#[derive(Debug)]
pub(crate) struct Live {
    pub id: String,
    pub kind: ProviderKind,
    /// The model id the provider knows.
    pub model: String,
    /// The model id prices and token counts are looked up as.
    pub priced_as: String,
    /// The configured API base, if any.
    pub api_base: Option<String>,
    pub provider: Arc<Provider>,
    pub weight: u32,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub order: u32,
    pub context_window: Option<u64>,
    /// The credentials it is called with, scrubbed from the errors it answers with.
    pub secrets: Vec<secrecy::SecretString>,
    /// The most tokens the model may generate in one answer, where the registry knows it.
    pub max_output: Option<u64>,
    /// Unit prices for the lowest-cost strategy: input, output, per request.
    pub prices: Option<(Usd, Usd, Usd)>,
    /// Calls in flight from this process.
    pub in_flight: AtomicU64,
    /// Moving average of latency (time to first token for streams) in ns; 0 = not measured.
    latency_ns: AtomicU64,
}

impl Live {
    pub fn new(
        id: String,
        kind: ProviderKind,
        model: String,
        provider: Arc<Provider>,
        config: &Deployment,
        registry: &Registry,
    ) -> Self {
        let priced_as = config.base_model.clone().unwrap_or_else(|| model.clone());
        let info = registry.get(&kind.to_string(), &priced_as);
        Self {
            id,
            kind,
            provider,
            weight: config.weight,
            rpm: config.rpm,
            tpm: config.tpm,
            order: config.order,
            context_window: config.context_window.or_else(|| info.and_then(|i| i.context_window)),
            secrets: Vec::new(),
            max_output: info.and_then(|i| i.max_output),
            prices: info.map(|i| (i.input, i.output, i.per_request)),
            model,
            priced_as,
            api_base: None,
            in_flight: AtomicU64::new(0),
            latency_ns: AtomicU64::new(0),
        }
    }

    /// The moving average latency, if any call was measured.
    pub fn latency(&self) -> Option<Duration> {
        match self.latency_ns.load(Ordering::Relaxed) {
            0 => None,
            ns => Some(Duration::from_nanos(ns)),
        }
    }

    /// Folds one measurement into the moving average (weight 0.3 for the newest).
    pub fn observe_latency(&self, latency: Duration) {
        let sample = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX).max(1);
        let old = self.latency_ns.load(Ordering::Relaxed);
        let new = if old == 0 { sample } else { (old / 10 * 7).saturating_add(sample / 10 * 3).max(1) };
        self.latency_ns.store(new, Ordering::Relaxed);
    }

    /// The expected price of a call of `prompt` tokens reserving `output` tokens.
    pub fn expected_cost(&self, prompt: u64, output: u64) -> Option<Usd> {
        self.prices.map(|(input, out, request)| {
            Usd(input.0.saturating_mul(prompt).saturating_add(out.0.saturating_mul(output)).saturating_add(request.0))
        })
    }
}

/// Counts a call in flight on a deployment until dropped.
#[derive(Debug)]
pub(crate) struct InFlight(pub Arc<Live>);

impl InFlight {
    pub fn start(live: &Arc<Live>) -> Self {
        live.in_flight.fetch_add(1, Ordering::Relaxed);
        Self(live.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}
