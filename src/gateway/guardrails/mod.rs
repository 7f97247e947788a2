//! Guardrails: checks between authentication and routing (`pre_call`) and on the answer
//! (`post_call`; for streams, as the stream passes, `during_call`), declared in the config in
//! LiteLLM's shape:
//!
//! ```yaml
//! guardrails:
//!   - guardrail_name: pii
//!     litellm_params: {guardrail: pii, mode: pre_call, action: mask, default_on: true}
//!   - guardrail_name: no-secrets-out
//!     litellm_params: {guardrail: pii, mode: post_call, entities: [api_key], action: block}
//!   - guardrail_name: codenames
//!     litellm_params: {guardrail: keywords, mode: [pre_call, post_call], keywords: ["Project Zeus"], patterns: ['\bticket-\d{4}\b'], action: mask}
//!   - guardrail_name: injection
//!     litellm_params: {guardrail: prompt_injection, mode: pre_call, action: block, default_on: true}
//!   - guardrail_name: limits
//!     litellm_params: {guardrail: limits, max_input_tokens: 8000, max_messages: 50, denied_tools: [shell]}
//!   - guardrail_name: safety
//!     litellm_params: {guardrail: webhook, mode: pre_call, api_base: "https://safety.internal/check", timeout_ms: 500, on_error: block}
//! ```
//!
//! A guardrail runs on a request when it is `default_on`, when the key names it, or when the
//! request asks for it (`"guardrails": [...]`, or `metadata.guardrails: "a,b"`) and its key
//! may choose; a key (or a request that may choose) can also turn a default one off. Actions:
//! `block` refuses (400, type `guardrail_violation`, naming the guardrail and what it found,
//! never the text; blocking and logging guardrails run before masking ones, so they see the
//! text unmasked), `mask`
//! replaces what it found (`[EMAIL_1]`; the PII placeholders a
//! pre-call mask puts in a prompt are turned back into the original values where the model
//! echoes them), `log` lets it through and records it. Every decision, with the time it took,
//! goes to the `x-switchyard-guardrails` header, the spend log and the metrics.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ApiFailure;
use crate::error::{Error, ErrorKind, Result};
use crate::{ChatMessage, ChatRequest};

pub mod detect;
mod session;
pub mod stream;
pub mod webhook;

use session::found;
pub(crate) use session::{Masking, mask};
pub use session::{Session, violation};

use detect::{Detector, Finding};
use webhook::{Verdict, Webhook};

/// One `guardrails:` entry, as LiteLLM writes it.
#[derive(Clone, Debug, Deserialize)]
pub struct GuardrailEntry {
    /// The name requests, keys and reports use.
    pub guardrail_name: String,
    /// What it is and how it acts.
    pub litellm_params: GuardrailParams,
    #[serde(flatten)]
    pub(crate) unknown: BTreeMap<String, serde_norway::Value>,
}

/// A mode, or a list of them.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Modes {
    /// `mode: pre_call`.
    One(String),
    /// `mode: [pre_call, post_call]`.
    Many(Vec<String>),
}

/// A guardrail's settings.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct GuardrailParams {
    /// The kind: `pii`, `keywords`, `prompt_injection`, `limits` or `webhook`.
    pub guardrail: String,
    /// `pre_call`, `post_call` or `during_call` (streams; the same as `post_call` here), or a
    /// list. Default `pre_call`.
    pub mode: Option<Modes>,
    /// Runs on every request unless turned off.
    #[serde(default)]
    pub default_on: bool,
    /// `block`, `mask` or `log` (default: `mask` for pii and keywords, `block` otherwise).
    pub action: Option<String>,
    /// pii: which entities (email, phone, credit_card, iban, ip_address, api_key); default all.
    #[serde(default)]
    pub entities: Vec<String>,
    /// keywords: whole words or phrases.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// keywords: regular expressions.
    #[serde(default)]
    pub patterns: Vec<String>,
    /// Which messages a pre-call check reads (default: every role; `prompt_injection`: user
    /// and tool messages, where untrusted text comes from).
    pub roles: Option<Vec<String>>,
    /// limits: the most input tokens (counted with `o200k_base`).
    pub max_input_tokens: Option<u64>,
    /// limits: the most messages.
    pub max_messages: Option<usize>,
    /// limits: the only tools a request may declare.
    #[serde(default)]
    pub allowed_tools: Vec<String>,
    /// limits: tools a request may not declare.
    #[serde(default)]
    pub denied_tools: Vec<String>,
    /// webhook: where to post.
    pub api_base: Option<String>,
    /// webhook: a bearer token (`os.environ/VAR` allowed).
    pub api_key: Option<String>,
    /// webhook: extra headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// webhook: how long to wait for a verdict (default 1000).
    pub timeout_ms: Option<u64>,
    /// webhook: `allow` (fail open, the default) or `block` (fail closed) when no verdict comes.
    pub on_error: Option<String>,
    #[serde(flatten)]
    pub(crate) unknown: BTreeMap<String, serde_norway::Value>,
}

