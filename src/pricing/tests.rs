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

#[test]
fn only_models_known_not_to_reason_are_said_not_to() {
    assert!(Registry::known_not_to_reason("openai", "gpt-4o"));
    assert!(!Registry::known_not_to_reason("openai", "o3-mini"));
    assert!(!Registry::known_not_to_reason("openai", "a-model-nobody-priced"));
}

#[test]
fn claude_on_vertex_ai_is_priced_as_anthropics_own_model() {
    let registry = builtin();
    let own = registry.get("anthropic", "claude-sonnet-4-5-20250929").unwrap_or_else(|| panic!("priced"));
    assert_eq!(registry.get("vertex_ai", "claude-sonnet-4-5@20250929"), Some(own));
    assert_eq!(registry.get("vertex_ai", "claude-sonnet-4-5@20990101"), None);
    assert_eq!(registry.get("bedrock", "claude-sonnet-4-5@20250929"), None);
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

/// One row per provider: its native usage, through the adapter's own usage mapping, priced
/// against hand-computed figures (pico-dollars: $1 = 10^12).
#[test]
fn receipts_match_hand_computed_figures_for_every_provider() {
    use crate::provider::cohere::response::openai_usage as cohere_usage;
    use crate::provider::gemini::response::usage as gemini_usage;
    let gemini: crate::spec::gemini::UsageMetadata = serde_json::from_value(json!({
        "promptTokenCount": 1000, "cachedContentTokenCount": 400, "candidatesTokenCount": 200, "thoughtsTokenCount": 300
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    let vertex: crate::spec::gemini::UsageMetadata =
        serde_json::from_value(json!({"promptTokenCount": 2000, "candidatesTokenCount": 100}))
            .unwrap_or_else(|e| panic!("{e}"));
    let cohere: crate::spec::cohere::Usage = serde_json::from_value(json!({
        "billed_units": {"input_tokens": 80, "output_tokens": 40}, "tokens": {"input_tokens": 150, "output_tokens": 40}
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    /// provider, model, normalised usage, (item, quantity, cost) lines, total.
    type Row = (&'static str, &'static str, CompletionUsage, Vec<(&'static str, u64, u64)>, u64);
    let rows: Vec<Row> = vec![
        // Gemini counts cached tokens inside promptTokenCount and thoughts apart from candidates:
        // 600 x $0.30/M + 400 x $0.03/M + 200 x $2.50/M + 300 x $2.50/M.
        (
            "gemini",
            "gemini-2.5-flash",
            gemini_usage(&gemini),
            vec![
                ("prompt", 600, 180_000_000),
                ("cache_read", 400, 12_000_000),
                ("completion", 200, 500_000_000),
                ("reasoning", 300, 750_000_000),
            ],
            1_442_000_000,
        ),
        // 2000 x $1.25/M + 100 x $10/M.
        (
            "vertex_ai",
            "gemini-2.5-pro",
            gemini_usage(&vertex),
            vec![("prompt", 2000, 2_500_000_000), ("completion", 100, 1_000_000_000)],
            3_500_000_000,
        ),
        // Bedrock Converse reports cache reads and writes apart from inputTokens, as Anthropic:
        // 100 x $3/M + 1000 x $0.30/M + 200 x $3.75/M + 50 x $15/M.
        (
            "bedrock",
            "anthropic.claude-sonnet-4-5-20250929-v1:0",
            anthropic_usage(100, 50, Some(1000), Some(200)),
            vec![
                ("prompt", 100, 300_000_000),
                ("cache_read", 1000, 300_000_000),
                ("cache_write", 200, 750_000_000),
                ("completion", 50, 750_000_000),
            ],
            2_100_000_000,
        ),
        // Cohere bills billed_units (80 in, not the 150 its template made): 80 x $0.15/M + 40 x $0.60/M.
        (
            "cohere",
            "command-r-08-2024",
            cohere_usage(&cohere),
            vec![("prompt", 80, 12_000_000), ("completion", 40, 24_000_000)],
            36_000_000,
        ),
        // DeepSeek's cache hits come as prompt_cache_hit_tokens inside prompt_tokens:
        // 400 x $0.28/M + 600 x $0.028/M + 200 x $0.42/M + 100 x $0.42/M.
        (
            "deepseek",
            "deepseek-reasoner",
            usage(json!({
                "prompt_tokens": 1000, "completion_tokens": 300, "total_tokens": 1300,
                "prompt_cache_hit_tokens": 600, "prompt_cache_miss_tokens": 400,
                "completion_tokens_details": {"reasoning_tokens": 100}
            })),
            vec![
                ("prompt", 400, 112_000_000),
                ("cache_read", 600, 16_800_000),
                ("completion", 200, 84_000_000),
                ("reasoning", 100, 42_000_000),
            ],
            254_800_000,
        ),
        // Azure is priced as OpenAI: 100 x $2.50/M + 10 x $10/M.
        (
            "azure",
            "gpt-4o",
            usage(json!({"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110})),
            vec![("prompt", 100, 250_000_000), ("completion", 10, 100_000_000)],
            350_000_000,
        ),
        // 1000 x $0.59/M + 100 x $0.79/M.
        (
            "groq",
            "llama-3.3-70b-versatile",
            usage(json!({"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100})),
            vec![("prompt", 1000, 590_000_000), ("completion", 100, 79_000_000)],
            669_000_000,
        ),
        // Embeddings: 5000 x $0.02/M.
        (
            "openai",
            "text-embedding-3-small",
            usage(json!({"prompt_tokens": 5000, "completion_tokens": 0, "total_tokens": 5000})),
            vec![("prompt", 5000, 100_000_000)],
            100_000_000,
        ),
    ];
    let registry = builtin();
    for (provider, model, usage, lines, total) in rows {
        let receipt =
            registry.receipt(provider, model, &usage).unwrap_or_else(|| panic!("{provider}/{model} is priced"));
        assert_eq!(costs(&receipt), lines, "{provider}/{model}");
        assert_eq!(receipt.total, Usd(total), "{provider}/{model}");
    }
}

#[test]
fn price_files_load_in_either_format_and_name_themselves_in_errors() {
    let dir = std::env::temp_dir().join(format!("switchyard-prices-{:016x}", fastrand::u64(..)));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let ours = dir.join("ours.json");
    std::fs::write(&ours, r#"{"version": "team-2026-11", "models": {"openai/gpt-4o": {"input": 2.0, "output": 8.0}}}"#)
        .unwrap_or_else(|e| panic!("{e}"));
    let theirs = dir.join("litellm-prices.json");
    std::fs::write(&theirs, r#"{"my/model": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}}"#)
        .unwrap_or_else(|e| panic!("{e}"));
    let broken = dir.join("broken.json");
    std::fs::write(&broken, "{ not json").unwrap_or_else(|e| panic!("{e}"));

    let merged = builtin().merged(Registry::load(&ours).unwrap_or_else(|e| panic!("{e}")));
    assert_eq!(merged.get("openai", "gpt-4o").map(|m| m.input), Some(Usd(2_000_000)), "the file overrides");
    assert!(merged.get("openai", "gpt-4o-mini").is_some(), "and extends, keeping the rest");
    assert!(merged.version().ends_with("+team-2026-11"));
    let litellm = Registry::load(&theirs).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(litellm.version(), "litellm-prices");
    assert!(matches!(Registry::load(&broken), Err(Error::Config(m)) if m.contains("broken.json")));
    assert!(matches!(Registry::load(dir.join("missing.json")), Err(Error::Config(m)) if m.contains("missing.json")));
    let _ = std::fs::remove_dir_all(&dir);
}
