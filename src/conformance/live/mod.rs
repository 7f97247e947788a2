//! The recorded scenarios run live against an endpoint (`switchyard conformance run`).
//!
//! A live answer differs from the recording, so the checks are semantic. Each scenario goes
//! through the SDK's adapter for the provider, via a recording proxy ([`Capture`]) so that
//! the wire answer itself is checked too:
//!
//! - `call`: the endpoint answered (a refusal of the input as unsupported is reported as
//!   such, not as a failure: it is what the capability report is for);
//! - `wire_schema`: the answer's body (each stream event's) validates against our OpenAPI
//!   description of that provider's wire format;
//! - `wire_stream`: the stream is well-formed in that format (OpenAI-style: JSON events, one
//!   finish reason per choice, `[DONE]` last; Anthropic: `message_start` first, blocks opened
//!   and closed in order, one `message_delta` with the stop reason, `message_stop` last; ...);
//! - `openai_schema`: what the SDK made of it validates against our description of OpenAI's;
//! - `usage`: a whole answer reports its usage (what a gateway bills and limits by);
//! - `stream_chunks`: one finish reason per choice, usage when the request asked for it, and
//!   tool-call fragments that assemble into JSON;
//! - `tool_calls`: every call names a declared tool, with arguments that parse and match the
//!   tool's JSON Schema (and a call is made when `tool_choice` demands one);
//! - `agreement`: a stream and its non-stream twin agree in shape (choices, text or tool
//!   calls, tool names, finish reasons);
//! - the error scenarios (`error/bad_key`, `error/unknown_model`, `error/oversize_prompt`):
//!   `error_status` (the documented status), `error_kind` (the SDK's mapping) and
//!   `error_envelope` (the body validates against the provider's error schema).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use serde_json::Value;

use super::capture::{Capture, Exchange};
// What a call produced: the replay's outcome, from the same call path.
use super::case::{Case, Operation};
use super::replay::{Outcome as Answer, perform};
use super::report::{CaseReport, Check, Report, Verdict};
use super::schema::Schemas;
use super::suite::glob_match;
use crate::catalog::{ANTHROPIC_FORMAT, WireFormat};
use crate::error::{Error, ErrorKind, Result};
use crate::provider::ProviderKind;
use crate::transport::{RetryPolicy, Timeouts};
use crate::{ChatRequest, Client, ProviderSettings};

mod answers;
mod wire;

use answers::{agreement, stream_chunk_check, tool_checks};
use wire::{Wire, description, openai_schema, schema, wire_checks};

/// What to run against.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    /// A provider id, or `openai_compat` for any OpenAI-compatible server.
    pub provider: String,
    /// The endpoint's API base, as the provider's adapter takes it (`http://host:8000/v1`).
    pub base_url: String,
    /// The API key, if the endpoint takes one.
    pub api_key: Option<String>,
    /// The model for chat scenarios (without the provider prefix); by default each case's.
    pub model: Option<String>,
    /// The model for embedding scenarios; by default each case's (required for
    /// `openai_compat`, which has no default model).
    pub embedding_model: Option<String>,
    /// Only cases whose id matches (`openai/tools_*`); error scenarios are `error/...`.
    pub case_glob: Option<String>,
    /// Bound on each scenario.
    pub timeout: Duration,
    /// Scenarios run at once.
    pub concurrency: usize,
    /// Tokens in the oversize-prompt scenario's prompt (about one per word).
    pub oversize_tokens: usize,
}

impl LiveOptions {
    /// Options with the defaults for everything but the target.
    pub fn new(provider: &str, base_url: &str) -> Self {
        Self {
            provider: provider.to_string(),
            base_url: base_url.to_string(),
            api_key: None,
            model: None,
            embedding_model: None,
            case_glob: None,
            timeout: Duration::from_secs(60),
            concurrency: 4,
            oversize_tokens: 2_000_000,
        }
    }
}

/// `max_tokens` for live requests that need one and set none.
pub const LIVE_MAX_TOKENS: u64 = 4096;