/// What a guardrail does with what it finds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Refuse the request (or withhold the answer).
    Block,
    /// Replace what was found.
    Mask,
    /// Let it through; record it.
    Log,
}

#[derive(Debug)]
enum Check {
    /// pii, keywords, prompt_injection.
    Patterns(Detector),
    Limits {
        max_input_tokens: Option<u64>,
        max_messages: Option<usize>,
        allowed: Vec<String>,
        denied: Vec<String>,
    },
    Webhook(Webhook),
}

/// A compiled guardrail.
#[derive(Debug)]
pub struct Guardrail {
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: &'static str,
    /// Its action.
    pub action: Action,
    /// Runs before the call.
    pub pre: bool,
    /// Runs on the answer (and on streams as they pass).
    pub post: bool,
    /// Runs unless turned off.
    pub default_on: bool,
    roles: Option<Vec<String>>,
    check: Check,
}

impl Guardrail {
    fn compile(entry: &GuardrailEntry, env: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        let p = &entry.litellm_params;
        let name = entry.guardrail_name.trim().to_string();
        let at = |what: &str| format!("guardrails `{name}`: {what}");
        if name.is_empty() {
            return Err(Error::Config("guardrails: a guardrail_name is empty".into()));
        }
        let modes: Vec<String> = match &p.mode {
            None => vec!["pre_call".into()],
            Some(Modes::One(m)) => vec![m.clone()],
            Some(Modes::Many(ms)) => ms.clone(),
        };
        let (mut pre, mut post) = (false, false);
        for mode in &modes {
            match mode.as_str() {
                "pre_call" => pre = true,
                "post_call" | "during_call" => post = true,
                other => {
                    return Err(Error::Config(at(&format!(
                        "mode `{other}` is not pre_call, post_call or during_call"
                    ))));
                }
            }
        }
        let (kind, check): (&'static str, Check) = match p.guardrail.as_str() {
            "pii" => {
                ("pii", Check::Patterns(Detector::pii(&p.entities).map_err(|e| Error::Config(at(&e.to_string())))?))
            }
            "keywords" => (
                "keywords",
                Check::Patterns(
                    Detector::lists(&p.keywords, &p.patterns).map_err(|e| Error::Config(at(&e.to_string())))?,
                ),
            ),
            "prompt_injection" => ("prompt_injection", Check::Patterns(Detector::injection()?)),
            "limits" => ("limits", limits_check(p, post, &at)?),
            "webhook" => ("webhook", webhook_check(p, env, &at)?),
            other => {
                return Err(Error::Config(at(&format!(
                    "kind `{other}` is not one of pii, keywords, prompt_injection, limits, webhook"
                ))));
            }
        };
        let default_action = if matches!(kind, "pii" | "keywords") { "mask" } else { "block" };
        let action = match p.action.as_deref().unwrap_or(default_action) {
            "block" => Action::Block,
            "mask" if matches!(kind, "pii" | "keywords" | "webhook") => Action::Mask,
            "mask" => return Err(Error::Config(at(&format!("a {kind} guardrail blocks or logs; it cannot mask")))),
            "log" => Action::Log,
            other => return Err(Error::Config(at(&format!("action `{other}` is not block, mask or log")))),
        };
        let roles =
            p.roles.clone().or_else(|| (kind == "prompt_injection").then(|| vec!["user".into(), "tool".into()]));
        Ok(Self { name, kind, action, pre, post, default_on: p.default_on, roles, check })
    }

