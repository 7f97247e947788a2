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

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use serde_json::{Value, json};

use super::capture::{Capture, Exchange};
// What a call produced: the replay's outcome, from the same call path.
use super::case::{Case, Operation};
use super::replay::{Outcome as Answer, perform, to_json};
use super::report::{CaseReport, Check, Report, Verdict};
use super::schema::Schemas;
use super::suite::glob_match;
use crate::catalog::{ANTHROPIC_FORMAT, BEDROCK_FORMAT, OPENAI_FORMAT, WireFormat};
use crate::error::{Error, ErrorKind, Result};
use crate::provider::ProviderKind;
use crate::transport::sse::SseFramer;
use crate::transport::{RetryPolicy, Timeouts};
use crate::{ChatChunk, ChatRequest, ChatResponse, Client, ProviderSettings};

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

/// Our description of a wire format (the provider descriptor's `format.spec`), parsed once.
fn description(format: &WireFormat) -> &'static Value {
    static DOCS: OnceLock<BTreeMap<&'static str, Value>> = OnceLock::new();
    let docs = DOCS.get_or_init(|| {
        let parse = |text: &str| crate::drift::parse(text, false).unwrap_or(Value::Null);
        // Every format's description, embedded (`every_format_has_its_description` checks
        // that none is missing).
        BTreeMap::from([
            ("openapi/openai.yaml", parse(include_str!("../../openapi/openai.yaml"))),
            ("openapi/anthropic.yaml", parse(include_str!("../../openapi/anthropic.yaml"))),
            ("openapi/gemini.yaml", parse(include_str!("../../openapi/gemini.yaml"))),
            ("openapi/cohere.yaml", parse(include_str!("../../openapi/cohere.yaml"))),
            ("openapi/bedrock.yaml", parse(include_str!("../../openapi/bedrock.yaml"))),
        ])
    });
    docs.get(format.spec).unwrap_or(&Value::Null)
}

/// The schema of a whole answer, a stream event, an embeddings answer, a models list and an
/// error, in our description of the format.
fn schema(format: &WireFormat, what: Wire) -> Option<&'static str> {
    let schemas = &format.schemas;
    match what {
        Wire::Chat => Some(schemas.chat),
        Wire::Event => Some(schemas.event),
        Wire::Embed => schemas.embed,
        Wire::Models => schemas.models,
        Wire::Error => Some(schemas.error),
    }
}

/// The statuses the format documents for an error scenario.
fn documented(format: &WireFormat, scenario: ErrorScenario) -> &'static [u16] {
    match scenario {
        ErrorScenario::BadKey => format.statuses.bad_key,
        ErrorScenario::UnknownModel => format.statuses.unknown_model,
        ErrorScenario::OversizePrompt => format.statuses.oversize_prompt,
    }
}