/// The statuses the format documents for an error scenario.
fn documented(format: &WireFormat, scenario: ErrorScenario) -> &'static [u16] {
    match scenario {
        ErrorScenario::BadKey => format.statuses.bad_key,
        ErrorScenario::UnknownModel => format.statuses.unknown_model,
        ErrorScenario::OversizePrompt => format.statuses.oversize_prompt,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ErrorScenario {
    BadKey,
    UnknownModel,
    OversizePrompt,
}

impl ErrorScenario {
    const ALL: [Self; 3] = [Self::BadKey, Self::UnknownModel, Self::OversizePrompt];

    fn name(self) -> &'static str {
        match self {
            Self::BadKey => "bad_key",
            Self::UnknownModel => "unknown_model",
            Self::OversizePrompt => "oversize_prompt",
        }
    }

    fn kinds(self) -> &'static [ErrorKind] {
        match self {
            Self::BadKey => &[ErrorKind::Authentication, ErrorKind::PermissionDenied],
            Self::UnknownModel => &[ErrorKind::NotFound, ErrorKind::InvalidRequest],
            Self::OversizePrompt => &[ErrorKind::ContextLengthExceeded, ErrorKind::InvalidRequest],
        }
    }
}

/// What one scenario is.
#[derive(Clone, Debug)]
enum Scenario {
    Case(Box<Case>, Option<Box<Case>>),
    Error(ErrorScenario),
}

/// The target, resolved.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub(crate) label: String,
    pub(crate) kind: ProviderKind,
    format: &'static WireFormat,
    pub(crate) origin: String,
    pub(crate) base_path: String,
    pub(crate) options: LiveOptions,
}