    fn reads(&self, message: &ChatMessage) -> bool {
        self.roles.as_ref().is_none_or(|roles| roles.iter().any(|r| r == message.role()))
    }
}

/// Every configured guardrail, compiled once at start-up.
#[derive(Debug, Default)]
pub struct Guardrails {
    list: Vec<Arc<Guardrail>>,
}

/// A key's guardrail settings (stored with the key).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyGuardrails {
    /// Guardrails always on for the key, beside the default ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on: Vec<String>,
    /// Default guardrails turned off for the key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub off: Vec<String>,
    /// Whether the key's requests may choose guardrails (`guardrails`, `disable_guardrails`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub choose: bool,
}

/// What a request asks for.
#[derive(Debug, Default)]
pub struct Requested {
    /// Guardrails to run besides those on.
    pub on: Vec<String>,
    /// Guardrails on by default to skip.
    pub off: Vec<String>,
}

impl Requested {
    /// Takes the request's `guardrails` and `disable_guardrails` (lists of names) and
    /// `metadata.guardrails` (comma-separated), which are not sent upstream.
    pub fn take(request: &mut ChatRequest) -> std::result::Result<Self, ApiFailure> {
        let list = |value: Option<Value>, field: &str| -> std::result::Result<Vec<String>, ApiFailure> {
            match value {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(items)) => items
                    .into_iter()
                    .map(|v| match v {
                        Value::String(s) => Ok(s),
                        _ => Err(ApiFailure::bad_request(format!("`{field}` must be a list of guardrail names"))),
                    })
                    .collect(),
                Some(_) => Err(ApiFailure::bad_request(format!("`{field}` must be a list of guardrail names"))),
            }
        };
        let mut on = list(request.extra.remove("guardrails"), "guardrails")?;
        let off = list(request.extra.remove("disable_guardrails"), "disable_guardrails")?;
        if let Some(metadata) = request.metadata.as_mut()
            && let Some(names) = metadata.remove("guardrails")
        {
            on.extend(names.split(',').map(str::trim).filter(|n| !n.is_empty()).map(str::to_string));
            // Metadata that held only this is not sent on (providers that take no metadata
            // would refuse an empty one).
            if metadata.is_empty() {
                request.metadata = None;
            }
        }
        Ok(Self { on, off })
    }

    fn is_empty(&self) -> bool {
        self.on.is_empty() && self.off.is_empty()
    }
}

impl Guardrails {
    /// Compiles the config's guardrails (their patterns once, here).
    pub fn compile(entries: &[GuardrailEntry], env: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        let mut list = Vec::new();
        for entry in entries {
            let guardrail = Guardrail::compile(entry, env)?;
            if list.iter().any(|g: &Arc<Guardrail>| g.name == guardrail.name) {
                return Err(Error::Config(format!("guardrails `{}` is declared twice", guardrail.name)));
            }
            list.push(Arc::new(guardrail));
        }
        Ok(Self { list })
    }

    /// Whether none is configured.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The names configured.
    pub fn names(&self) -> Vec<&str> {
        self.list.iter().map(|g| g.name.as_str()).collect()
    }

    /// Checks a key's settings name configured guardrails.
    pub fn check_key(&self, settings: &KeyGuardrails) -> std::result::Result<(), ApiFailure> {
        for name in settings.on.iter().chain(&settings.off) {
            if !self.list.iter().any(|g| &g.name == name) {
                return Err(ApiFailure::bad_request(format!(
                    "`guardrails` names `{}`, which this gateway does not configure (it has: {})",
                    crate::bounds::shown(name),
                    self.names().join(", ")
                )));
            }
        }
        Ok(())
    }