#[derive(Clone, Copy)]
enum Wire {
    Chat,
    Event,
    Embed,
    Models,
    Error,
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

/// `wire_schema` and, for streams, `wire_stream`, on the exchange that answered.
fn wire_checks(target: &Target, operation: Operation, exchanges: &[Exchange]) -> Vec<Check> {
    let Some(exchange) = exchanges.last() else {
        let why = "not checked: the request went straight to the endpoint (SigV4 signs the host; \
                   use a Bedrock API key to check the wire)";
        return vec![Check::pass("wire_schema", why)];
    };
    let doc = description(target.format);
    let schemas = Schemas::new(doc);
    let wire = match operation {
        Operation::Chat => Wire::Chat,
        Operation::ChatStream => Wire::Event,
        Operation::Embed => Wire::Embed,
        Operation::Models => Wire::Models,
    };
    let Some(schema) = schema(target.format, wire) else {
        return vec![Check::pass("wire_schema", "not checked: our description has no schema for this answer")];
    };
    if operation != Operation::ChatStream {
        let problems = match serde_json::from_slice::<Value>(&exchange.response_body) {
            Ok(body) => schemas.validate_component(schema, &body),
            Err(e) => vec![format!("the body is not JSON: {e}")],
        };
        return vec![Check::from_problems("wire_schema", &format!("the body is a valid {schema}"), &problems)];
    }
    if *target.format == BEDROCK_FORMAT {
        return vec![Check::pass("wire_schema", "not checked: Bedrock streams are binary event streams")];
    }
    let events = sse_events(&exchange.response_body);
    let mut problems = Vec::new();
    for (i, (event, data)) in events.iter().enumerate() {
        if data == "[DONE]" {
            continue;
        }
        match serde_json::from_str::<Value>(data) {
            Ok(value) => {
                // Anthropic's events are told apart by their type, not by their shape.
                let schema = if *target.format == ANTHROPIC_FORMAT {
                    match anthropic_event_schema(&value) {
                        Some(schema) => schema,
                        None => continue, // an event type this version does not know: skipped, as Anthropic asks
                    }
                } else {
                    schema
                };
                problems.extend(
                    schemas.validate_component(schema, &value).into_iter().map(|p| format!("event {i} ({event}): {p}")),
                );
            }
            Err(e) => problems.push(format!("event {i} ({event}) is not JSON: {e}")),
        }
    }
    vec![
        Check::from_problems("wire_schema", &format!("{} events, each a valid {schema}", events.len()), &problems),
        Check::from_problems("wire_stream", "the stream is well-formed", &stream_shape(target.format, &events)),
    ]
}

/// The schema of an Anthropic stream event, by its `type`.
fn anthropic_event_schema(event: &Value) -> Option<&'static str> {
    Some(match event.get("type").and_then(Value::as_str)? {
        "message_start" => "MessageStartEvent",
        "content_block_start" => "ContentBlockStartEvent",
        "content_block_delta" => "ContentBlockDeltaEvent",
        "content_block_stop" => "ContentBlockStopEvent",
        "message_delta" => "MessageDeltaEvent",
        "message_stop" => "MessageStopEvent",
        "ping" => "Ping",
        "error" => "ErrorResponse",
        _ => return None,
    })
}

/// The SSE events of a body: (event name, data).
fn sse_events(body: &[u8]) -> Vec<(String, String)> {
    let mut framer = SseFramer::new();
    framer.push(body);
    let mut out = Vec::new();
    while let Some(event) = framer.next_event() {
        out.push((event.event().to_string(), event.data_str().into_owned()));
    }
    if let Some(event) = framer.finish() {
        out.push((event.event().to_string(), event.data_str().into_owned()));
    }
    out
}

