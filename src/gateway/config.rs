//! The gateway's configuration: LiteLLM's `config.yaml` shape, so its users can move over.
//!
//! ```yaml
//! model_list:
//!   - model_name: gpt-4o                    # the name clients ask for (a router group)
//!     litellm_params:
//!       model: azure/prod-4o                # provider/model, as in the SDK
//!       api_base: https://example.openai.azure.com
//!       api_key: os.environ/AZURE_API_KEY   # read from the environment at start-up
//!       api_version: "2024-10-21"
//!       rpm: 600
//!       tpm: 200000
//!       weight: 2
//!       order: 1
//!     model_info: { id: azure-east, base_model: gpt-4o, max_input_tokens: 128000 }
//! router_settings:
//!   routing_strategy: least-busy            # simple-shuffle, least-busy, latency-based-routing, usage-based-routing, cost-based-routing
//!   num_retries: 2
//!   timeout: 600                            # seconds a whole answer may take, per attempt
//!   stream_timeout: 300                     # seconds a stream may go without a line
//!   fallbacks: [{gpt-4o: [claude]}]
//!   context_window_fallbacks: [{gpt-4o: [gemini]}]
//!   content_policy_fallbacks: [{gpt-4o: [claude]}]
//!   allowed_fails: 3
//!   cooldown_time: 5
//!   redis_url: redis://127.0.0.1:6379/0      # or redis_host / redis_port / redis_password
//! litellm_settings:
//!   drop_params: true
//!   request_timeout: 600
//!   cache: true
//!   cache_params: { type: redis, ttl: 600 } # or type: local
//! general_settings:
//!   master_key: os.environ/SWITCHYARD_MASTER_KEY
//!   database_url: sqlite://switchyard.db    # or postgres://...
//!   # ours (docs/operations.md):
//!   max_request_size_mb: 32
//!   client_header_timeout: 30               # seconds; also the keep-alive idle timeout
//!   client_body_timeout: 120
//!   max_connections: 4096                   # default: half the open-file limit
//!   graceful_shutdown_timeout: 20
//!   spend_flush_ms: 250                     # what a SIGKILL can lose
//!   durable_spend: false                    # true: answers complete once their row is written
//!   model_api_base_header: false            # true: answers carry x-switchyard-model-api-base
//! ```
//!
//! Keys this gateway does not support are named in one warning at start-up, never silently
//! ignored; an invalid file is an error naming the line and the field.

pub use super::env::resolve_env;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde_norway::Value;

use crate::error::{Error, Result};

/// The largest `general_settings.max_request_size_mb`: bodies are read into memory.
pub const MAX_REQUEST_SIZE_MB: u64 = 1024;

/// The largest `litellm_settings.cache_params.max_size_mb` (64 GiB).
pub const MAX_CACHE_SIZE_MB: u64 = 65_536;

/// The whole file.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Config {
    /// The deployments.
    #[serde(default)]
    pub model_list: Vec<ModelEntry>,
    /// Routing.
    #[serde(default)]
    pub router_settings: RouterSettings,
    /// Call behaviour.
    #[serde(default)]
    pub litellm_settings: LitellmSettings,
    /// The server.
    #[serde(default)]
    pub general_settings: GeneralSettings,
    /// OpenAI-compatible servers declared here, usable as `<id>/<model>` (ours).
    #[serde(default)]
    pub providers: Vec<CustomProvider>,
    /// Guardrails (LiteLLM's shape; the kinds are ours: see `gateway::guardrails`).
    #[serde(default)]
    pub guardrails: Vec<super::guardrails::GuardrailEntry>,
    #[serde(flatten)]
    unknown: BTreeMap<String, Value>,
}

