//! Prometheus metrics at `/metrics`: requests, latency and time-to-first-token histograms,
//! tokens, spend and errors by model, deployment cooldowns, and guardrail decisions with the
//! time each took.

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
}

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
        Self { registry, requests, latency, ttft, tokens, spend, errors, cooling, guardrails, guardrail_time }
    }

    /// Counts one finished call.
    pub fn observe(&self, event: &CallEvent) {
        let model = || vec![("model", event.group.clone())];
        let outcome = match event.kind {
            EventKind::Failure => "failure",
            EventKind::Success | EventKind::StreamEnd => "success",
        };
        let mut labels = model();
        labels.push(("outcome", outcome.to_string()));
        labels.push(("cache_hit", event.cache_hit.to_string()));
        self.requests.get_or_create(&labels).inc();
        self.latency.get_or_create(&model()).observe(event.latency.as_secs_f64());
        if let Some(ttft) = event.time_to_first_token {
            self.ttft.get_or_create(&model()).observe(ttft.as_secs_f64());
        }
        if let Some(usage) = &event.usage {
            let count = |n: i64| u64::try_from(n).unwrap_or(0);
            let add = |kind: &str, n: u64| {
                if n > 0 {
                    let mut labels = model();
                    labels.push(("kind", kind.to_string()));
                    self.tokens.get_or_create(&labels).inc_by(n);
                }
            };
            add("prompt", count(usage.prompt_tokens));
            add("completion", count(usage.completion_tokens));
            let details = usage.prompt_tokens_details.as_ref();
            add("cached", details.and_then(|d| d.cached_tokens).map_or(0, count));
            let reasoning = usage.completion_tokens_details.as_ref().and_then(|d| d.reasoning_tokens);
            add("reasoning", reasoning.map_or(0, count));
        }
        if let Some(receipt) = &event.receipt {
            self.spend.get_or_create(&model()).inc_by(receipt.total.as_dollars());
        }
        if let Some(kind) = event.error_kind {
            let mut labels = model();
            labels.push(("kind", kind.name().to_string()));
            self.errors.get_or_create(&labels).inc();
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