/// What is wrong with the order and framing of a stream's events, in its format.
fn stream_shape(format: &WireFormat, events: &[(String, String)]) -> Vec<String> {
    let json = |data: &str| serde_json::from_str::<Value>(data).ok();
    let mut problems = Vec::new();
    if events.is_empty() {
        return vec!["the stream has no events".into()];
    }
    match format.id {
        "openai" => {
            let done = events.iter().position(|(_, d)| d == "[DONE]");
            match done {
                None => problems.push("no `data: [DONE]` at the end".into()),
                Some(i) if i + 1 != events.len() => {
                    problems.push(format!("events after [DONE] (at {i} of {})", events.len()))
                }
                Some(_) => {}
            }
            one_finish_each(events, "choices", "choice", "finish_reason", &mut problems);
        }
        "anthropic" => {
            let types: Vec<String> = events
                .iter()
                .map(|(e, d)| {
                    json(d)
                        .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_string))
                        .unwrap_or_else(|| e.clone())
                })
                .collect();
            for (i, ((event, _), t)) in events.iter().zip(&types).enumerate() {
                if !event.is_empty() && event != t {
                    problems.push(format!("event {i} is named `{event}` but its data says `{t}`"));
                }
            }
            let meaningful: Vec<&String> = types.iter().filter(|t| t.as_str() != "ping").collect();
            if meaningful.first().map(|t| t.as_str()) != Some("message_start") {
                problems.push(format!("the first event is {:?}, not message_start", meaningful.first()));
            }
            if meaningful.last().map(|t| t.as_str()) != Some("message_stop") {
                problems.push(format!("the last event is {:?}, not message_stop", meaningful.last()));
            }
            let mut open: Option<i64> = None;
            let mut stop_reasons = 0;
            for (i, (_, data)) in events.iter().enumerate() {
                let Some(value) = json(data) else { continue };
                let index = value.get("index").and_then(Value::as_i64);
                match value.get("type").and_then(Value::as_str) {
                    Some("content_block_start") => {
                        if let Some(o) = open {
                            problems.push(format!("event {i}: block {index:?} starts while block {o} is open"));
                        }
                        open = index;
                    }
                    Some("content_block_delta") if open != index => {
                        problems
                            .push(format!("event {i}: a delta for block {index:?}, but the open block is {open:?}"));
                    }
                    Some("content_block_stop") => {
                        if open != index {
                            problems.push(format!("event {i}: block {index:?} stops, but the open block is {open:?}"));
                        }
                        open = None;
                    }
                    Some("message_delta") if value.pointer("/delta/stop_reason").is_some_and(|r| !r.is_null()) => {
                        stop_reasons += 1;
                    }
                    _ => {}
                }
            }
            if let Some(o) = open {
                problems.push(format!("block {o} is never stopped"));
            }
            if stop_reasons != 1 {
                problems.push(format!("{stop_reasons} message_delta events carry a stop_reason, not one"));
            }
        }
        "gemini" => {
            one_finish_each(events, "candidates", "candidate", "finishReason", &mut problems);
        }
        "cohere" => {
            let types: Vec<String> =
                events.iter().filter_map(|(_, d)| json(d)?.get("type")?.as_str().map(str::to_string)).collect();
            if types.first().map(String::as_str) != Some("message-start") {
                problems.push(format!("the first event is {:?}, not message-start", types.first()));
            }
            if types.last().map(String::as_str) != Some("message-end") {
                problems.push(format!("the last event is {:?}, not message-end", types.last()));
            }
            for (start, end) in [("content-start", "content-end"), ("tool-call-start", "tool-call-end")] {
                let (s, e) = (types.iter().filter(|t| *t == start).count(), types.iter().filter(|t| *t == end).count());
                if s != e {
                    problems.push(format!("{s} {start} events but {e} {end}"));
                }
            }
        }
        // Bedrock streams are binary event streams, checked as they are decoded; a new
        // format has no order checks until they are written here.
        _ => {}
    }
    problems
}

/// Each choice (`list` items, by their `index`) of a stream's JSON events has exactly one
/// `reason` field that is set, and some choice has one.
fn one_finish_each(events: &[(String, String)], list: &str, item: &str, reason: &str, problems: &mut Vec<String>) {
    let mut finishes: BTreeMap<i64, usize> = BTreeMap::new();
    for (_, data) in events {
        let Ok(event) = serde_json::from_str::<Value>(data) else { continue };
        for entry in event.get(list).and_then(Value::as_array).into_iter().flatten() {
            if entry.get(reason).is_some_and(|f| !f.is_null()) {
                *finishes.entry(entry.get("index").and_then(Value::as_i64).unwrap_or(0)).or_default() += 1;
            }
        }
    }
    if finishes.is_empty() {
        problems.push(format!("no {item} ever has a {reason}"));
    }
    for (index, n) in finishes.iter().filter(|(_, n)| **n > 1) {
        problems.push(format!("{item} {index} has {n} finish reasons, not one"));
    }
}

