//! The price registry and cost receipts.
//!
//! Prices are kept as whole pico-dollars (10^-12 USD) per token, so a receipt is exact
//! integer arithmetic: $0.075 per million tokens is 75,000 pico-dollars per token, and no
//! sum of floats drifts. The registry ships in the crate (`prices.json`, dated by its
//! `version`), can be extended or overridden from a file in the same format, and can read
//! LiteLLM's `model_prices_and_context_window.json`.
//!
//! Receipts are computed from the OpenAI-shaped usage every adapter returns, in which
//! `prompt_tokens` includes cached reads (`prompt_tokens_details.cached_tokens`) and cache
//! writes (`cache_write_tokens`), and `completion_tokens` includes reasoning tokens. The
//! adapters bring each provider's convention to that shape (Anthropic reports cache tokens
//! apart from `input_tokens`; OpenAI counts cached tokens inside `prompt_tokens`), so each
//! token is priced once, at its own rate.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::spec::openai::CompletionUsage;

/// An amount of US dollars, in pico-dollars (10^-12 USD).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Usd(pub u64);

impl Usd {
    /// Pico-dollars in one dollar.
    pub const DOLLAR: u64 = 1_000_000_000_000;

    /// The amount as (approximate) dollars, for display and metrics.
    pub fn as_dollars(self) -> f64 {
        self.0 as f64 / Self::DOLLAR as f64
    }

    /// A price per million tokens (what providers publish) as a price per token.
    fn per_million(dollars: f64, what: &str) -> Result<Self> {
        if !dollars.is_finite() || dollars < 0.0 {
            return Err(Error::Config(format!("price `{what}` must be a non-negative number, not {dollars}")));
        }
        // $1 per million tokens = 10^-6 $/token = 10^6 pico-dollars per token.
        Ok(Self((dollars * 1_000_000.0).round() as u64))
    }

    /// A price in dollars per token (LiteLLM's unit) as pico-dollars per token.
    fn per_token(dollars: f64, what: &str) -> Result<Self> {
        if !dollars.is_finite() || dollars < 0.0 {
            return Err(Error::Config(format!("price `{what}` must be a non-negative number, not {dollars}")));
        }
        Ok(Self((dollars * Self::DOLLAR as f64).round() as u64))
    }
}

impl fmt::Display for Usd {
    /// `$0.000123450000`: dollars with all twelve decimals, so nothing is hidden by rounding.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "${}.{:012}", self.0 / Self::DOLLAR, self.0 % Self::DOLLAR)
    }
}

/// What one model costs and can do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelInfo {
    /// Per uncached prompt token.
    pub input: Usd,
    /// Per generated token that is not reasoning.
    pub output: Usd,
    /// Per prompt token read from the provider's cache; `None` when it has no discount.
    pub cache_read: Option<Usd>,
    /// Per prompt token written to the cache; `None` when writing costs the input price.
    pub cache_write: Option<Usd>,
    /// Per reasoning token; `None` when reasoning is billed as output.
    pub reasoning: Option<Usd>,
    /// Per request, on top of tokens.
    pub per_request: Usd,
    /// Tokens of context (prompt and output).
    pub context_window: Option<u64>,
    /// Most tokens the model may generate in one answer.
    pub max_output: Option<u64>,
    /// What the model supports (`tools`, `vision`, `reasoning`, ...).
    pub capabilities: Vec<String>,
}

/// Prices and model facts, keyed by `provider/model`.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    version: String,
    models: HashMap<String, ModelInfo>,
}

/// Our registry file's shape.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: String,
    #[serde(default)]
    #[allow(dead_code)]
    unit: Option<String>,
    models: HashMap<String, Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    input: f64,
    output: f64,
    cache_read: Option<f64>,
    cache_write: Option<f64>,
    reasoning: Option<f64>,
    per_request: Option<f64>,
    context_window: Option<u64>,
    max_output: Option<u64>,
    #[serde(default)]
    capabilities: Vec<String>,
}

const BUILTIN: &str = include_str!("prices.json");

impl Registry {
    /// The registry shipped with this version of the crate. (It is our file and a test reads
    /// it, so an error here is a packaging bug; it is still an error, not a panic.)
    pub fn builtin() -> Result<Self> {
        Self::from_json(BUILTIN)
    }

    /// Whether the built-in registry knows `provider/model` and says it does not reason
    /// (no `reasoning` capability). A model it does not know is not said not to.
    pub fn known_not_to_reason(provider: &str, model: &str) -> bool {
        static BUILTIN: std::sync::OnceLock<Option<Registry>> = std::sync::OnceLock::new();
        BUILTIN
            .get_or_init(|| Self::builtin().ok())
            .as_ref()
            .and_then(|registry| registry.get(provider, model))
            .is_some_and(|info| !info.capabilities.iter().any(|c| c == "reasoning"))
    }