impl Target {
    pub(crate) fn resolve(options: &LiveOptions) -> Result<Self> {
        let (label, kind) = if options.provider == "openai_compat" {
            ("openai_compat".to_string(), ProviderKind::OpenAi)
        } else {
            let kind = ProviderKind::from_id(&options.provider).ok_or_else(|| {
                Error::Config(format!(
                    "no provider `{}` (use openai_compat for any OpenAI-compatible server; known: {})",
                    options.provider,
                    ProviderKind::known_ids()
                ))
            })?;
            (kind.id().to_string(), kind)
        };
        if kind == ProviderKind::Mock {
            return Err(Error::Config(
                "the mock provider has no endpoint; run `switchyard mock-upstream` and check it as openai_compat"
                    .into(),
            ));
        }
        let url = options.base_url.trim_end_matches('/');
        let Some((scheme, rest)) = url.split_once("://").filter(|(s, _)| *s == "http" || *s == "https") else {
            return Err(Error::Config(format!(
                "--base-url `{}` must start with http:// or https://",
                options.base_url
            )));
        };
        let (host, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
        if host.is_empty() {
            return Err(Error::Config(format!("--base-url `{}` has no host", options.base_url)));
        }
        Ok(Self {
            label,
            kind,
            format: kind.format(),
            origin: format!("{scheme}://{host}"),
            base_path: path.to_string(),
            options: options.clone(),
        })
    }

    /// The cases folder whose scenarios apply: the provider's own (OpenAI's for a
    /// compatible server).
    fn case_provider(&self) -> &str {
        if self.label == "openai_compat" { "openai" } else { self.kind.id() }
    }

    /// Bedrock's SigV4 signature covers the host, so its requests cannot go through the
    /// recording proxy (a Bedrock API key can).
    pub(crate) fn direct(&self) -> bool {
        self.kind == ProviderKind::Bedrock && self.options.api_key.is_none()
    }

    /// A client for one call, through a fresh recording proxy unless the target must be
    /// reached directly; the proxy's exchanges are what the wire checks read.
    async fn connect(&self, api_key: Option<&str>) -> Result<(Option<Capture>, Client)> {
        let capture =
            if self.direct() { None } else { Some(Capture::start(&self.origin, self.options.timeout).await?) };
        let origin = capture.as_ref().map_or(self.origin.as_str(), |c| c.origin());
        let client = self.client(origin, api_key)?;
        Ok((capture, client))
    }

    pub(crate) fn client(&self, base_origin: &str, api_key: Option<&str>) -> Result<Client> {
        let mut settings = ProviderSettings::default().base_url(format!("{base_origin}{}", self.base_path));
        settings.api_key = api_key.map(|k| k.to_string().into());
        Client::builder()
            // A compatible server gets only the key given for it, never OPENAI_API_KEY.
            .read_env(self.label != "openai_compat")
            .retry(RetryPolicy::none())
            .timeouts(Timeouts { first_byte: self.options.timeout, idle: self.options.timeout, ..Timeouts::default() })
            .provider(self.kind, settings)
            .build()
    }

    /// Anthropic's format requires `max_tokens`, and the SDK fills it in only for models it
    /// knows: a request without one gets [`LIVE_MAX_TOKENS`] there.
    pub(crate) fn bound_output(&self, request: &mut serde_json::Map<String, Value>) {
        let unset = !request.contains_key("max_tokens") && !request.contains_key("max_completion_tokens");
        if *self.format == ANTHROPIC_FORMAT && unset && request.contains_key("messages") {
            request.insert("max_tokens".into(), Value::from(LIVE_MAX_TOKENS));
        }
    }

    pub(crate) fn model(&self, case_model: &str, embedding: bool) -> String {
        let chosen = if embedding { &self.options.embedding_model } else { &self.options.model };
        let bare =
            chosen.clone().unwrap_or_else(|| case_model.split_once('/').map_or(case_model, |(_, m)| m).to_string());
        format!("{}/{bare}", self.kind.id())
    }
}

/// The scenarios a run would make: the provider's recorded cases that reach the network
/// and succeed in their recording (their twins alongside), and the three error scenarios.
fn scenarios(root: &Path, target: &Target) -> Result<(Vec<Scenario>, Vec<CaseReport>)> {
    let cases = super::discover(root)?;
    let by_id: BTreeMap<String, Case> = cases.iter().map(|c| (c.id(), c.clone())).collect();
    let wanted = |id: &str| target.options.case_glob.as_deref().is_none_or(|g| glob_match(g, id));
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for case in cases.into_iter().filter(|c| c.provider == target.case_provider()) {
        let id = live_id(target, &case.name);
        if !wanted(&id) && !wanted(&case.id()) {
            continue;
        }
        if case.spec.expect.is_some() {
            let why = if case.spec.expect.as_ref().is_some_and(|e| e.no_request) {
                "refused before any request (checked by replay)"
            } else {
                "a recorded failure (an upstream state a live run cannot reproduce)"
            };
            skipped.push(CaseReport::skipped(id, &target.label, case.capability(), why));
            continue;
        }
        if case.spec.operation == Operation::Embed
            && target.label == "openai_compat"
            && target.options.embedding_model.is_none()
        {
            skipped.push(CaseReport::skipped(id, &target.label, case.capability(), "no --embedding-model given"));
            continue;
        }
        let twin = case.spec.twin.as_ref().and_then(|t| by_id.get(&format!("{}/{t}", case.provider))).cloned();
        out.push(Scenario::Case(Box::new(case), twin.map(Box::new)));
    }
    for scenario in ErrorScenario::ALL {
        if wanted(&format!("error/{}", scenario.name())) {
            out.push(Scenario::Error(scenario));
        }
    }
    Ok((out, skipped))
}

fn live_id(target: &Target, case: &str) -> String {
    format!("{}/{case}", target.label)
}

/// Runs every scenario against the target, `concurrency` at a time, calling `progress` as
/// each one ends.
pub async fn run(root: &Path, options: &LiveOptions, progress: impl Fn(&CaseReport) + Send + Sync) -> Result<Report> {
    let target = Arc::new(Target::resolve(options)?);
    let (scenarios, mut reports) = scenarios(root, &target)?;
    let progress = &progress;
    let done: Vec<CaseReport> = futures_util::stream::iter(scenarios)
        .map(|scenario| {
            let target = target.clone();
            async move {
                let report = run_scenario(&target, &scenario).await;
                progress(&report);
                report
            }
        })
        .buffer_unordered(options.concurrency.max(1))
        .collect()
        .await;
    reports.extend(done);
    reports.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Report { mode: "live".into(), target: format!("{} at {}", target.label, options.base_url), cases: reports })
}

/// How many scenarios a run would make (for a progress bar).
pub fn count(root: &Path, options: &LiveOptions) -> Result<usize> {
    let target = Target::resolve(options)?;
    let (scenarios, skipped) = scenarios(root, &target)?;
    Ok(scenarios.len() + skipped.len())
}

