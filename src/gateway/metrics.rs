//! Prometheus metrics at `/metrics`: requests, latency and time-to-first-token histograms,
//! tokens, spend and errors by model, deployment cooldowns, and guardrail decisions with the
//! time each took.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::hooks::{CallEvent, EventKind};

type Labels = Vec<(&'static str, String)>;

/// The gateway's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    latency: Family<Labels, Histogram>,
    ttft: Family<Labels, Histogram>,
    tokens: Family<Labels, Counter>,
    spend: Family<Labels, Counter<f64, AtomicU64>>,
    errors: Family<Labels, Counter>,
    cooling: Family<Labels, Gauge>,
    guardrails: Family<Labels, Counter>,
    guardrail_time: Family<Labels, Histogram>,
    /// Each configured model's series, found once (set when the router is built).
    models: OnceLock<HashMap<String, Series>>,
    /// The series of calls to a model that is not configured: one label, `(unknown)`, so a
    /// client sending made-up names cannot grow the metrics without bound.
    unknown: Series,
}

/// The label calls to models that are not configured are counted under.
const UNKNOWN: &str = "(unknown)";

/// The series one model's calls count in. A call then counts with atomics on handles found
/// once, not with label vectors built and hashed under the family's lock each time. A
/// series appears in the exposition when first counted, as with the families alone.
#[derive(Debug, Default)]
struct Series {
    /// By (outcome: success, failure, cancelled; cache hit).
    requests: [[OnceLock<Counter>; 2]; 3],
    latency: OnceLock<Histogram>,
    ttft: OnceLock<Histogram>,
    /// prompt, completion, cached, reasoning.
    tokens: [OnceLock<Counter>; 4],
    spend: OnceLock<Counter<f64, AtomicU64>>,
}

const TOKEN_KINDS: [&str; 4] = ["prompt", "completion", "cached", "reasoning"];

fn guardrail_seconds() -> Histogram {
    // 1 µs to ~1 s (a webhook's round trip).
    Histogram::new(exponential_buckets(0.000_001, 4.0, 11))
}

fn seconds() -> Histogram {
    // 1 ms to ~65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

impl Metrics {
    /// Registers every family.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("switchyard");
        let requests = Family::<Labels, Counter>::default();
        let latency = Family::<Labels, Histogram>::new_with_constructor(seconds as fn() -> Histogram);
        let ttft = Family::<Labels, Histogram>::new_with_constructor(seconds as fn() -> Histogram);
        let tokens = Family::<Labels, Counter>::default();
        let spend = Family::<Labels, Counter<f64, AtomicU64>>::default();
        let errors = Family::<Labels, Counter>::default();
        let cooling = Family::<Labels, Gauge>::default();
        let guardrails = Family::<Labels, Counter>::default();
        let guardrail_time = Family::<Labels, Histogram>::new_with_constructor(guardrail_seconds as fn() -> Histogram);
        registry.register("requests", "Calls by model and outcome", requests.clone());
        registry.register(
            "request_duration_seconds",
            "Call latency (to the stream's end for streams)",
            latency.clone(),
        );
        registry.register("time_to_first_token_seconds", "Time to the first streamed chunk", ttft.clone());
        registry.register("tokens", "Tokens by model and kind", tokens.clone());
        registry.register("spend_dollars", "Spend by model, from the receipts", spend.clone());
        registry.register("errors", "Failed calls by model and error kind", errors.clone());
        registry.register("deployment_cooling_down", "1 while a deployment is cooling down", cooling.clone());
        registry.register(
            "guardrail_decisions",
            "Guardrail decisions by guardrail, mode and decision",
            guardrails.clone(),
        );
        registry.register("guardrail_duration_seconds", "The time each guardrail took", guardrail_time.clone());
        Self {
            registry,
            requests,
            latency,
            ttft,
            tokens,
            spend,
            errors,
            cooling,
            guardrails,
            guardrail_time,
            models: OnceLock::new(),
            unknown: Series::default(),
        }
    }

    /// The configured models (the router's groups); calls to others count as `(unknown)`.
    /// Set once; later calls change nothing.
    pub fn set_models<'a>(&self, groups: impl IntoIterator<Item = &'a str>) {
        let _ = self.models.set(groups.into_iter().map(|g| (g.to_string(), Series::default())).collect());
    }

    /// Counts one finished call.
    pub fn observe(&self, event: &CallEvent) {
        let (model, series) = match self.models.get().and_then(|m| m.get_key_value(event.group.as_str())) {
            Some((name, series)) => (name.as_str(), series),
            None => (UNKNOWN, &self.unknown),
        };
        let labels = |extra: &[(&'static str, &str)]| {
            let mut labels: Labels = vec![("model", model.to_string())];
            labels.extend(extra.iter().map(|(k, v)| (*k, (*v).to_string())));
            labels
        };
        let (index, outcome) = match event.kind {
            EventKind::Success | EventKind::StreamEnd => (0, "success"),
            EventKind::Failure => (1, "failure"),
            EventKind::Cancelled => (2, "cancelled"),
        };
        series.requests[index][usize::from(event.cache_hit)]
            .get_or_init(|| {
                let hit = if event.cache_hit { "true" } else { "false" };
                self.requests.get_or_create(&labels(&[("outcome", outcome), ("cache_hit", hit)])).clone()
            })
            .inc();
        series
            .latency
            .get_or_init(|| self.latency.get_or_create(&labels(&[])).clone())
            .observe(event.latency.as_secs_f64());
        if let Some(ttft) = event.time_to_first_token {
            series.ttft.get_or_init(|| self.ttft.get_or_create(&labels(&[])).clone()).observe(ttft.as_secs_f64());
        }
        if let Some(usage) = &event.usage {
            let count = |n: i64| u64::try_from(n).unwrap_or(0);
            let details = usage.prompt_tokens_details.as_ref();
            let reasoning = usage.completion_tokens_details.as_ref().and_then(|d| d.reasoning_tokens);
            let counts = [
                count(usage.prompt_tokens),
                count(usage.completion_tokens),
                details.and_then(|d| d.cached_tokens).map_or(0, count),
                reasoning.map_or(0, count),
            ];
            for (i, n) in counts.into_iter().enumerate() {
                if n > 0 {
                    series.tokens[i]
                        .get_or_init(|| self.tokens.get_or_create(&labels(&[("kind", TOKEN_KINDS[i])])).clone())
                        .inc_by(n);
                }
            }
        }
        if let Some(receipt) = &event.receipt {
            series
                .spend
                .get_or_init(|| self.spend.get_or_create(&labels(&[])).clone())
                .inc_by(receipt.total.as_dollars());
        }
        if let Some(kind) = event.error_kind {
            self.errors.get_or_create(&labels(&[("kind", kind.name())])).inc();
        }
    }

    /// Counts guardrail decisions and the time they took.
    pub fn observe_guardrails(&self, records: &[super::guardrails::Record]) {
        for r in records {
            let labels = vec![
                ("guardrail", r.guardrail.clone()),
                ("mode", r.mode.to_string()),
                ("decision", r.decision.to_string()),
            ];
            self.guardrails.get_or_create(&labels).inc();
            self.guardrail_time
                .get_or_create(&vec![("guardrail", r.guardrail.clone())])
                .observe(r.latency_us as f64 / 1e6);
        }
    }

    /// Sets whether a deployment is cooling down.
    pub fn set_cooling(&self, group: &str, deployment: &str, cooling: bool) {
        let labels = vec![("model", group.to_string()), ("deployment", deployment.to_string())];
        self.cooling.get_or_create(&labels).set(i64::from(cooling));
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
