//! Building the gateway from a config: the store, shared state and limits, the router with
//! its deployments, policy and cache, guardrails, metrics and the spend writer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::config::{self, Config, CustomProvider, ModelEntry};
use super::{DEFAULT_DATABASE, Gateway, guardrails, intake, limits, metrics, settle, spend, store};
use crate::cache::ResponseCache;
use crate::error::{Error, Result};
use crate::provider::openai_compat::CompatVendor;
use crate::router::{Deployment, Router, RouterBuilder, SharedState, Strategy};
use crate::transport::{RetryPolicy, Timeouts};

type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The config with no file: the mock provider's models.
const DEFAULT_CONFIG: &str = r#"
model_list:
  - model_name: echo
    litellm_params: { model: mock/echo }
  - model_name: tools
    litellm_params: { model: mock/tools }
  - model_name: embed
    litellm_params: { model: mock/embed }
"#;

/// A provider a config declares under `providers:`, with its vendor row.
type Declared<'c> = HashMap<&'c str, (&'c CustomProvider, &'static CompatVendor)>;

impl Gateway {
    /// The gateway for a config, reading `os.environ/VAR` and overrides from `env`.
    ///
    /// Environment overrides: `SWITCHYARD_MASTER_KEY` (else `general_settings.master_key`,
    /// else a generated key) and `SWITCHYARD_REDIS_URL` (else `router_settings.redis_*`).
    pub async fn from_config(config: &Config, env: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        Self::from_config_with(config, env, Vec::new()).await
    }

    /// [`Gateway::from_config`] with more deployments than the file names, given in code
    /// (group, deployment).
    pub async fn from_config_with(
        config: &Config,
        env: &dyn Fn(&str) -> Option<String>,
        extra: Vec<(String, Deployment)>,
    ) -> Result<Self> {
        let database_url = match env("SWITCHYARD_DATABASE_URL") {
            Some(url) => url,
            None => {
                resolve(&config.general_settings.database_url, env)?.unwrap_or_else(|| DEFAULT_DATABASE.to_string())
            }
        };
        let store = store::Store::connect(&database_url).await?;
        let redis_url = env("SWITCHYARD_REDIS_URL").or_else(|| config.redis_url());
        let state = match &redis_url {
            Some(url) => SharedState::redis(url, "switchyard:router:").await?,
            None => SharedState::memory(),
        };
        let limits = Arc::new(limits::Limits::new(state.clone(), store.clone(), redis_url.as_deref()).await?);
        let guardrails = guardrails::Guardrails::compile(&config.guardrails, env)?;
        let (sender, writer) = spend::SpendWriter::start(store.clone(), config.spend_flush());
        let metrics = Arc::new(metrics::Metrics::new());
        let settler = settle::Settler::new(sender.clone(), metrics.clone(), config.general_settings.durable_spend);
        let mut builder = Router::builder()
            .drop_params(config.litellm_settings.drop_params)
            .state(state)
            .hooks(settle::hooks(settler.clone()));
        let declared: Declared<'_> = config
            .providers
            .iter()
            .map(|p| {
                let renames = p.rename_params.iter().map(|(a, b)| (a.clone(), b.clone())).collect();
                (p.id.as_str(), (p, CompatVendor::declare(&p.id, &p.api_base, renames, p.drop_params.clone(), false)))
            })
            .collect();
        for (i, entry) in config.model_list.iter().enumerate() {
            builder = builder.deployment(entry.model_name.clone(), deployment(i, entry, &declared, env)?);
        }
        for (group, deployment) in extra {
            builder = builder.deployment(group, deployment);
        }
        builder = policy(config, builder)?;
        if let Some(cache) = response_cache(config, env, redis_url.as_deref()).await? {
            builder = builder.cache(cache);
        }
        let router = builder.build()?;
        metrics.set_models(router.groups());
        let (master_key, generated_key) = master_key(config, env)?;
        let keys = moka::future::Cache::builder().max_capacity(100_000).time_to_live(Duration::from_secs(10)).build();
        let teams = moka::future::Cache::builder().max_capacity(10_000).time_to_live(Duration::from_secs(10)).build();
        Ok(Self {
            router,
            master_key: master_key.into(),
            max_body: config.max_body(),
            generated_key,
            store,
            limits,
            keys,
            teams,
            writer: std::sync::Mutex::new(Some(writer)),
            spend: sender,
            metrics,
            settler,
            guardrails,
            server: config.server_limits(),
            receiving: intake::Receiving::default(),
            show_api_base: config.general_settings.model_api_base_header,
        })
    }

    /// The gateway with no config: the mock provider's models (`echo`, `tools`, `embed`).
    pub async fn with_defaults(env: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        Self::from_config(&Config::parse(DEFAULT_CONFIG)?, env).await
    }
}

fn resolve(value: &Option<String>, env: Env<'_>) -> Result<Option<String>> {
    value.as_deref().map(|v| config::resolve_env(v, env)).transpose()
}

