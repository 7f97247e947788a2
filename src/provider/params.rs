//! The OpenAI chat parameters a native provider may have no equivalent for, as one vocabulary
//! ([`PARAMS`]), each with what it means for a request to ask for it; each adapter declares the
//! ones it cannot express as a table (`UNSUPPORTED_PARAMS` in its module), which
//! `tests/conformance.rs` checks against the refusals its cases record in
//! `conformance/capabilities.toml`.

use crate::ChatRequest;
use crate::error::{Error, Result};
use crate::provider::ProviderKind;
use crate::spec::openai::ServiceTier;

/// Every parameter an adapter's table may name.
pub const PARAMS: &[&str] = &[
    "n",
    "logprobs",
    "top_logprobs",
    "logit_bias",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "audio",
    "prediction",
    "prompt_cache_key",
    "verbosity",
    "web_search_options",
    "service_tier",
    "metadata",
    "store",
    "user",
    "safety_identifier",
    "parallel_tool_calls",
    "functions",
    "function_call",
];

/// Whether `request` asks for `param` in a way that matters: more than one choice, log
/// probabilities on, audio (by `audio` or the `audio` modality), a tier other than auto or
/// the default, metadata that is not empty, storing on, parallel tool calls off; any value of
/// the others. A name outside [`PARAMS`] is never asked for.
pub fn asks_for(request: &ChatRequest, param: &str) -> bool {
    let r = request;
    match param {
        "n" => r.n.is_some_and(|n| n > 1),
        "logprobs" => r.logprobs == Some(true),
        "top_logprobs" => r.top_logprobs.is_some(),
        "logit_bias" => r.logit_bias.is_some(),
        "presence_penalty" => r.presence_penalty.is_some(),
        "frequency_penalty" => r.frequency_penalty.is_some(),
        "seed" => r.seed.is_some(),
        "audio" => r.audio.is_some() || r.modalities.as_ref().is_some_and(|m| m.iter().any(|x| x.as_str() == "audio")),
        "prediction" => r.prediction.is_some(),
        "prompt_cache_key" => r.prompt_cache_key.is_some(),
        "verbosity" => r.verbosity.is_some(),
        "web_search_options" => r.web_search_options.is_some(),
        "service_tier" => {
            r.service_tier.as_ref().is_some_and(|t| !matches!(t, ServiceTier::Auto | ServiceTier::Default))
        }
        "metadata" => r.metadata.as_ref().is_some_and(|m| !m.is_empty()),
        "store" => r.store == Some(true),
        "user" => r.user.is_some(),
        "safety_identifier" => r.safety_identifier.is_some(),
        "parallel_tool_calls" => r.parallel_tool_calls == Some(false),
        "functions" => r.functions.is_some(),
        "function_call" => r.function_call.is_some(),
        _ => false,
    }
}

/// Refuses the first parameter of `unsupported` that `request` asks for, with
/// `Error::Unsupported` naming it; with `drop_params`, drops them all instead (the adapter
/// never writes them) and says so in a debug log.
pub(crate) fn refuse_or_drop(
    request: &ChatRequest,
    unsupported: &[&str],
    drop_params: bool,
    provider: ProviderKind,
) -> Result<()> {
    for &name in unsupported.iter().filter(|p| asks_for(request, p)) {
        if !drop_params {
            return Err(Error::Unsupported { provider, feature: format!("the `{name}` parameter") });
        }
        tracing::debug!(param = name, %provider, "dropping a parameter the provider does not support");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_adapters_table_names_only_known_parameters() {
        let tables = [
            crate::provider::anthropic::UNSUPPORTED_PARAMS,
            crate::provider::gemini::UNSUPPORTED_PARAMS,
            crate::provider::bedrock::UNSUPPORTED_PARAMS,
            crate::provider::cohere::UNSUPPORTED_PARAMS,
        ];
        for param in tables.iter().flat_map(|t| t.iter()) {
            assert!(PARAMS.contains(param), "`{param}` is not in the vocabulary");
        }
    }

    #[test]
    fn each_parameter_is_asked_for_only_when_it_matters() {
        let request = |body: serde_json::Value| -> ChatRequest {
            let mut full = serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
            if let (Some(full), Some(body)) = (full.as_object_mut(), body.as_object()) {
                full.extend(body.clone());
            }
            serde_json::from_value(full).unwrap_or_else(|e| panic!("{e}"))
        };
        let plain = request(serde_json::json!({}));
        assert!(PARAMS.iter().all(|p| !asks_for(&plain, p)));
        for (quiet, asks, param) in [
            (serde_json::json!({"n": 1}), serde_json::json!({"n": 2}), "n"),
            (serde_json::json!({"logprobs": false}), serde_json::json!({"logprobs": true}), "logprobs"),
            (serde_json::json!({"service_tier": "auto"}), serde_json::json!({"service_tier": "flex"}), "service_tier"),
            (serde_json::json!({"metadata": {}}), serde_json::json!({"metadata": {"a": "b"}}), "metadata"),
            (serde_json::json!({"store": false}), serde_json::json!({"store": true}), "store"),
            (
                serde_json::json!({"parallel_tool_calls": true}),
                serde_json::json!({"parallel_tool_calls": false}),
                "parallel_tool_calls",
            ),
            (
                serde_json::json!({"modalities": ["text"]}),
                serde_json::json!({"modalities": ["text", "audio"]}),
                "audio",
            ),
        ] {
            assert!(!asks_for(&request(quiet), param), "{param}");
            assert!(asks_for(&request(asks), param), "{param}");
        }
    }
}
