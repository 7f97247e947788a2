//! OpenAI-compatible vendors as data: each is a row in [`VENDORS`] (id, base URL, key
//! variables, quirks). The wire format is OpenAI's (see [`crate::provider::openai`]); a row's
//! [`Quirks`] say where a vendor departs from it. Adding a vendor is one row plus its cases.

use std::fmt;

use http::HeaderMap;
use secrecy::SecretString;
use serde_json::{Map, Value};

use crate::catalog::ProviderKind;
use crate::error::{Error, Result};
use crate::provider::openai::{OpenAiFormat, Operation};
use crate::provider::requests;

pub use crate::catalog::{CompatVendor, Quirks, VENDORS};

impl Quirks {
    /// Applies the quirks to an OpenAI request body.
    pub fn apply(&self, provider: ProviderKind, body: &mut Map<String, Value>, drop_params: bool) -> Result<()> {
        for &param in self.dropped {
            if body.remove(param).is_some() {
                tracing::debug!(%provider, param, "dropping a parameter the provider's config drops");
            }
        }
        for &param in self.unsupported {
            if body.contains_key(param) {
                if !drop_params {
                    return Err(Error::Unsupported { provider, feature: format!("the `{param}` parameter") });
                }
                tracing::debug!(%provider, param, "dropping a parameter the provider does not support");
                body.remove(param);
            }
        }
        if self.max_tokens_only
            && let Some(limit) = body.remove("max_completion_tokens")
        {
            body.entry("max_tokens").or_insert(limit);
        }
        if let Some(required) = self.tool_choice_required
            && body.get("tool_choice").and_then(Value::as_str) == Some("required")
        {
            body.insert("tool_choice".into(), Value::String(required.into()));
        }
        for &(from, to) in self.renames {
            if let Some(value) = body.remove(from) {
                body.insert(to.into(), value);
            }
        }
        Ok(())
    }
}

/// The adapter for an OpenAI-compatible vendor.
#[derive(Clone)]
pub struct OpenAiCompat {
    vendor: &'static CompatVendor,
    base_url: String,
    headers: HeaderMap,
}

impl fmt::Debug for OpenAiCompat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiCompat")
            .field("vendor", &self.vendor.id)
            .field("base_url", &self.base_url)
            .field("headers", &self.headers)
            .finish()
    }
}

impl OpenAiCompat {
    /// An adapter for `vendor`, at `base_url` (the vendor's default unless given).
    pub fn new(
        vendor: &'static CompatVendor,
        base_url: Option<&str>,
        api_key: Option<&SecretString>,
        extra_headers: HeaderMap,
    ) -> Result<Self> {
        let base = base_url.filter(|b| !b.is_empty()).unwrap_or(vendor.base_url).trim_end_matches('/');
        if base.is_empty() {
            return Err(Error::Config(format!(
                "{} has no default address: set {} or give a base_url",
                vendor.id,
                vendor.base_env()
            )));
        }
        if api_key.is_none() && vendor.key_required {
            return Err(Error::Config(format!(
                "no API key for {}: set {} or give one to the client",
                vendor.id,
                vendor.key_env.join(" or ")
            )));
        }
        let suffix = vendor.quirks.base_suffix;
        let base_url =
            if suffix.is_empty() || base.ends_with(suffix) { base.to_string() } else { format!("{base}{suffix}") };
        let mut headers = extra_headers;
        requests::bearer(&mut headers, api_key)?;
        Ok(Self { vendor, base_url, headers })
    }

    /// The API base requests go to.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }
}

impl OpenAiFormat for OpenAiCompat {
    fn provider(&self) -> ProviderKind {
        ProviderKind::Compat(self.vendor)
    }

    fn url(&self, operation: Operation, _model: &str) -> String {
        requests::join_url(&self.base_url, operation.path())
    }

    fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    fn quirks(&self) -> &Quirks {
        &self.vendor.quirks
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unsupported_parameter_fails_unless_dropped() {
        let groq = VENDORS.iter().find(|v| v.id == "groq").unwrap_or_else(|| panic!("no vendor row `groq`"));
        let Value::Object(body) = json!({"logit_bias": {"1": 2}, "model": "m"}) else { unreachable!() };
        let err = groq.quirks.apply(ProviderKind::Compat(groq), &mut body.clone(), false);
        assert!(
            matches!(err, Err(Error::Unsupported { ref feature, .. }) if feature.contains("logit_bias")),
            "{err:?}"
        );
        let mut dropped = body;
        assert!(groq.quirks.apply(ProviderKind::Compat(groq), &mut dropped, true).is_ok());
        assert_eq!(Value::Object(dropped), json!({"model": "m"}));
    }

    #[test]
    fn ollama_base_without_v1_gets_it() -> Result<()> {
        let ollama = VENDORS.iter().find(|v| v.id == "ollama").unwrap_or_else(|| panic!("no vendor row `ollama`"));
        let adapter = OpenAiCompat::new(ollama, Some("http://localhost:11434"), None, HeaderMap::new())?;
        assert_eq!(adapter.base_url(), "http://localhost:11434/v1");
        Ok(())
    }

    #[test]
    fn table_rows_are_unique_and_complete() {
        let mut ids: Vec<_> = VENDORS.iter().map(|v| v.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), VENDORS.len(), "duplicate vendor id");
        assert!(VENDORS.len() >= 15);
        for v in VENDORS {
            assert!(v.base_url.is_empty() || v.base_url.starts_with("http"), "{}", v.id);
            assert!(!v.key_required || !v.key_env.is_empty(), "{} requires a key but names no variable", v.id);
            assert!(v.docs.starts_with("https://"), "{}", v.id);
        }
    }
}
