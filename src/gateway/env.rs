//! What a config reads from the environment: LiteLLM's `os.environ/VAR` references, used by
//! the config's own keys and by guardrail settings alike.

use crate::error::{Error, Result};

/// Resolves LiteLLM's `os.environ/VAR` references; other values are returned as they are.
pub fn resolve_env(value: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String> {
    match value.strip_prefix("os.environ/") {
        Some(var) => env(var)
            .ok_or_else(|| Error::Config(format!("the config reads `{var}` from the environment, and it is not set"))),
        None => Ok(value.to_string()),
    }
}