    /// The guardrails that run on one request: the default ones and the key's, what the
    /// request asks for when it may choose, less what is turned off.
    pub fn session(
        &self,
        key: Option<&KeyGuardrails>,
        master: bool,
        requested: &Requested,
        records: Records,
    ) -> std::result::Result<Session, ApiFailure> {
        if !requested.is_empty() {
            if self.list.is_empty() {
                return Err(ApiFailure::bad_request("this gateway configures no guardrails to choose from"));
            }
            if !master && !key.is_some_and(|k| k.choose) {
                return Err(ApiFailure::new(
                    ErrorKind::PermissionDenied,
                    "this key may not choose guardrails (its `guardrails.choose` is off)",
                )
                .code("guardrail_choice_not_allowed"));
            }
            for name in requested.on.iter().chain(&requested.off) {
                if !self.list.iter().any(|g| &g.name == name) {
                    return Err(ApiFailure::bad_request(format!(
                        "the request names the guardrail `{}`, which this gateway does not configure (it has: {})",
                        crate::bounds::shown(name),
                        self.names().join(", ")
                    )));
                }
            }
        }
        let mut active: Vec<Arc<Guardrail>> = self
            .list
            .iter()
            .filter(|g| {
                let on = g.default_on || key.is_some_and(|k| k.on.contains(&g.name)) || requested.on.contains(&g.name);
                let off = key.is_some_and(|k| k.off.contains(&g.name)) || requested.off.contains(&g.name);
                on && (!off || requested.on.contains(&g.name))
            })
            .cloned()
            .collect();
        // Blocking guardrails first and then those that only log, so that both see the text
        // before a mask changes it; masking ones last (the config's order within each).
        active.sort_by_key(|g| match g.action {
            Action::Block => 0,
            Action::Log => 1,
            Action::Mask => 2,
        });
        Ok(Session { active, placeholders: Placeholders::default(), records })
    }
}

/// One decision, for the header, the spend log and the metrics.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Record {
    /// The guardrail.
    pub guardrail: String,
    /// `pre_call`, `post_call` or `during_call`.
    pub mode: &'static str,
    /// `passed`, `masked`, `blocked`, `logged` or `error` (no verdict; its policy decided).
    pub decision: &'static str,
    /// How many things it found.
    pub findings: usize,
    /// The time it took, microseconds.
    pub latency_us: u64,
}

/// The decisions of one call, shared with the spend hook.
pub type Records = Arc<Mutex<Vec<Record>>>;

/// Placeholders a pre-call mask put in the prompt, to turn back into the originals.
#[derive(Debug, Default)]
pub(crate) struct Placeholders {
    /// (placeholder, original), in the order made.
    pub(crate) pairs: Vec<(String, String)>,
    counters: BTreeMap<&'static str, usize>,
}

impl Placeholders {
    fn for_value(&mut self, label: &'static str, original: &str) -> String {
        if let Some((placeholder, _)) =
            self.pairs.iter().find(|(p, o)| o == original && p.starts_with(&format!("[{label}_")))
        {
            return placeholder.clone();
        }
        let n = self.counters.entry(label).or_insert(0);
        *n += 1;
        let placeholder = format!("[{label}_{n}]");
        self.pairs.push((placeholder.clone(), original.to_string()));
        placeholder
    }

    /// `text` with every placeholder turned back into its original.
    pub(crate) fn restore(&self, text: &str) -> Option<String> {
        if self.pairs.is_empty() || !text.contains('[') {
            return None;
        }
        let mut out = text.to_string();
        let mut changed = false;
        for (placeholder, original) in &self.pairs {
            if out.contains(placeholder.as_str()) {
                out = out.replace(placeholder.as_str(), original);
                changed = true;
            }
        }
        changed.then_some(out)
    }
}

/// A limits guardrail's check, which needs at least one limit and reads only requests.
fn limits_check(p: &GuardrailParams, post: bool, at: &dyn Fn(&str) -> String) -> Result<Check> {
    if post {
        return Err(Error::Config(at("limits check requests; its mode is pre_call")));
    }
    if p.max_input_tokens.is_none()
        && p.max_messages.is_none()
        && p.allowed_tools.is_empty()
        && p.denied_tools.is_empty()
    {
        return Err(Error::Config(at("limits needs max_input_tokens, max_messages, allowed_tools or denied_tools")));
    }
    Ok(Check::Limits {
        max_input_tokens: p.max_input_tokens,
        max_messages: p.max_messages,
        allowed: p.allowed_tools.clone(),
        denied: p.denied_tools.clone(),
    })
}

