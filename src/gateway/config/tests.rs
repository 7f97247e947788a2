//! The config parser's unit tests.

use super::*;

const SAMPLE: &str = r#"
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: azure/prod-4o
      api_base: https://example.openai.azure.com
      api_key: os.environ/AZURE_API_KEY
      rpm: 600
      weight: 2
    model_info: { id: east, base_model: gpt-4o }
  - model_name: claude
    litellm_params: { model: anthropic/claude-sonnet-4-5-20250929, input_cost_per_token: 0.1 }
router_settings:
  routing_strategy: least-busy
  fallbacks: [{gpt-4o: [claude]}]
  redis_host: 127.0.0.1
  enable_pre_call_checks: true
litellm_settings:
  drop_params: true
  success_callback: ["langfuse"]
general_settings:
  master_key: sk-master
"#;

#[test]
fn a_litellm_config_reads_and_names_what_it_does_not_support() {
    let config = Config::parse(SAMPLE).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.model_list.len(), 2);
    assert_eq!(config.model_list[0].litellm_params.rpm, Some(600));
    assert_eq!(config.model_list[0].model_info.base_model.as_deref(), Some("gpt-4o"));
    assert_eq!(fallback_table(&config.router_settings.fallbacks), [("gpt-4o".to_string(), vec!["claude".to_string()])]);
    assert_eq!(config.redis_url().as_deref(), Some("redis://127.0.0.1:6379/0"));
    assert_eq!(
        config.unsupported_keys(),
        [
            "router_settings.enable_pre_call_checks",
            "litellm_settings.success_callback",
            "model_list[1].litellm_params.input_cost_per_token"
        ]
    );
}

#[test]
fn invalid_configs_name_the_field_and_the_line() {
    let err =
        Config::parse("model_list:\n  - model_name: a\n    litellm_params:\n      model: openai/x\n      rpm: lots\n")
            .err()
            .unwrap_or_else(|| panic!("invalid"));
    let message = err.to_string();
    assert!(message.contains("rpm") && message.contains("line 5"), "{message}");
    let err =
        Config::parse("model_list:\n  - litellm_params: {model: openai/x}\n").err().unwrap_or_else(|| panic!("x"));
    assert!(err.to_string().contains("model_name"), "{err}");
}

#[test]
fn environment_references_resolve_or_say_what_is_missing() {
    let env = |name: &str| (name == "SET").then(|| "value".to_string());
    assert_eq!(resolve_env("os.environ/SET", &env).ok().as_deref(), Some("value"));
    assert_eq!(resolve_env("literal", &env).ok().as_deref(), Some("literal"));
    let err = resolve_env("os.environ/UNSET", &env).err().unwrap_or_else(|| panic!("unset"));
    assert!(err.to_string().contains("`UNSET`"), "{err}");
}

#[test]
fn out_of_range_numbers_are_errors_naming_the_field() {
    for (yaml, field) in [
        ("router_settings: {cooldown_time: 1e300}", "router_settings.cooldown_time"),
        ("router_settings: {timeout: 1e300}", "router_settings.timeout"),
        ("router_settings: {timeout: 0}", "router_settings.timeout"),
        ("router_settings: {timeout: .nan}", "router_settings.timeout"),
        ("litellm_settings: {request_timeout: -1}", "litellm_settings.request_timeout"),
        ("litellm_settings: {cache: true, cache_params: {ttl: 1e300}}", "litellm_settings.cache_params.ttl"),
        ("general_settings: {max_request_size_mb: 17592186044416}", "general_settings.max_request_size_mb"),
        ("general_settings: {max_request_size_mb: 0}", "general_settings.max_request_size_mb"),
    ] {
        let err = Config::parse(yaml).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains(field), "{yaml}: {err}");
    }
    let fine =
        Config::parse("router_settings: {cooldown_time: 0, timeout: 30}\ngeneral_settings: {max_request_size_mb: 64}")
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(fine.cooldown(), Some(Duration::ZERO));
    assert_eq!(fine.timeout(), Some(Duration::from_secs(30)));
    assert_eq!(fine.max_body(), 64 << 20);
}