async fn run_scenario(target: &Target, scenario: &Scenario) -> CaseReport {
    let started = Instant::now();
    let bounded = tokio::time::timeout(target.options.timeout + Duration::from_secs(5), async {
        match scenario {
            Scenario::Case(case, twin) => run_case(target, case, twin.as_deref()).await,
            Scenario::Error(which) => run_error(target, *which).await,
        }
    })
    .await;
    let (id, capability) = match scenario {
        Scenario::Case(case, _) => (live_id(target, &case.name), case.capability().to_string()),
        Scenario::Error(which) => (format!("error/{}", which.name()), format!("error_{}", which.name())),
    };
    let elapsed = started.elapsed().as_secs_f64();
    match bounded {
        Ok(Ok(Outcome { checks, refused })) => {
            let mut report = CaseReport::new(id, &target.label, &capability, checks, elapsed);
            if let Some((kind, message)) = refused {
                report.verdict = Verdict::Unsupported;
                report.error_kind = Some(kind);
                report.note = Some(message);
            }
            report
        }
        Ok(Err(err)) => {
            CaseReport::new(id, &target.label, &capability, vec![Check::fail("setup", err.to_string())], elapsed)
        }
        Err(_) => CaseReport::new(
            id,
            &target.label,
            &capability,
            vec![Check::fail("call", format!("no answer within {:?}", target.options.timeout))],
            elapsed,
        ),
    }
}

/// The checks of one scenario, or the input refused as unsupported (kind, message).
struct Outcome {
    checks: Vec<Check>,
    refused: Option<(String, String)>,
}

async fn call(
    target: &Target,
    case: &Case,
    api_key: Option<&str>,
) -> Result<(std::result::Result<Answer, Error>, Vec<Exchange>)> {
    let (capture, client) = target.connect(api_key).await?;
    let embedding = case.spec.operation == Operation::Embed;
    let mut input = case.input.clone().unwrap_or(Value::Null);
    if let Some(object) = input.as_object_mut() {
        object.insert("model".into(), Value::String(target.model(&case.spec.model, embedding)));
        target.bound_output(object);
    }
    let answer = perform(&client, target.kind, case.spec.operation, input).await;
    let exchanges = capture.map(|c| c.exchanges()).unwrap_or_default();
    Ok((answer, exchanges))
}

fn api_key(target: &Target) -> Option<&str> {
    target.options.api_key.as_deref()
}

async fn run_case(target: &Target, case: &Case, twin: Option<&Case>) -> Result<Outcome> {
    let (answer, exchanges) = call(target, case, api_key(target)).await?;
    let mut checks = Vec::new();
    let answer = match answer {
        Ok(answer) => {
            checks.push(Check::pass("call", answered(&exchanges)));
            answer
        }
        Err(err) => {
            let mut outcome = refusal_or_failure(err, &exchanges);
            // An answer that started well and then broke (a stream cut short, a body that
            // does not decode) is checked on the wire too, to say what was wrong with it.
            if outcome.refused.is_none() && exchanges.last().is_some_and(|e| (200..300).contains(&e.status)) {
                outcome.checks.extend(wire_checks(target, case.spec.operation, &exchanges));
            }
            return Ok(outcome);
        }
    };
    let request = case.input.as_ref().and_then(|i| serde_json::from_value::<ChatRequest>(i.clone()).ok());
    checks.extend(wire_checks(target, case.spec.operation, &exchanges));
    checks.push(openai_schema(&answer));
    match &answer {
        Answer::Chat(response) => {
            checks.push(match &response.usage {
                Some(u) => Check::pass(
                    "usage",
                    format!("{} prompt and {} completion tokens", u.prompt_tokens, u.completion_tokens),
                ),
                None => Check::fail("usage", "the answer reports no usage (nothing to bill or count against a limit)"),
            });
            if let Some(request) = &request {
                checks.extend(tool_checks(request, response));
            }
        }
        Answer::Stream { chunks, assembled } => {
            if let Some(request) = &request {
                checks.push(stream_chunk_check(request, chunks, assembled));
                checks.extend(tool_checks(request, assembled));
            }
            if let Some(twin) = twin {
                checks.push(match call(target, twin, api_key(target)).await?.0 {
                    Ok(Answer::Chat(whole)) => agreement(assembled, &whole),
                    Ok(_) => Check::fail("agreement", "the twin did not answer as a chat completion"),
                    Err(err) => Check::fail("agreement", format!("the non-stream twin failed: {err}")),
                });
            }
        }
        Answer::Embed(_) | Answer::Models(_) | Answer::Failed(_) => {}
    }
    Ok(Outcome { checks, refused: None })
}

