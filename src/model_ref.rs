//! Model strings: `provider/model` -> ([`ProviderKind`], model id), as LiteLLM spells them.
//!
//! The provider is the part before the first `/` when that names a provider
//! (`openrouter/anthropic/claude-sonnet-4` is OpenRouter's model `anthropic/claude-sonnet-4`).
//! A bare name is OpenAI's when it has one of OpenAI's prefixes (`gpt-`, `o1`, `o3`, `o4`,
//! `chatgpt-`, `text-embedding-`, ...), Anthropic's when it starts with `claude-`, else the
//! client's default provider, else an error.

use crate::error::{Error, Result};
use crate::provider::ProviderKind;

/// A model string split into provider and model id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelRef<'a> {
    /// Who serves it.
    pub provider: ProviderKind,
    /// The model id as that provider knows it.
    pub model: &'a str,
}

/// Bare model names that are OpenAI's: prefixes ending in `-`, or whole families (`o3`,
/// `o3-mini`).
const OPENAI_PREFIXES: &[&str] =
    &["gpt-", "chatgpt-", "text-embedding-", "omni-moderation-", "codex-", "davinci-", "babbage-"];
const OPENAI_FAMILIES: &[&str] = &["o1", "o3", "o4"];

impl<'a> ModelRef<'a> {
    /// Splits a model string. See the module docs for the rules.
    ///
    /// ```
    /// use switchyard::{ModelRef, ProviderKind};
    /// let r = ModelRef::parse("groq/llama-3.3-70b-versatile")?;
    /// assert_eq!((r.provider.id(), r.model), ("groq", "llama-3.3-70b-versatile"));
    /// assert_eq!(ModelRef::parse("gpt-4o-mini")?.provider, ProviderKind::OpenAi);
    /// assert!(ModelRef::parse("llama3").is_err());
    /// # Ok::<(), switchyard::Error>(())
    /// ```
    pub fn parse(model: &'a str) -> Result<Self> {
        Self::parse_with_default(model, None)
    }

    /// Splits a model string; a bare name that is not OpenAI's goes to `default`.
    pub fn parse_with_default(model: &'a str, default: Option<ProviderKind>) -> Result<Self> {
        let model = model.trim();
        if model.is_empty() {
            return Err(Error::invalid("`model` is empty", Some("model")));
        }
        if let Some((prefix, rest)) = model.split_once('/') {
            if let Some(provider) = ProviderKind::from_id(prefix) {
                if rest.is_empty() {
                    return Err(Error::invalid(
                        format!("model `{model}` names no model after `{prefix}/`"),
                        Some("model"),
                    ));
                }
                return Ok(Self { provider, model: rest });
            }
            if let Some(provider) = default {
                return Ok(Self { provider, model });
            }
            return Err(Error::invalid(
                format!(
                    "unknown provider `{prefix}` in model `{model}`; write the model as `provider/model` with one of: {}",
                    ProviderKind::known_ids()
                ),
                Some("model"),
            ));
        }
        if is_openai_model(model) {
            return Ok(Self { provider: ProviderKind::OpenAi, model });
        }
        if model.starts_with("claude-") {
            return Ok(Self { provider: ProviderKind::Anthropic, model });
        }
        if let Some(provider) = default {
            return Ok(Self { provider, model });
        }
        Err(Error::invalid(
            format!(
                "cannot tell which provider serves `{model}`; write it as `provider/model` (for example `ollama/{model}`) with one of: {}",
                ProviderKind::known_ids()
            ),
            Some("model"),
        ))
    }
}

fn is_openai_model(model: &str) -> bool {
    OPENAI_PREFIXES.iter().any(|p| model.starts_with(p))
        || OPENAI_FAMILIES
            .iter()
            .any(|f| model == *f || model.strip_prefix(f).is_some_and(|rest| rest.starts_with('-')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> (String, String) {
        match ModelRef::parse(s) {
            Ok(r) => (r.provider.id().to_string(), r.model.to_string()),
            Err(e) => ("error".into(), e.to_string()),
        }
    }

    #[test]
    fn provider_prefix_and_slashes_in_model_ids() {
        assert_eq!(parse("openai/gpt-4o"), ("openai".into(), "gpt-4o".into()));
        assert_eq!(parse("azure/my-deployment"), ("azure".into(), "my-deployment".into()));
        assert_eq!(
            parse("openrouter/anthropic/claude-sonnet-4"),
            ("openrouter".into(), "anthropic/claude-sonnet-4".into())
        );
        assert_eq!(
            parse("together_ai/meta-llama/Llama-3-70b"),
            ("together_ai".into(), "meta-llama/Llama-3-70b".into())
        );
    }

    #[test]
    fn bare_openai_names() {
        for m in ["gpt-4o", "o1", "o3-mini", "o4-mini", "chatgpt-4o-latest", "text-embedding-3-small"] {
            assert_eq!(parse(m).0, "openai", "{m}");
        }
        assert_eq!(parse("o100").0, "error");
        assert_eq!(parse("claude-sonnet-4-5"), ("anthropic".into(), "claude-sonnet-4-5".into()));
    }

    #[test]
    fn unknown_provider_lists_the_known_ones() {
        let (kind, message) = parse("meta-llama/Llama-3");
        assert_eq!(kind, "error");
        assert!(message.contains("unknown provider `meta-llama`") && message.contains("groq"), "{message}");
        assert!(parse("llama3").1.contains("ollama/llama3"));
        assert_eq!(parse("groq/").0, "error");
        assert_eq!(parse("  ").0, "error");
    }

    #[test]
    fn default_provider_takes_bare_names() -> Result<()> {
        let ollama = ProviderKind::from_id("ollama");
        let r = ModelRef::parse_with_default("llama3", ollama)?;
        assert_eq!((Some(r.provider), r.model), (ollama, "llama3"));
        let r = ModelRef::parse_with_default("meta-llama/Llama-3", ollama)?;
        assert_eq!(r.model, "meta-llama/Llama-3");
        Ok(())
    }
}
