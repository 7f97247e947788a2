//! The webhook guardrail: the messages (and, after the call, the answer) are posted to an
//! external service, whose verdict is acted on. A timeout, an unreachable service or a
//! verdict that is not one of the documented shapes is an error, and the guardrail's policy
//! (`on_error: allow`, fail open, or `block`, fail closed) decides.
//!
//! ```json
//! POST <api_base>
//! {"guardrail": "safety", "mode": "pre_call", "model": "gpt-4o", "key_id": "key_...",
//!  "messages": [{"role": "user", "content": "..."}], "response": null}
//!
//! {"action": "allow"}
//! {"action": "block", "reason": "self-harm"}
//! {"action": "mask", "messages": [...]}          (pre_call: the messages to send instead)
//! {"action": "mask", "content": "..."}           (post_call: the answer's text instead)
//! ```

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};

/// A configured webhook.
#[derive(Debug)]
pub struct Webhook {
    url: String,
    headers: Vec<(String, String)>,
    timeout: Duration,
    /// What to do when the service cannot give a verdict: true blocks (fail closed).
    pub fail_closed: bool,
    http: reqwest::Client,
}

/// The service's verdict.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Let it through.
    Allow,
    /// Refuse it, for this reason (shown to no one but the logs).
    Block(Option<String>),
    /// Replace the messages (before the call) or the answer's text (after it).
    Mask { messages: Option<Vec<Value>>, content: Option<String> },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    action: String,
    reason: Option<String>,
    messages: Option<Vec<Value>>,
    content: Option<String>,
}

impl Webhook {
    /// A webhook posting to `url` with these headers, waiting at most `timeout`.
    pub fn new(url: &str, headers: Vec<(String, String)>, timeout: Duration, fail_closed: bool) -> Result<Self> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Error::Config(format!("webhook api_base `{url}` must be an http(s) URL")));
        }
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(crate::transport::tls_config()?)
            .timeout(timeout)
            .build()
            .map_err(|e| Error::Config(format!("cannot build the webhook's HTTP client: {e}")))?;
        Ok(Self { url: url.to_string(), headers, timeout, fail_closed, http })
    }

    /// Asks the service; `Err` says why no verdict came (for the logs and the policy).
    pub async fn ask(&self, payload: &Value) -> std::result::Result<Verdict, String> {
        let mut request = self.http.post(&self.url).json(payload);
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return Err(format!("no verdict within {:?}", self.timeout)),
            Err(e) => return Err(format!("cannot reach the service: {e}")),
        };
        let status = response.status();
        let body = response.bytes().await.map_err(|e| format!("the verdict was cut off: {e}"))?;
        if !status.is_success() {
            return Err(format!("the service answered {status}"));
        }
        let wire: Wire = serde_json::from_slice(&body).map_err(|e| format!("the verdict is malformed: {e}"))?;
        match wire.action.as_str() {
            "allow" => Ok(Verdict::Allow),
            "block" => Ok(Verdict::Block(wire.reason)),
            "mask" if wire.messages.is_some() || wire.content.is_some() => {
                Ok(Verdict::Mask { messages: wire.messages, content: wire.content })
            }
            "mask" => Err("the verdict is malformed: `mask` needs `messages` or `content`".into()),
            other => Err(format!("the verdict is malformed: unknown action `{other}` (allow, block or mask)")),
        }
    }
}