/// The SDK's OpenAI-shaped output against our description of OpenAI's format.
fn openai_schema(answer: &Answer) -> Check {
    let doc = description(&OPENAI_FORMAT);
    let schemas = Schemas::new(doc);
    let (schema, problems) = match answer {
        Answer::Chat(r) => {
            ("CreateChatCompletionResponse", schemas.validate_component("CreateChatCompletionResponse", &to_json(r)))
        }
        Answer::Stream { chunks, .. } => (
            "CreateChatCompletionStreamResponse",
            chunks
                .iter()
                .enumerate()
                .flat_map(|(i, c)| {
                    schemas
                        .validate_component("CreateChatCompletionStreamResponse", &to_json(c))
                        .into_iter()
                        .map(move |p| format!("chunk {i}: {p}"))
                })
                .collect(),
        ),
        Answer::Embed(r) => {
            ("CreateEmbeddingResponse", schemas.validate_component("CreateEmbeddingResponse", &to_json(r)))
        }
        Answer::Models(r) => ("ListModelsResponse", schemas.validate_component("ListModelsResponse", &to_json(r))),
        Answer::Failed(err) => ("answer", vec![format!("the call failed: {err}")]),
    };
    Check::from_problems("openai_schema", &format!("the SDK's output is a valid OpenAI {schema}"), &problems)
}

/// `tool_calls`: when the request declares tools, every call names one of them with
/// arguments that parse and match its schema, and one is made when `tool_choice` demands it.
fn tool_checks(request: &ChatRequest, response: &ChatResponse) -> Option<Check> {
    let request_json = serde_json::to_value(request).ok()?;
    let tools = request_json.get("tools").and_then(Value::as_array).filter(|t| !t.is_empty())?;
    let declared: BTreeMap<String, Value> = tools
        .iter()
        .filter_map(|t| {
            let f = t.get("function")?;
            Some((f.get("name")?.as_str()?.to_string(), f.get("parameters").cloned().unwrap_or(json!({}))))
        })
        .collect();
    let mut problems = Vec::new();
    let calls: Vec<_> = response.choices.iter().flat_map(|c| c.message.tool_calls.iter().flatten()).collect();
    let forced = match request_json.get("tool_choice") {
        Some(Value::String(s)) => s == "required",
        Some(Value::Object(o)) => o.get("type").and_then(Value::as_str) == Some("function"),
        _ => false,
    };
    if forced && calls.is_empty() {
        problems.push("tool_choice demands a call, and none was made".to_string());
    }
    for call in &calls {
        let Some(function) = call.function.as_ref() else {
            problems.push(format!("call {} has no function", call.id));
            continue;
        };
        let Some(schema) = declared.get(&function.name) else {
            let names: Vec<&String> = declared.keys().collect();
            problems
                .push(format!("call {} names `{}`, which is not a declared tool ({names:?})", call.id, function.name));
            continue;
        };
        match serde_json::from_str::<Value>(&function.arguments) {
            Ok(arguments) => {
                let schemas = Schemas::new(schema);
                problems.extend(
                    schemas
                        .validate(schema, &arguments)
                        .into_iter()
                        .map(|p| format!("call {} ({}): {p}", call.id, function.name)),
                );
            }
            Err(e) => problems.push(format!(
                "call {} ({}): the arguments are not JSON ({e}): {:?}",
                call.id, function.name, function.arguments
            )),
        }
    }
    let ok = format!("{} call(s), each naming a declared tool with valid arguments", calls.len());
    Some(Check::from_problems("tool_calls", &ok, &problems))
}

