//! Replaying a case: a wiremock server answers with the recorded response, the client is
//! pointed at it, and the request the adapter sent is checked against `request.json`.

use serde_json::{Map, Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::conformance::case::{Case, ExpectedRequest, Operation};
use crate::conformance::compare::json_diff;
use crate::conformance::sigv4_check;
use crate::error::{Error, ErrorKind, Result};
use crate::provider::ProviderKind;
use crate::transport::RetryPolicy;
use crate::{ChatChunk, ChatRequest, ChatResponse, ChunkAccumulator, Client, EmbeddingRequest, ProviderSettings};

/// What a call produced.
#[derive(Debug)]
pub enum Outcome {
    /// A chat completion.
    Chat(ChatResponse),
    /// A stream: its chunks, and their assembly.
    Stream {
        /// The chunks, in order.
        chunks: Vec<ChatChunk>,
        /// The chunks assembled into one answer.
        assembled: ChatResponse,
    },
    /// Embeddings.
    Embed(crate::EmbeddingResponse),
    /// A models list.
    Models(crate::ModelList),
    /// An error.
    Failed(Error),
}

/// The result of replaying one case.
#[derive(Debug)]
pub struct Replay {
    /// What the call produced.
    pub outcome: Outcome,
    /// Everything that did not match: the outbound request, or the expected outcome.
    pub problems: Vec<String>,
    /// Of those, what was wrong with the request sent upstream.
    pub request_problems: Vec<String>,
    /// Of those, what was wrong with the outcome (success, or the expected error).
    pub outcome_problems: Vec<String>,
}

impl Replay {
    /// The outcome as JSON, for snapshots and reports.
    pub fn output(&self) -> Value {
        outcome_json(&self.outcome)
    }
}

/// Runs a case against a wiremock server that plays back its recorded answer.
pub async fn replay(case: &Case) -> Result<Replay> {
    let kind = ProviderKind::from_id(&case.provider)
        .ok_or_else(|| Error::Config(format!("{}: no provider `{}`", case.id(), case.provider)))?;
    let server = upstream(case).await;
    let client = client_for(case, kind, &server.uri())?;
    let outcome = run(case, kind, &client).await;

    let received = server.received_requests().await.unwrap_or_default();
    let request_problems = match &case.request {
        Some(expected) if kind == ProviderKind::Bedrock => {
            let mut problems = check_request(expected, &received);
            if let (Some(request), Some(settings)) = (received.first(), sigv4_check::Settings::of(case)) {
                problems.extend(sigv4_check::verify(request, &settings));
            }
            problems
        }
        Some(expected) => check_request(expected, &received),
        None if received.is_empty() => Vec::new(),
        None => vec![format!("expected no request upstream, but {} were sent", received.len())],
    };
    let outcome_problems = check_outcome(case, &outcome);
    let problems = request_problems.iter().chain(&outcome_problems).cloned().collect();
    Ok(Replay { outcome, problems, request_problems, outcome_problems })
}

/// A wiremock server that answers every request with the case's recorded response.
pub async fn upstream(case: &Case) -> MockServer {
    let server = MockServer::start().await;
    if let Some(recorded) = &case.response {
        let mut template = ResponseTemplate::new(recorded.status).set_body_bytes(recorded.body.clone());
        for (name, value) in &recorded.headers {
            template = template.insert_header(name.as_str(), value.as_str());
        }
        Mock::given(any()).respond_with(template).mount(&server).await;
    }
    server
}

fn client_for(case: &Case, kind: ProviderKind, server_uri: &str) -> Result<Client> {
    let provider = provider_settings(case, kind, server_uri);
    Client::builder()
        .read_env(false)
        .retry(RetryPolicy::none())
        .drop_params(case.spec.settings.drop_params)
        .provider(kind, provider)
        .build()
}

/// The provider settings a case runs with, pointed at `server_uri` (the upstream playing it
/// back): its key, version, project, region and, for Bedrock, test credentials.
pub fn provider_settings(case: &Case, kind: ProviderKind, server_uri: &str) -> ProviderSettings {
    let settings = &case.spec.settings;
    let base_path = settings.base_path.clone().unwrap_or_else(|| kind.default_base_path().to_string());
    let mut provider = ProviderSettings::default().base_url(format!("{server_uri}{base_path}"));
    provider.api_key = match settings.api_key.as_deref() {
        None => Some("test-key".to_string().into()),
        Some("") => None,
        Some(key) => Some(key.to_string().into()),
    };
    provider.auth_token = settings.auth_token.clone().map(Into::into);
    provider.api_version = settings.api_version.clone();
    provider.project = settings.project.clone();
    provider.location = settings.location.clone();
    if kind == ProviderKind::Bedrock {
        provider.location.get_or_insert_with(|| "us-east-1".into());
        let or_default = |given: &Option<String>, default: &str| match given.as_deref() {
            None => Some(default.to_string()),
            Some("") => None,
            Some(value) => Some(value.to_string()),
        };
        provider.aws_access_key_id = or_default(&settings.aws_access_key_id, sigv4_check::ACCESS_KEY_ID);
        if provider.aws_access_key_id.is_some() {
            provider.aws_secret_access_key =
                or_default(&settings.aws_secret_access_key, sigv4_check::SECRET_ACCESS_KEY).map(Into::into);
            provider.aws_session_token = settings.aws_session_token.clone().map(Into::into);
        }
    }
    provider
}

async fn run(case: &Case, kind: ProviderKind, client: &Client) -> Outcome {
    let input = case.input.clone().unwrap_or(Value::Null);
    perform(client, kind, case.spec.operation, input).await.unwrap_or_else(Outcome::Failed)
}

/// Makes one call of `operation` with `input` (a stream is read to its end and assembled).
/// Replays, live runs and recordings all call through here.
pub(crate) async fn perform(
    client: &Client,
    kind: ProviderKind,
    operation: Operation,
    input: Value,
) -> Result<Outcome> {
    Ok(match operation {
        Operation::Chat => Outcome::Chat(client.chat(&parse::<ChatRequest>(input)?).await?),
        Operation::ChatStream => {
            let mut stream = client.chat_stream(&parse::<ChatRequest>(input)?).await?;
            let mut chunks = Vec::new();
            let mut acc = ChunkAccumulator::new();
            while let Some(chunk) = stream.next_chunk().await {
                let chunk = chunk?;
                acc.push(&chunk);
                chunks.push(chunk);
            }
            Outcome::Stream { chunks, assembled: acc.finish() }
        }
        Operation::Embed => Outcome::Embed(client.embed(&parse::<EmbeddingRequest>(input)?).await?),
        Operation::Models => Outcome::Models(client.models(kind).await?),
    })
}

fn parse<T: serde::de::DeserializeOwned>(input: Value) -> Result<T> {
    serde_json::from_value(input).map_err(|e| Error::invalid(format!("the case's input does not decode: {e}"), None))
}

fn check_request(expected: &ExpectedRequest, received: &[wiremock::Request]) -> Vec<String> {
    let [request] = received else {
        return vec![format!("expected exactly one request upstream, found {}", received.len())];
    };
    let mut problems = Vec::new();
    if request.method.as_str() != expected.method {
        problems.push(format!("method: expected {}, sent {}", expected.method, request.method));
    }
    if request.url.path() != expected.path {
        problems.push(format!("path: expected {}, sent {}", expected.path, request.url.path()));
    }
    let query: Map<String, Value> =
        request.url.query_pairs().map(|(k, v)| (k.into_owned(), Value::String(v.into_owned()))).collect();
    problems.extend(
        json_diff(&Value::Object(expected.query.clone()), &Value::Object(query))
            .into_iter()
            .map(|d| format!("query {d}")),
    );
    for (name, value) in &expected.headers {
        let sent = request.headers.get(name.as_str()).and_then(|v| v.to_str().ok());
        if sent != value.as_str() {
            problems.push(format!("header {name}: expected {value}, sent {sent:?}"));
        }
    }
    for name in &expected.absent_headers {
        if request.headers.contains_key(name.as_str()) {
            problems.push(format!("header {name}: must not be sent"));
        }
    }
    match (&expected.body, request.body.is_empty()) {
        (None, true) => {}
        (None, false) => problems.push("body: none expected, but one was sent".into()),
        (Some(body), _) => match serde_json::from_slice::<Value>(&request.body) {
            Ok(sent) => problems.extend(json_diff(body, &sent).into_iter().map(|d| format!("body {d}"))),
            Err(e) => problems.push(format!("body: not JSON ({e})")),
        },
    }
    problems
}

fn check_outcome(case: &Case, outcome: &Outcome) -> Vec<String> {
    let expect = case.spec.expect.as_ref();
    match (expect, outcome) {
        (None, Outcome::Failed(err)) => vec![format!("expected success, got: {err}")],
        (None, _) => Vec::new(),
        (Some(expect), Outcome::Failed(err)) => {
            let mut problems = Vec::new();
            if ErrorKind::from_name(&expect.error) != Some(err.kind()) {
                problems.push(format!("error kind: expected {}, got {} ({err})", expect.error, err.kind().name()));
            }
            if expect.status.is_some() && expect.status != err.status() {
                problems.push(format!("error status: expected {:?}, got {:?}", expect.status, err.status()));
            }
            let retry_ms = err.retry_after().map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            if expect.retry_after_ms.is_some() && expect.retry_after_ms != retry_ms {
                problems.push(format!("retry_after: expected {:?} ms, got {retry_ms:?}", expect.retry_after_ms));
            }
            if expect.unsupported && !matches!(err, Error::Unsupported { .. }) {
                problems.push(format!("expected an Unsupported error, got: {err}"));
            }
            problems
        }
        (Some(expect), _) => vec![format!("expected a {} error, but the call succeeded", expect.error)],
    }
}

/// The outcome as JSON.
pub fn outcome_json(outcome: &Outcome) -> Value {
    match outcome {
        Outcome::Chat(resp) => to_json(resp),
        Outcome::Stream { chunks, assembled } => {
            json!({ "chunks": chunks.iter().map(to_json).collect::<Vec<_>>(), "assembled": to_json(assembled) })
        }
        Outcome::Embed(resp) => to_json(resp),
        Outcome::Models(list) => to_json(list),
        Outcome::Failed(err) => json!({ "error": error_json(err) }),
    }
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or_else(|e| Value::String(format!("unserialisable: {e}")))
}

/// An error as JSON: kind, status and the provider's details.
pub fn error_json(err: &Error) -> Value {
    let mut out = json!({ "kind": err.kind().name(), "retryable": err.is_retryable() });
    match err.api() {
        Some(api) => {
            out["status"] = json!(api.status);
            out["message"] = json!(api.message);
            out["type"] = json!(api.error_type);
            out["code"] = json!(api.code);
            out["param"] = json!(api.param);
            out["retry_after_ms"] = json!(api.retry_after.map(|d| d.as_millis()));
            out["request_id"] = json!(api.request_id);
        }
        None => out["message"] = json!(err.to_string()),
    }
    out
}

/// What a stream and its non-stream twin must agree on: per choice the text, refusal,
/// reasoning (and thinking blocks), tool calls (arguments compared as parsed JSON) and
/// finish reason; and usage.
pub fn semantic_answer(resp: &ChatResponse) -> Value {
    let choices: Vec<Value> = resp
        .choices
        .iter()
        .map(|c| {
            let calls: Vec<Value> = c
                .message
                .tool_calls
                .iter()
                .flatten()
                .map(|t| {
                    let (name, args) =
                        t.function.as_ref().map(|f| (f.name.as_str(), f.arguments.as_str())).unwrap_or_default();
                    let parsed = serde_json::from_str::<Value>(args).unwrap_or_else(|_| Value::String(args.into()));
                    json!({ "id": t.id, "name": name, "arguments": parsed })
                })
                .collect();
            // Content that is JSON (a structured-output answer) is compared as JSON: a stream
            // carries the model's text as written, a whole answer may re-serialise it.
            let content = c.message.content.as_deref().map(|text| match serde_json::from_str::<Value>(text) {
                Ok(json @ (Value::Object(_) | Value::Array(_))) => json,
                _ => Value::String(text.to_string()),
            });
            json!({
                "index": c.index,
                "content": content,
                "refusal": c.message.refusal,
                "reasoning_content": c.message.reasoning_content.as_ref(),
                "thinking_blocks": c.message.extra.get("thinking_blocks"),
                "tool_calls": calls,
                "finish_reason": c.finish_reason.as_ref().map(|f| f.as_str()),
            })
        })
        .collect();
    json!({ "choices": choices, "usage": resp.usage })
}