    /// The date of the prices (for a merged registry, `builtin+override-version`).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// How many models it prices.
    pub fn len(&self) -> usize {
        self.models.len()
    }

    /// Whether it prices nothing.
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// Reads a registry in our format (`prices.json`: dollars per million tokens).
    pub fn from_json(text: &str) -> Result<Self> {
        let file: File = serde_json::from_str(text).map_err(|e| Error::Config(format!("price registry: {e}")))?;
        let mut models = HashMap::with_capacity(file.models.len());
        for (name, e) in file.models {
            let price = |value: f64, field: &str| Usd::per_million(value, &format!("{name}.{field}"));
            let optional = |value: Option<f64>, field: &str| value.map(|v| price(v, field)).transpose();
            let info = ModelInfo {
                input: price(e.input, "input")?,
                output: price(e.output, "output")?,
                cache_read: optional(e.cache_read, "cache_read")?,
                cache_write: optional(e.cache_write, "cache_write")?,
                reasoning: optional(e.reasoning, "reasoning")?,
                per_request: match e.per_request {
                    Some(dollars) => Usd::per_token(dollars, &format!("{name}.per_request"))?,
                    None => Usd(0),
                },
                context_window: e.context_window,
                max_output: e.max_output,
                capabilities: e.capabilities,
            };
            models.insert(name, info);
        }
        Ok(Self { version: file.version, models })
    }

    /// Reads a price file: ours (an object with `version` and `models`) or LiteLLM's
    /// (versioned as the file's name). Merge it over the built-in one with [`Registry::merged`].
    pub fn load(path: impl AsRef<std::path::Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("price registry {}: {e}", path.display())))?;
        let ours = serde_json::from_str::<serde_json::Value>(&text)
            .map(|v| v.get("version").is_some() && v.get("models").is_some())
            .map_err(|e| Error::Config(format!("price registry {}: {e}", path.display())))?;
        let named = |e: Error| match e {
            Error::Config(m) => Error::Config(format!("{}: {m}", path.display())),
            other => other,
        };
        if ours {
            Self::from_json(&text).map_err(named)
        } else {
            let version = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            Self::from_litellm_json(&text, &version).map_err(named)
        }
    }

    /// Reads LiteLLM's `model_prices_and_context_window.json` (dollars per token). Entries
    /// are keyed `provider/model` from their `litellm_provider` unless the key already
    /// names one; `sample_spec` and entries without token prices are skipped.
    pub fn from_litellm_json(text: &str, version: &str) -> Result<Self> {
        let all: HashMap<String, Value> =
            serde_json::from_str(text).map_err(|e| Error::Config(format!("LiteLLM price file: {e}")))?;
        let mut models = HashMap::new();
        for (key, entry) in all {
            if key == "sample_spec" {
                continue;
            }
            let Some(obj) = entry.as_object() else { continue };
            let number = |field: &str| obj.get(field).and_then(Value::as_f64);
            let (Some(input), Some(output)) =
                (number("input_cost_per_token"), number("output_cost_per_token").or(Some(0.0)))
            else {
                continue;
            };
            let price = |value: f64, field: &str| Usd::per_token(value, &format!("{key}.{field}"));
            let optional = |field: &str| number(field).map(|v| price(v, field)).transpose();
            let capabilities = obj
                .iter()
                .filter_map(|(k, v)| Some(k.strip_prefix("supports_")?).filter(|_| v.as_bool() == Some(true)))
                .map(str::to_string)
                .collect();
            let info = ModelInfo {
                input: price(input, "input_cost_per_token")?,
                output: price(output, "output_cost_per_token")?,
                cache_read: optional("cache_read_input_token_cost")?,
                cache_write: optional("cache_creation_input_token_cost")?,
                reasoning: optional("output_cost_per_reasoning_token")?,
                per_request: optional("input_cost_per_request")?.unwrap_or_default(),
                context_window: obj.get("max_input_tokens").and_then(Value::as_u64),
                max_output: obj.get("max_output_tokens").and_then(Value::as_u64),
                capabilities,
            };
            let name = match obj.get("litellm_provider").and_then(Value::as_str) {
                Some(provider) if !key.starts_with(&format!("{provider}/")) => format!("{provider}/{key}"),
                _ => key,
            };
            models.insert(name, info);
        }
        Ok(Self { version: version.to_string(), models })
    }

    /// This registry with `other`'s models added, replacing any of the same name.
    pub fn merged(mut self, other: Registry) -> Self {
        self.version = format!("{}+{}", self.version, other.version);
        self.models.extend(other.models);
        self
    }

    /// The facts for `provider/model`, else for the bare model name.
    ///
    /// Azure OpenAI is priced as OpenAI (its global deployments cost the same); name the
    /// model an Azure deployment runs with [`crate::router::Deployment::base_model`].
    pub fn get(&self, provider: &str, model: &str) -> Option<&ModelInfo> {
        self.models
            .get(&format!("{provider}/{model}"))
            .or_else(|| if provider == "azure" { self.models.get(&format!("openai/{model}")) } else { None })
            // Claude on Vertex AI (`claude-sonnet-4-5@20250929`) is priced as Anthropic's own.
            .or_else(|| match model.split_once('@') {
                Some((name, date)) if provider == "vertex_ai" && name.starts_with("claude-") => {
                    self.models.get(&format!("anthropic/{name}-{date}"))
                }
                _ => None,
            })
            .or_else(|| self.models.get(model))
    }

    /// A receipt for `usage` on `provider/model`; `None` when the model has no price here.
    pub fn receipt(&self, provider: &str, model: &str, usage: &CompletionUsage) -> Option<Receipt> {
        let info = self.get(provider, model)?;
        Some(Receipt::new(format!("{provider}/{model}"), &self.version, info, usage))
    }
}

