//! Mistral AI (`mistral/...`): chat completions, streaming, embeddings and models on
//! OpenAI's wire format, with Mistral's own spellings ([`QUIRKS`]).
//!
//! Upstream docs: <https://docs.mistral.ai/api/>. Our description is OpenAI's; `spec drift
//! --provider mistral` compares the schemas it shares with Mistral's own description
//! (`openapi/drift/mistral.map.yaml`), so a change on Mistral's side shows up there.

use http::HeaderMap;
use secrecy::SecretString;

use crate::catalog::ProviderKind;
use crate::error::{Error, Result};
use crate::provider::Quirks;
use crate::provider::openai::{OpenAiFormat, Operation};
use crate::provider::requests;

/// Mistral's API base.
pub const DEFAULT_BASE_URL: &str = crate::catalog::MISTRAL_BASE_URL;

/// Where Mistral departs from OpenAI's request format (its chat-completion request schema):
/// the seed is `random_seed`, `tool_choice: "required"` is spelled `any`, and it takes
/// `max_tokens` only.
pub const QUIRKS: Quirks = Quirks {
    renames: &[("seed", "random_seed")],
    tool_choice_required: Some("any"),
    max_tokens_only: true,
    ..Quirks::NONE
};

/// The Mistral adapter and its settings.
#[derive(Clone, Debug)]
pub struct Mistral {
    base_url: String,
    headers: HeaderMap,
}

impl Mistral {
    /// An adapter for `base_url` (Mistral's unless given), with its key and extra headers.
    pub fn new(base_url: Option<&str>, api_key: Option<&SecretString>, extra_headers: HeaderMap) -> Result<Self> {
        let api_key = api_key.ok_or_else(|| {
            Error::Config("no API key for mistral: set MISTRAL_API_KEY or give one to the client".into())
        })?;
        let mut headers = extra_headers;
        requests::bearer(&mut headers, Some(api_key))?;
        Ok(Self { base_url: base_url.unwrap_or(DEFAULT_BASE_URL).trim_end_matches('/').to_string(), headers })
    }

    /// The API base requests go to.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }
}

impl OpenAiFormat for Mistral {
    fn provider(&self) -> ProviderKind {
        ProviderKind::Mistral
    }

    fn url(&self, operation: Operation, _model: &str) -> String {
        requests::join_url(&self.base_url, operation.path())
    }

    fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    fn quirks(&self) -> &Quirks {
        &QUIRKS
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    #[test]
    fn quirks_rename_and_respell() -> Result<()> {
        let Value::Object(mut body) = json!({"seed": 1, "tool_choice": "required", "max_completion_tokens": 9}) else {
            unreachable!()
        };
        QUIRKS.apply(ProviderKind::Mistral, &mut body, false)?;
        assert_eq!(Value::Object(body), json!({"random_seed": 1, "tool_choice": "any", "max_tokens": 9}));
        Ok(())
    }

    #[test]
    fn a_key_is_required() {
        let err = Mistral::new(None, None, HeaderMap::new()).err();
        assert!(matches!(&err, Some(Error::Config(m)) if m.contains("MISTRAL_API_KEY")), "{err:?}");
    }
}