/// The deployment of `model_list[i]`.
fn deployment(i: usize, entry: &ModelEntry, declared: &Declared<'_>, env: Env<'_>) -> Result<Deployment> {
    let p = &entry.litellm_params;
    let at = |field: &str| format!("model_list[{i}].litellm_params.{field}");
    let mut deployment = Deployment::new(p.model.clone());
    let settings = &mut deployment.settings;
    settings.api_key =
        resolve(&p.api_key, env).map_err(|e| Error::Config(format!("{}: {e}", at("api_key"))))?.map(Into::into);
    settings.base_url = resolve(&p.api_base, env).map_err(|e| Error::Config(format!("{}: {e}", at("api_base"))))?;
    if let Some((provider, vendor)) = p.model.split_once('/').and_then(|(prefix, _)| declared.get(prefix)) {
        settings.base_url.get_or_insert_with(|| provider.api_base.clone());
        if settings.api_key.is_none() {
            settings.api_key = resolve(&provider.api_key, env)?.map(Into::into);
        }
        if let Some(header) = provider.api_key_header.as_deref().filter(|h| !h.eq_ignore_ascii_case("authorization"))
            && let Some(key) = settings.api_key.take()
        {
            settings.headers.push((header.to_string(), secrecy::ExposeSecret::expose_secret(&key).to_string()));
        }
        deployment.provider = Some(crate::ProviderKind::Compat(vendor));
    }
    let settings = &mut deployment.settings;
    settings.api_version = resolve(&p.api_version, env)?;
    settings.organization = resolve(&p.organization, env)?;
    settings.location = resolve(&p.aws_region_name, env)?.or(resolve(&p.vertex_location, env)?);
    settings.aws_access_key_id = resolve(&p.aws_access_key_id, env)?;
    settings.aws_secret_access_key = resolve(&p.aws_secret_access_key, env)?.map(Into::into);
    settings.aws_session_token = resolve(&p.aws_session_token, env)?.map(Into::into);
    settings.project = resolve(&p.vertex_project, env)?;
    settings.credentials = resolve(&p.vertex_credentials, env)?.map(Into::into);
    for (name, value) in &p.extra_headers {
        settings.headers.push((name.clone(), config::resolve_env(value, env)?));
    }
    deployment.rpm = p.rpm;
    deployment.tpm = p.tpm;
    deployment.weight = p.weight.unwrap_or(1);
    deployment.order = p.order.unwrap_or(0);
    deployment.id = entry.model_info.id.clone();
    deployment.base_model = entry.model_info.base_model.clone();
    deployment.context_window = entry.model_info.max_input_tokens;
    Ok(deployment)
}

/// The router's policy from `router_settings` (and LiteLLM's `litellm_settings` fallbacks):
/// strategy, retries, timeouts, cooldowns and fallbacks.
fn policy(config: &Config, mut builder: RouterBuilder) -> Result<RouterBuilder> {
    let router_settings = &config.router_settings;
    if let Some(name) = &router_settings.routing_strategy {
        let strategy = Strategy::from_name(name).ok_or_else(|| {
            Error::Config(format!(
                "router_settings.routing_strategy `{name}` is not one of simple-shuffle, least-busy, latency-based-routing, usage-based-routing, cost-based-routing"
            ))
        })?;
        builder = builder.strategy(strategy);
    }
    let retries = router_settings.num_retries.or(config.litellm_settings.num_retries);
    builder = builder.retry(RetryPolicy { max_retries: retries.unwrap_or(2), ..RetryPolicy::default() });
    let mut timeouts = Timeouts::default();
    if let Some(timeout) = config.timeout() {
        (timeouts.first_byte, timeouts.total) = (timeout, Some(timeout));
    }
    if let Some(idle) = config.stream_timeout() {
        timeouts.idle = idle;
    }
    builder = builder.timeouts(timeouts);
    if let Some(n) = router_settings.allowed_fails {
        builder = builder.allowed_fails(n);
    }
    if let Some(cooldown) = config.cooldown() {
        builder = builder.cooldown(cooldown);
    }
    for (group, to) in config::fallback_table(&router_settings.fallbacks) {
        builder = builder.fallbacks(group, to);
    }
    for (group, to) in config::fallback_table(&router_settings.context_window_fallbacks) {
        builder = builder.context_window_fallbacks(group, to);
    }
    for (group, to) in config::fallback_table(&router_settings.content_policy_fallbacks) {
        builder = builder.content_policy_fallbacks(group, to);
    }
    Ok(builder)
}

/// The response cache `litellm_settings.cache` asks for, if any.
async fn response_cache(config: &Config, env: Env<'_>, redis_url: Option<&str>) -> Result<Option<ResponseCache>> {
    if !config.litellm_settings.cache {
        return Ok(None);
    }
    let params = &config.litellm_settings.cache_params;
    let ttl = config.cache_ttl();
    let cache = match params.kind.as_deref().unwrap_or("local") {
        "local" | "memory" => ResponseCache::memory(params.max_size_mb.unwrap_or(256) << 20, ttl),
        "redis" => {
            let url = match &params.host {
                Some(host) => {
                    let port = params.port.unwrap_or(6379);
                    match &params.password {
                        Some(pw) => format!("redis://:{}@{host}:{port}/0", config::resolve_env(pw, env)?),
                        None => format!("redis://{host}:{port}/0"),
                    }
                }
                None => redis_url.map(str::to_string).ok_or_else(|| {
                    Error::Config(
                        "litellm_settings.cache_params: type redis needs a host or router_settings.redis_*".into(),
                    )
                })?,
            };
            let namespace = params.namespace.clone().unwrap_or_else(|| "switchyard:cache".into());
            ResponseCache::redis(&url, &format!("{namespace}:"), ttl).await?
        }
        other => {
            return Err(Error::Config(format!(
                "litellm_settings.cache_params.type `{other}` is not supported (local or redis)"
            )));
        }
    };
    Ok(Some(cache))
}

/// The master key (`SWITCHYARD_MASTER_KEY`, else `general_settings.master_key`), or a
/// generated one (then `true`).
fn master_key(config: &Config, env: Env<'_>) -> Result<(String, bool)> {
    let configured = env("SWITCHYARD_MASTER_KEY")
        .map(Ok)
        .or_else(|| config.general_settings.master_key.as_deref().map(|k| config::resolve_env(k, env)));
    Ok(match configured.transpose()? {
        Some(key) if !key.is_empty() => (key, false),
        _ => (format!("sk-master-{}", uuid::Uuid::new_v4().simple()), true),
    })
}