/// An OpenAI-compatible server declared in the config, with no code.
///
/// ```yaml
/// providers:
///   - id: inhouse                       # models are `inhouse/<model>`
///     api_base: http://10.0.0.5:8000/v1
///     api_key: os.environ/INHOUSE_KEY   # optional
///     api_key_header: x-api-key         # default: Authorization: Bearer
///     rename_params: {max_completion_tokens: max_tokens, seed: random_seed}
///     drop_params: [logprobs, top_logprobs]
/// ```
#[derive(Clone, Debug, Deserialize)]
pub struct CustomProvider {
    /// The model-string prefix.
    pub id: String,
    /// The API base, with its version segment.
    pub api_base: String,
    /// The key (`os.environ/VAR` allowed); a deployment's own `api_key` wins.
    pub api_key: Option<String>,
    /// The header the key goes in, when not `Authorization: Bearer`.
    pub api_key_header: Option<String>,
    /// Parameters the server names differently: OpenAI name to the server's.
    #[serde(default)]
    pub rename_params: BTreeMap<String, String>,
    /// Parameters always removed before sending.
    #[serde(default)]
    pub drop_params: Vec<String>,
    #[serde(flatten)]
    unknown: BTreeMap<String, Value>,
}

/// One deployment of a model name.
#[derive(Clone, Debug, Deserialize)]
pub struct ModelEntry {
    /// The name clients ask for.
    pub model_name: String,
    /// How to reach it.
    pub litellm_params: LitellmParams,
    /// Facts about it.
    #[serde(default)]
    pub model_info: ModelInfo,
    #[serde(flatten)]
    unknown: BTreeMap<String, Value>,
}

/// How to reach a deployment.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct LitellmParams {
    /// `provider/model`.
    pub model: String,
    /// The API base.
    pub api_base: Option<String>,
    /// The key (`os.environ/VAR` reads the environment).
    pub api_key: Option<String>,
    /// The API version (Azure).
    pub api_version: Option<String>,
    /// Organization (OpenAI).
    pub organization: Option<String>,
    /// Requests per minute.
    pub rpm: Option<u64>,
    /// Tokens per minute.
    pub tpm: Option<u64>,
    /// Weighted-shuffle weight.
    pub weight: Option<u32>,
    /// Priority tier (lower first).
    pub order: Option<u32>,
    /// AWS region (Bedrock).
    pub aws_region_name: Option<String>,
    /// AWS access key id (Bedrock).
    pub aws_access_key_id: Option<String>,
    /// AWS secret (Bedrock).
    pub aws_secret_access_key: Option<String>,
    /// AWS session token (Bedrock).
    pub aws_session_token: Option<String>,
    /// Google Cloud project (Vertex AI).
    pub vertex_project: Option<String>,
    /// Google Cloud location (Vertex AI).
    pub vertex_location: Option<String>,
    /// Service-account JSON or a path to it (Vertex AI).
    pub vertex_credentials: Option<String>,
    /// Extra headers sent upstream.
    #[serde(default)]
    pub extra_headers: BTreeMap<String, String>,
    #[serde(flatten)]
    unknown: BTreeMap<String, Value>,
}

/// Facts about a deployment.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ModelInfo {
    /// A stable id (keys cooldowns and counts shared across instances).
    pub id: Option<String>,
    /// The model to price and count tokens as.
    pub base_model: Option<String>,
    /// The context window.
    pub max_input_tokens: Option<u64>,
    #[serde(flatten)]
    unknown: BTreeMap<String, Value>,
}

/// `router_settings`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RouterSettings {
    /// LiteLLM's strategy names.
    pub routing_strategy: Option<String>,
    /// Retries per group.
    pub num_retries: Option<u32>,
    /// Seconds a whole answer may take (and a stream its first byte), per attempt.
    pub timeout: Option<f64>,
    /// Seconds a stream may go without a line (LiteLLM's `stream_timeout`).
    pub stream_timeout: Option<f64>,
    /// `[{group: [fallback, ...]}, ...]`.
    #[serde(default)]
    pub fallbacks: Vec<BTreeMap<String, Vec<String>>>,
    /// Fallbacks for prompts too long for a group.
    #[serde(default)]
    pub context_window_fallbacks: Vec<BTreeMap<String, Vec<String>>>,
    /// Fallbacks for refused content.
    #[serde(default)]
    pub content_policy_fallbacks: Vec<BTreeMap<String, Vec<String>>>,
    /// Failures allowed per window before a cooldown.
    pub allowed_fails: Option<u64>,
    /// Cooldown seconds.
    pub cooldown_time: Option<f64>,
    /// Redis URL for shared state.
    pub redis_url: Option<String>,
    /// Redis host (with `redis_port`, `redis_password`).
    pub redis_host: Option<String>,
    /// Redis port.
    pub redis_port: Option<u16>,
    /// Redis password.
    pub redis_password: Option<String>,
    #[serde(flatten)]
    unknown: BTreeMap<String, Value>,
}