/// A webhook guardrail's check: its URL, headers and key from the config (with
/// `os.environ/` references resolved), its timeout and its policy when it gives no verdict.
fn webhook_check(
    p: &GuardrailParams,
    env: &dyn Fn(&str) -> Option<String>,
    at: &dyn Fn(&str) -> String,
) -> Result<Check> {
    let url = p.api_base.as_deref().ok_or_else(|| Error::Config(at("webhook needs api_base")))?;
    let url = super::env::resolve_env(url, env)?;
    let mut headers: Vec<(String, String)> = Vec::new();
    for (k, v) in &p.headers {
        headers.push((k.clone(), super::env::resolve_env(v, env)?));
    }
    if let Some(key) = &p.api_key {
        headers.push(("authorization".into(), format!("Bearer {}", super::env::resolve_env(key, env)?)));
    }
    let fail_closed = match p.on_error.as_deref().unwrap_or("allow") {
        "allow" => false,
        "block" => true,
        other => return Err(Error::Config(at(&format!("on_error `{other}` is not allow or block")))),
    };
    let timeout = Duration::from_millis(p.timeout_ms.unwrap_or(1000).max(1));
    Ok(Check::Webhook(
        Webhook::new(&url, headers, timeout, fail_closed).map_err(|e| Error::Config(at(&e.to_string())))?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(yaml: &str) -> GuardrailEntry {
        serde_norway::from_str(yaml).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn configs_compile_or_say_what_is_wrong() {
        let none = |_: &str| None;
        assert!(Guardrails::compile(&[entry("guardrail_name: p\nlitellm_params: {guardrail: pii}")], &none).is_ok());
        for (yaml, needle) in [
            ("guardrail_name: p\nlitellm_params: {guardrail: nope}", "kind `nope`"),
            ("guardrail_name: p\nlitellm_params: {guardrail: pii, mode: sometimes}", "mode `sometimes`"),
            ("guardrail_name: p\nlitellm_params: {guardrail: pii, action: shred}", "action `shred`"),
            ("guardrail_name: p\nlitellm_params: {guardrail: prompt_injection, action: mask}", "cannot mask"),
            ("guardrail_name: p\nlitellm_params: {guardrail: limits}", "limits needs"),
            ("guardrail_name: p\nlitellm_params: {guardrail: limits, max_messages: 3, mode: post_call}", "pre_call"),
            ("guardrail_name: p\nlitellm_params: {guardrail: webhook}", "api_base"),
            ("guardrail_name: p\nlitellm_params: {guardrail: keywords}", "keywords"),
            ("guardrail_name: p\nlitellm_params: {guardrail: keywords, patterns: ['(']}", "pattern"),
        ] {
            let err = Guardrails::compile(&[entry(yaml)], &none).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains(needle), "{yaml}: {err}");
        }
        let twice = [
            entry("guardrail_name: p\nlitellm_params: {guardrail: pii}"),
            entry("guardrail_name: p\nlitellm_params: {guardrail: pii}"),
        ];
        assert!(Guardrails::compile(&twice, &none).is_err());
    }

    #[test]
    fn placeholders_are_stable_per_value_and_restore() {
        let mut p = Placeholders::default();
        assert_eq!(p.for_value("EMAIL", "a@b.io"), "[EMAIL_1]");
        assert_eq!(p.for_value("EMAIL", "c@d.io"), "[EMAIL_2]");
        assert_eq!(p.for_value("EMAIL", "a@b.io"), "[EMAIL_1]");
        assert_eq!(p.restore("write to [EMAIL_2] and [EMAIL_1]").as_deref(), Some("write to c@d.io and a@b.io"));
        assert_eq!(p.restore("nothing here"), None);
    }
}