/// `stream_chunks`: one finish reason per choice, usage when asked, fragments that assemble.
fn stream_chunk_check(request: &ChatRequest, chunks: &[ChatChunk], assembled: &ChatResponse) -> Check {
    let mut problems = Vec::new();
    let mut finishes: BTreeMap<i64, usize> = BTreeMap::new();
    for chunk in chunks {
        for choice in &chunk.choices {
            if choice.finish_reason.is_some() {
                *finishes.entry(choice.index).or_default() += 1;
            }
        }
    }
    let indices: BTreeSet<i64> = chunks.iter().flat_map(|c| c.choices.iter().map(|c| c.index)).collect();
    for index in &indices {
        match finishes.get(index).copied().unwrap_or(0) {
            1 => {}
            n => problems.push(format!("choice {index} has {n} finish reasons, not one")),
        }
    }
    let asked = request.stream_options.as_ref().and_then(|o| o.include_usage) == Some(true);
    if asked && !chunks.iter().any(|c| c.usage.is_some()) {
        problems.push("stream_options.include_usage was asked, and no chunk carries usage".into());
    }
    for choice in &assembled.choices {
        for call in choice.message.tool_calls.iter().flatten() {
            if let Some(f) = &call.function
                && serde_json::from_str::<Value>(&f.arguments).is_err()
            {
                problems.push(format!(
                    "the fragments of call {} assemble into {:?}, which is not JSON",
                    call.id, f.arguments
                ));
            }
        }
    }
    Check::from_problems("stream_chunks", &format!("{} chunks, well-formed", chunks.len()), &problems)
}

/// `agreement`: the stream's assembled answer and the twin's whole answer have one shape.
fn agreement(assembled: &ChatResponse, whole: &ChatResponse) -> Check {
    let shape = |r: &ChatResponse| -> Vec<Value> {
        let mut choices: Vec<Value> = r
            .choices
            .iter()
            .map(|c| {
                let mut names: Vec<String> = c
                    .message
                    .tool_calls
                    .iter()
                    .flatten()
                    .filter_map(|t| t.function.as_ref().map(|f| f.name.clone()))
                    .collect();
                names.sort();
                json!({
                    "index": c.index,
                    "text": c.message.content.as_deref().is_some_and(|t| !t.is_empty()),
                    "tools": names,
                    "finish_reason": c.finish_reason.as_ref().map(|f| f.as_str()),
                })
            })
            .collect();
        choices.sort_by_key(|c| c["index"].as_i64());
        choices
    };
    let (a, b) = (shape(assembled), shape(whole));
    if a == b {
        Check::pass("agreement", "the stream and the whole answer agree in shape")
    } else {
        Check::fail("agreement", format!("stream {} vs whole {}", Value::from(a), Value::from(b)))
    }
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
    #[test]
    fn every_format_has_its_description() {
        for format in crate::catalog::FORMATS {
            assert!(super::description(format).is_object(), "{} ({}) is not embedded", format.id, format.spec);
        }
    }

    use super::*;

    fn events(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(e, d)| (e.to_string(), d.to_string())).collect()
    }

    #[test]
    fn openai_streams_need_done_last_and_one_finish_reason() {
        let good = events(&[
            ("", r#"{"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}"#),
            ("", r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#),
            ("", "[DONE]"),
        ]);
        assert!(stream_shape(&OPENAI_FORMAT, &good).is_empty());
        let bad = events(&[
            ("", r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#),
            ("", r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#),
        ]);
        let problems = stream_shape(&OPENAI_FORMAT, &bad);
        assert!(problems.iter().any(|p| p.contains("[DONE]")), "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("2 finish reasons")), "{problems:?}");
    }

    #[test]
    fn anthropic_streams_open_and_close_blocks_in_order() {
        let good = events(&[
            ("message_start", r#"{"type":"message_start","message":{}}"#),
            (
                "content_block_start",
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hi"}}"#,
            ),
            ("content_block_stop", r#"{"type":"content_block_stop","index":0}"#),
            (
                "message_delta",
                r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":1}}"#,
            ),
            ("message_stop", r#"{"type":"message_stop"}"#),
        ]);
        assert_eq!(stream_shape(&ANTHROPIC_FORMAT, &good), Vec::<String>::new());
        let mut bad = good.clone();
        bad.remove(3);
        bad.pop();
        let problems = stream_shape(&ANTHROPIC_FORMAT, &bad);
        assert!(problems.iter().any(|p| p.contains("not message_stop")), "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("never stopped")), "{problems:?}");
    }

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