/// `litellm_settings`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct LitellmSettings {
    /// Drop parameters a provider cannot express.
    #[serde(default)]
    pub drop_params: bool,
    /// Seconds per attempt until the first byte (when `router_settings.timeout` is unset).
    pub request_timeout: Option<f64>,
    /// Retries (when `router_settings.num_retries` is unset).
    pub num_retries: Option<u32>,
    /// Whether to cache answers.
    #[serde(default)]
    pub cache: bool,
    /// The cache.
    #[serde(default)]
    pub cache_params: CacheParams,
    #[serde(flatten)]
    unknown: BTreeMap<String, Value>,
}

/// `litellm_settings.cache_params`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct CacheParams {
    /// `local` (memory, the default) or `redis`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Seconds an answer is kept (default 600).
    pub ttl: Option<f64>,
    /// Redis host (else the router's Redis).
    pub host: Option<String>,
    /// Redis port.
    pub port: Option<u16>,
    /// Redis password.
    pub password: Option<String>,
    /// Key prefix.
    pub namespace: Option<String>,
    /// Memory cache size in MB (ours; default 256).
    pub max_size_mb: Option<u64>,
    #[serde(flatten)]
    unknown: BTreeMap<String, Value>,
}

/// `general_settings`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct GeneralSettings {
    /// The admin key (`os.environ/VAR` allowed).
    pub master_key: Option<String>,
    /// `sqlite://path` (default `sqlite://switchyard.db`) or `postgres://...`.
    pub database_url: Option<String>,
    /// Largest request body in MB (ours; default 32).
    pub max_request_size_mb: Option<u64>,
    /// Seconds a request's head may take to arrive, and a kept-alive connection may sit
    /// idle (ours; default 30).
    pub client_header_timeout: Option<f64>,
    /// Seconds a request's body may take to arrive (ours; default 120; no piece of it may
    /// take more than 30).
    pub client_body_timeout: Option<f64>,
    /// Open connections past which new ones are refused with a 503 (ours; default half
    /// the open-file limit).
    pub max_connections: Option<u64>,
    /// Seconds requests in flight may finish after a shutdown signal (ours; default 20).
    pub graceful_shutdown_timeout: Option<f64>,
    /// Milliseconds spend rows gather before they are written in one batch (ours; default
    /// 250, 0 for none): a SIGKILL loses at most this window's rows.
    pub spend_flush_ms: Option<u64>,
    /// An answer is complete only once its spend row is written (ours; default false): a
    /// SIGKILL then loses only calls whose answers had not completed.
    #[serde(default)]
    pub durable_spend: bool,
    /// Whether answers carry `x-switchyard-model-api-base`, the upstream's URL (ours;
    /// default false: it is internal).
    #[serde(default)]
    pub model_api_base_header: bool,
    #[serde(flatten)]
    unknown: BTreeMap<String, Value>,
}

impl Config {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read the config {}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| match e {
            Error::Config(m) => Error::Config(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// Parses a config's text. Errors name the field and the line.
    pub fn parse(text: &str) -> Result<Self> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        let config: Config = serde_norway::from_str(text).map_err(|e| Error::Config(format!("invalid config: {e}")))?;
        let mut ids = std::collections::HashSet::new();
        for (i, provider) in config.providers.iter().enumerate() {
            let id = provider.id.as_str();
            let valid = !id.is_empty()
                && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
            if !valid {
                return Err(Error::Config(format!(
                    "invalid config: providers[{i}].id `{id}` must be lowercase letters, digits, _ or -"
                )));
            }
            if crate::ProviderKind::from_id(id).is_some() {
                return Err(Error::Config(format!("invalid config: providers[{i}].id `{id}` is a built-in provider")));
            }
            if !ids.insert(id) {
                return Err(Error::Config(format!("invalid config: providers[{i}].id `{id}` is declared twice")));
            }
            if !(provider.api_base.starts_with("http://") || provider.api_base.starts_with("https://")) {
                return Err(Error::Config(format!("invalid config: providers[{i}].api_base must be an http(s) URL")));
            }
        }
        config.check_ranges()?;
        let mut seen = std::collections::HashSet::new();
        for (i, entry) in config.model_list.iter().enumerate() {
            if entry.model_name.trim().is_empty() {
                return Err(Error::Config(format!("invalid config: model_list[{i}].model_name is empty")));
            }
            if entry.litellm_params.model.trim().is_empty() {
                return Err(Error::Config(format!("invalid config: model_list[{i}].litellm_params.model is empty")));
            }
            if let Some(id) = &entry.model_info.id
                && !seen.insert(id.clone())
            {
                return Err(Error::Config(format!(
                    "invalid config: model_list[{i}].model_info.id `{id}` is used twice"
                )));
            }
        }
        Ok(config)
    }