fn answered(exchanges: &[Exchange]) -> String {
    match exchanges.last() {
        Some(e) => format!("{} {} answered {}", e.method, e.path, e.status),
        None => "answered (not through the recording proxy)".into(),
    }
}

/// A failed call: the input refused as unsupported (before sending, or by the endpoint with
/// a 400/422), or a failure.
fn refusal_or_failure(err: Error, exchanges: &[Exchange]) -> Outcome {
    let status = err.status();
    let refused = matches!(err, Error::Unsupported { .. })
        || (matches!(status, Some(400 | 422)) && err.kind() == ErrorKind::InvalidRequest);
    if refused {
        return Outcome { checks: Vec::new(), refused: Some((err.kind().name().to_string(), err.to_string())) };
    }
    let detail = match exchanges.last().and_then(|e| e.error.clone()) {
        Some(transport) => transport,
        None => format!("{err}{}", status.map(|s| format!(" (status {s})")).unwrap_or_default()),
    };
    Outcome { checks: vec![Check::fail("call", detail)], refused: None }
}

async fn run_error(target: &Target, which: ErrorScenario) -> Result<Outcome> {
    let model = match which {
        ErrorScenario::UnknownModel => format!("{}/switchyard-conformance-no-such-model", target.kind.id()),
        _ => target.model("gpt-4o-mini", false),
    };
    let key = match which {
        ErrorScenario::BadKey => Some("sk-switchyard-conformance-not-a-valid-key"),
        _ => api_key(target),
    };
    let text = match which {
        ErrorScenario::OversizePrompt => "lorem ".repeat(target.options.oversize_tokens),
        _ => "Say hello.".to_string(),
    };
    let (capture, client) = target.connect(key).await?;
    let mut request = ChatRequest::new(model, vec![crate::ChatMessage::user(text)]);
    if *target.format == ANTHROPIC_FORMAT {
        request.max_tokens = Some(i64::try_from(LIVE_MAX_TOKENS).unwrap_or(1024));
    }
    let result = client.chat(&request).await;
    let exchanges = capture.map(|c| c.exchanges()).unwrap_or_default();
    let documented = documented(target.format, which);
    let mut checks = Vec::new();
    let err = match result {
        Ok(_) => {
            checks.push(Check::fail(
                "error_status",
                format!("expected an error with status {documented:?}, but the call succeeded"),
            ));
            return Ok(Outcome { checks, refused: None });
        }
        Err(err) => err,
    };
    let status = err.status();
    checks.push(if status.is_some_and(|s| documented.contains(&s)) {
        Check::pass("error_status", format!("answered {}", status.unwrap_or_default()))
    } else {
        Check::fail("error_status", format!("expected a status in {documented:?}, got {status:?}: {err}"))
    });
    checks.push(if which.kinds().contains(&err.kind()) {
        Check::pass("error_kind", err.kind().name())
    } else {
        let expected: Vec<&str> = which.kinds().iter().map(|k| k.name()).collect();
        Check::fail("error_kind", format!("expected {expected:?}, got {} ({err})", err.kind().name()))
    });
    if let (Some(exchange), Some(schema)) = (exchanges.last(), schema(target.format, Wire::Error)) {
        let problems = match serde_json::from_slice::<Value>(&exchange.response_body) {
            Ok(body) => Schemas::new(description(target.format)).validate_component(schema, &body),
            Err(e) => vec![format!("the body is not JSON ({e}): {}", String::from_utf8_lossy(&exchange.response_body))],
        };
        checks.push(Check::from_problems("error_envelope", &format!("the body is a valid {schema}"), &problems));
    }
    Ok(Outcome { checks, refused: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_resolve_and_refuse_nonsense() {
        let t = Target::resolve(&LiveOptions::new("openai_compat", "http://127.0.0.1:8000/v1/"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (t.origin.as_str(), t.base_path.as_str(), t.case_provider()),
            ("http://127.0.0.1:8000", "/v1", "openai")
        );
        assert_eq!(t.model("openai/gpt-4o-mini", false), "openai/gpt-4o-mini");
        assert!(Target::resolve(&LiveOptions::new("nope", "http://x")).is_err());
        assert!(Target::resolve(&LiveOptions::new("openai", "ftp://x")).is_err());
        assert!(Target::resolve(&LiveOptions::new("mock", "http://x")).is_err());
    }
}