/// One line of a receipt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReceiptLine {
    /// `prompt`, `cache_read`, `cache_write`, `completion`, `reasoning` or `request`.
    pub item: &'static str,
    /// Tokens (or requests) billed.
    pub quantity: u64,
    /// The price of one.
    pub unit_price: Usd,
    /// quantity × unit price.
    pub cost: Usd,
}

/// What a call cost, item by item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Receipt {
    /// `provider/model` as priced.
    pub model: String,
    /// The registry version the prices come from.
    pub registry_version: String,
    /// The items; those with no quantity are left out.
    pub lines: Vec<ReceiptLine>,
    /// The sum of the lines.
    pub total: Usd,
    /// Served from the response cache: every line costs nothing.
    pub cache_hit: bool,
}

impl Receipt {
    fn new(model: String, version: &str, info: &ModelInfo, usage: &CompletionUsage) -> Self {
        let count = |n: Option<i64>| n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
        let details = usage.prompt_tokens_details.as_ref();
        // DeepSeek reports its cache hits as `prompt_cache_hit_tokens` (inside
        // `prompt_tokens`); where `cached_tokens` is absent, that is the cached part.
        let cache_read = count(details.and_then(|d| d.cached_tokens))
            .max(usage.extra.get("prompt_cache_hit_tokens").and_then(serde_json::Value::as_u64).unwrap_or(0));
        let cache_write = count(details.and_then(|d| d.cache_write_tokens));
        // Cohere bills `billed_units`, which leave out the tokens of its own prompt template
        // that `tokens` counts; the Cohere adapter keeps them in the usage's extra fields.
        let billed = |field: &str| {
            usage.extra.get("billed_units").and_then(|b| b.get(field)).and_then(serde_json::Value::as_u64)
        };
        let prompt = billed("input_tokens")
            .unwrap_or_else(|| count(Some(usage.prompt_tokens)))
            .saturating_sub(cache_read)
            .saturating_sub(cache_write);
        let reasoning = count(usage.completion_tokens_details.as_ref().and_then(|d| d.reasoning_tokens));
        let completion =
            billed("output_tokens").unwrap_or_else(|| count(Some(usage.completion_tokens))).saturating_sub(reasoning);
        let items = [
            ("prompt", prompt, info.input),
            ("cache_read", cache_read, info.cache_read.unwrap_or(info.input)),
            ("cache_write", cache_write, info.cache_write.unwrap_or(info.input)),
            ("completion", completion, info.output),
            ("reasoning", reasoning, info.reasoning.unwrap_or(info.output)),
            ("request", u64::from(info.per_request.0 > 0), info.per_request),
        ];
        let lines: Vec<ReceiptLine> = items
            .into_iter()
            .filter(|&(_, quantity, _)| quantity > 0)
            .map(|(item, quantity, unit_price)| ReceiptLine {
                item,
                quantity,
                unit_price,
                cost: Usd(quantity.saturating_mul(unit_price.0)),
            })
            .collect();
        let total = Usd(lines.iter().fold(0u64, |sum, line| sum.saturating_add(line.cost.0)));
        Self { model, registry_version: version.to_string(), lines, total, cache_hit: false }
    }

    /// The same receipt for an answer served from the response cache: nothing is billed.
    pub fn for_cache_hit(mut self) -> Self {
        for line in &mut self.lines {
            line.cost = Usd(0);
        }
        self.total = Usd(0);
        self.cache_hit = true;
        self
    }
}

#[cfg(test)]
mod tests;