    /// Every key this gateway does not act on, as dotted paths (`litellm_settings.callbacks`).
    pub fn unsupported_keys(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut add = |prefix: &str, map: &BTreeMap<String, Value>| {
            out.extend(map.keys().map(|k| if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") }));
        };
        add("", &self.unknown);
        add("router_settings", &self.router_settings.unknown);
        add("litellm_settings", &self.litellm_settings.unknown);
        add("litellm_settings.cache_params", &self.litellm_settings.cache_params.unknown);
        add("general_settings", &self.general_settings.unknown);
        for (i, provider) in self.providers.iter().enumerate() {
            add(&format!("providers[{i}]"), &provider.unknown);
        }
        for (i, guardrail) in self.guardrails.iter().enumerate() {
            add(&format!("guardrails[{i}]"), &guardrail.unknown);
            add(&format!("guardrails[{i}].litellm_params"), &guardrail.litellm_params.unknown);
        }
        for (i, entry) in self.model_list.iter().enumerate() {
            add(&format!("model_list[{i}]"), &entry.unknown);
            add(&format!("model_list[{i}].litellm_params"), &entry.litellm_params.unknown);
            add(&format!("model_list[{i}].model_info"), &entry.model_info.unknown);
        }
        out
    }

    /// The Redis URL for shared state, from `redis_url` or host/port/password.
    pub fn redis_url(&self) -> Option<String> {
        let r = &self.router_settings;
        r.redis_url.clone().or_else(|| {
            let host = r.redis_host.as_deref()?;
            let port = r.redis_port.unwrap_or(6379);
            Some(match r.redis_password.as_deref() {
                Some(password) => format!("redis://:{password}@{host}:{port}/0"),
                None => format!("redis://{host}:{port}/0"),
            })
        })
    }

    /// Every number of seconds and megabytes in range, or an error naming the first that is
    /// not (`1e300` seconds parses as YAML and would overflow every clock).
    fn check_ranges(&self) -> Result<()> {
        use crate::bounds::{MAX_CONFIG_WAIT, MAX_TTL, config_secs};
        let waits = [
            ("router_settings.timeout", self.router_settings.timeout, false),
            ("litellm_settings.request_timeout", self.litellm_settings.request_timeout, false),
            ("router_settings.cooldown_time", self.router_settings.cooldown_time, true),
            ("router_settings.stream_timeout", self.router_settings.stream_timeout, false),
        ];
        for (field, value, allow_zero) in waits {
            if let Some(seconds) = value {
                config_secs(field, seconds, allow_zero, MAX_CONFIG_WAIT)?;
            }
        }
        let general = &self.general_settings;
        for (field, value) in [
            ("general_settings.client_header_timeout", general.client_header_timeout),
            ("general_settings.client_body_timeout", general.client_body_timeout),
            ("general_settings.graceful_shutdown_timeout", general.graceful_shutdown_timeout),
        ] {
            if let Some(seconds) = value {
                config_secs(field, seconds, false, MAX_CONFIG_WAIT)?;
            }
        }
        if let Some(ms) = general.spend_flush_ms
            && ms > 60_000
        {
            return Err(Error::Config(format!(
                "invalid config: general_settings.spend_flush_ms is {ms}; it must be from 0 to 60000"
            )));
        }
        if let Some(n) = general.max_connections
            && !(1..=1_000_000).contains(&n)
        {
            return Err(Error::Config(format!(
                "invalid config: general_settings.max_connections is {n}; it must be from 1 to 1000000"
            )));
        }
        if let Some(ttl) = self.litellm_settings.cache_params.ttl {
            config_secs("litellm_settings.cache_params.ttl", ttl, false, MAX_TTL)?;
        }
        if let Some(mb) = self.general_settings.max_request_size_mb
            && !(1..=MAX_REQUEST_SIZE_MB).contains(&mb)
        {
            return Err(Error::Config(format!(
                "invalid config: general_settings.max_request_size_mb is {mb}; it must be from 1 to {MAX_REQUEST_SIZE_MB}"
            )));
        }
        if let Some(mb) = self.litellm_settings.cache_params.max_size_mb
            && !(1..=MAX_CACHE_SIZE_MB).contains(&mb)
        {
            return Err(Error::Config(format!(
                "invalid config: litellm_settings.cache_params.max_size_mb is {mb}; it must be from 1 to {MAX_CACHE_SIZE_MB}"
            )));
        }
        Ok(())
    }

    /// How long a stream may go without a line, if set.
    pub fn stream_timeout(&self) -> Option<Duration> {
        self.router_settings
            .stream_timeout
            .and_then(|s| crate::bounds::secs_within(s, false, crate::bounds::MAX_CONFIG_WAIT))
    }

    /// How long a whole answer may take per attempt (and a stream until its first byte), if
    /// set (checked by [`Config::parse`]).
    pub fn timeout(&self) -> Option<Duration> {
        self.router_settings
            .timeout
            .or(self.litellm_settings.request_timeout)
            .and_then(|s| crate::bounds::secs_within(s, false, crate::bounds::MAX_CONFIG_WAIT))
    }

    /// How long a failing deployment cools down, if set.
    pub fn cooldown(&self) -> Option<Duration> {
        self.router_settings
            .cooldown_time
            .and_then(|s| crate::bounds::secs_within(s, true, crate::bounds::MAX_CONFIG_WAIT))
    }

    /// How long cached answers are kept (default 600 s).
    pub fn cache_ttl(&self) -> Duration {
        self.litellm_settings
            .cache_params
            .ttl
            .and_then(|s| crate::bounds::secs_within(s, false, crate::bounds::MAX_TTL))
            .unwrap_or(Duration::from_secs(600))
    }

    /// How long spend rows gather before a batch is written: none in durable mode, where
    /// answers wait for their rows (what queues while a batch is written goes in the next).
    pub fn spend_flush(&self) -> Duration {
        if self.general_settings.durable_spend {
            return Duration::ZERO;
        }
        self.general_settings
            .spend_flush_ms
            .map_or(super::spend::DEFAULT_FLUSH, |ms| Duration::from_millis(ms.min(60_000)))
    }

    /// How connections are served (defaults where unset).
    pub fn server_limits(&self) -> super::ServerLimits {
        let general = &self.general_settings;
        let secs = |value: Option<f64>| {
            value.and_then(|s| crate::bounds::secs_within(s, false, crate::bounds::MAX_CONFIG_WAIT))
        };
        let mut limits = super::ServerLimits::default();
        if let Some(timeout) = secs(general.client_header_timeout) {
            limits.header_timeout = timeout;
        }
        if let Some(timeout) = secs(general.client_body_timeout) {
            limits.body_timeout = timeout;
            limits.body_idle = limits.body_idle.min(timeout);
        }
        if let Some(n) = general.max_connections.and_then(|n| usize::try_from(n).ok()) {
            limits.max_connections = n;
        }
        if let Some(timeout) = secs(general.graceful_shutdown_timeout) {
            limits.shutdown_timeout = timeout;
        }
        limits
    }

    /// The largest request body, in bytes.
    pub fn max_body(&self) -> usize {
        self.general_settings
            .max_request_size_mb
            .filter(|mb| (1..=MAX_REQUEST_SIZE_MB).contains(mb))
            .map_or(super::DEFAULT_MAX_BODY, |mb| (mb as usize) << 20)
    }
}

/// Flattens LiteLLM's `[{group: [..]}, ...]` lists.
pub fn fallback_table(lists: &[BTreeMap<String, Vec<String>>]) -> Vec<(String, Vec<String>)> {
    lists.iter().flat_map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone()))).collect()
}

#[cfg(test)]
mod tests;
