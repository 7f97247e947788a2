use serde_json::json;

use super::*;
use crate::provider::anthropic::response::openai_usage as anthropic_usage;

fn usage(value: serde_json::Value) -> CompletionUsage {
    serde_json::from_value(value).unwrap_or_else(|e| panic!("{e}"))
}

fn builtin() -> Registry {
    Registry::builtin().unwrap_or_else(|e| panic!("{e}"))
}

fn costs(receipt: &Receipt) -> Vec<(&'static str, u64, u64)> {
    receipt.lines.iter().map(|l| (l.item, l.quantity, l.cost.0)).collect()
}

#[test]
fn the_builtin_registry_loads_and_is_dated() {
    let registry = builtin();
    assert!(registry.len() >= 8);
    assert_eq!(registry.version().len(), "2026-11-22".len());
    let mini = registry.get("openai", "gpt-4o-mini").unwrap_or_else(|| panic!("gpt-4o-mini is priced"));
    assert_eq!(mini.input, Usd(150_000));
    assert_eq!(mini.cache_read, Some(Usd(75_000)));
    assert_eq!(mini.context_window, Some(128_000));
}

/// OpenAI counts cached and reasoning tokens inside prompt and completion tokens; each is
/// billed once, at its own price. Hand-computed: 800 x $0.15/M + 200 x $0.075/M +
/// 400 x $0.60/M + 100 x $0.60/M = $0.000120 + $0.000015 + $0.000240 + $0.000060.
#[test]
fn openai_cached_and_reasoning_tokens_are_carved_out_of_their_totals() {
    let usage = usage(json!({
        "prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500,
        "prompt_tokens_details": {"cached_tokens": 200},
        "completion_tokens_details": {"reasoning_tokens": 100}
    }));
    let receipt = builtin().receipt("openai", "gpt-4o-mini", &usage).unwrap_or_else(|| panic!("priced"));
    assert_eq!(
        costs(&receipt),
        [
            ("prompt", 800, 120_000_000),
            ("cache_read", 200, 15_000_000),
            ("completion", 400, 240_000_000),
            ("reasoning", 100, 60_000_000)
        ]
    );
    assert_eq!(receipt.total.to_string(), "$0.000435000000");
    assert_eq!(receipt.registry_version, builtin().version());
}

/// Anthropic reports cache reads and writes apart from `input_tokens`; the adapter adds
/// them into `prompt_tokens`, and the receipt takes them out again. Hand-computed:
/// 1000 x $3/M + 2000 x $0.30/M + 300 x $3.75/M + 500 x $15/M = $0.012225.
#[test]
fn anthropic_cache_reads_and_writes_are_priced_apart_from_input() {
    let usage = anthropic_usage(1000, 500, Some(2000), Some(300));
    let receipt =
        builtin().receipt("anthropic", "claude-sonnet-4-5-20250929", &usage).unwrap_or_else(|| panic!("priced"));
    assert_eq!(
        costs(&receipt),
        [
            ("prompt", 1000, 3_000_000_000),
            ("cache_read", 2000, 600_000_000),
            ("cache_write", 300, 1_125_000_000),
            ("completion", 500, 7_500_000_000)
        ]
    );
    assert_eq!(receipt.total.to_string(), "$0.012225000000");
}

#[test]
fn a_cache_hit_costs_nothing_but_keeps_its_items() {
    let usage = usage(json!({"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}));
    let receipt = builtin().receipt("openai", "gpt-4o", &usage).unwrap_or_else(|| panic!("priced"));
    assert_eq!(receipt.total, Usd(10 * 2_500_000 + 5 * 10_000_000));
    let hit = receipt.for_cache_hit();
    assert!(hit.cache_hit);
    assert_eq!(hit.total, Usd(0));
    assert_eq!(hit.lines.iter().map(|l| l.quantity).collect::<Vec<_>>(), [10, 5]);
}

#[test]
fn unknown_models_have_no_receipt_and_bare_names_are_found() {
    let registry = builtin();
    let usage = usage(json!({"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}));
    assert!(registry.receipt("openai", "gpt-unknown", &usage).is_none());
    let litellm = Registry::from_litellm_json(
        r#"{"my-model": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}}"#,
        "custom",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(litellm.get("anything", "my-model").is_some());
}

#[test]
fn litellm_price_files_are_read_per_token_with_their_cache_and_reasoning_prices() {
    let text = r#"{
        "sample_spec": {"input_cost_per_token": 0.0, "litellm_provider": "one of https://docs.litellm.ai/docs/providers"},
        "claude-3-5-haiku-20241022": {
            "input_cost_per_token": 8e-07, "output_cost_per_token": 4e-06,
            "cache_read_input_token_cost": 8e-08, "cache_creation_input_token_cost": 1e-06,
            "litellm_provider": "anthropic", "max_input_tokens": 200000, "max_output_tokens": 8192,
            "supports_function_calling": true, "supports_vision": true, "supports_pdf_input": false
        },
        "groq/llama-3.3-70b-versatile": {
            "input_cost_per_token": 5.9e-07, "output_cost_per_token": 7.9e-07, "litellm_provider": "groq"
        },
        "dall-e-3": {"output_cost_per_image": 0.04, "litellm_provider": "openai"}
    }"#;
    let registry = Registry::from_litellm_json(text, "litellm-2025-11-01").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(registry.len(), 2, "sample_spec and image-only entries are skipped");
    let haiku = registry.get("anthropic", "claude-3-5-haiku-20241022").unwrap_or_else(|| panic!("keyed by provider"));
    assert_eq!(haiku.input, Usd(800_000));
    assert_eq!(haiku.cache_read, Some(Usd(80_000)));
    assert_eq!(haiku.cache_write, Some(Usd(1_000_000)));
    assert_eq!(haiku.max_output, Some(8192));
    assert_eq!(haiku.capabilities, ["function_calling", "vision"]);
    assert_eq!(registry.get("groq", "llama-3.3-70b-versatile").map(|m| m.output), Some(Usd(790_000)));

    let merged = builtin().merged(registry);
    assert!(merged.version().ends_with("+litellm-2025-11-01"));
    assert!(merged.get("openai", "gpt-4o").is_some() && merged.get("groq", "llama-3.3-70b-versatile").is_some());
}

#[test]
fn bad_registry_files_are_clear_configuration_errors() {
    let negative = r#"{"version": "x", "models": {"a/b": {"input": -1, "output": 1}}}"#;
    assert!(matches!(Registry::from_json(negative), Err(Error::Config(m)) if m.contains("a/b.input")));
    let typo = r#"{"version": "x", "models": {"a/b": {"input": 1, "outptu": 1}}}"#;
    assert!(matches!(Registry::from_json(typo), Err(Error::Config(m)) if m.contains("outptu")));
    assert!(matches!(Registry::from_litellm_json("[]", "x"), Err(Error::Config(_))));
}
