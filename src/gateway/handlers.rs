//! Thin handlers: authenticate, parse (a bad body is an error envelope), route, answer.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use axum::Extension;

use super::admission::{Admission, Metered, admit, check_model, limit_headers};
use super::auth::Principal;
use super::coalesce::coalesce;
use super::guardrails::stream::GuardedStream;
use super::guardrails::{Record, Records, Requested, Session};
use super::store::{KeyRecord, SpendRow, now_ms};
use super::{ApiFailure, Gateway};
use crate::cache::CacheControl;
use crate::error::ErrorKind;
use crate::router::state::MinuteUsage;
use crate::router::{CallOptions, CallReport};
use crate::{ChatRequest, EmbeddingRequest};

/// The body, or the envelope for one that is too large or unreadable.
pub(super) fn body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiFailure> {
    body.map_err(|rejection| {
        let status = rejection.status();
        let failure = ApiFailure::bad_request(format!("cannot read the request body: {}", rejection.body_text()));
        if status == StatusCode::PAYLOAD_TOO_LARGE { failure.status(status).code("request_too_large") } else { failure }
    })
}

/// Parses a JSON body into `T`, or says what is wrong with it.
pub(super) fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiFailure> {
    if bytes.is_empty() {
        return Err(ApiFailure::bad_request("the request body is empty; send a JSON object"));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        let what = if e.is_syntax() || e.is_eof() { "the request body is not valid JSON" } else { "invalid request" };
        ApiFailure::bad_request(format!("{what}: {e}"))
    })
}

/// LiteLLM's per-request `cache: {"no-cache": true, "no-store": true, "ttl": 60}`.
pub(super) fn take_cache_control(request: &mut ChatRequest) -> Result<CallOptions, ApiFailure> {
    let Some(value) = request.extra.remove("cache") else { return Ok(CallOptions::default()) };
    let bad = || {
        ApiFailure::bad_request("`cache` must be an object with `no-cache`, `no-store` (booleans) and `ttl` (seconds)")
    };
    let object = value.as_object().ok_or_else(bad)?;
    let flag =
        |name: &str| object.get(name).map(|v| v.as_bool().ok_or_else(bad)).transpose().map(|b| b.unwrap_or(false));
    let ttl = object
        .get("ttl")
        .map(|v| {
            v.as_f64().and_then(|s| crate::bounds::secs_within(s, true, crate::bounds::MAX_TTL)).ok_or_else(|| {
                ApiFailure::bad_request(format!(
                    "`cache.ttl` must be a number of seconds from 0 to {} (a year)",
                    crate::bounds::MAX_TTL.as_secs()
                ))
                .param("cache.ttl")
            })
        })
        .transpose()?;
    Ok(CallOptions {
        cache: CacheControl { no_cache: flag("no-cache")?, no_store: flag("no-store")?, ttl },
        context: None,
        native: None,
        usage_only: false,
    })
}

/// The `x-switchyard-*` headers of a routed answer. The names are built once, numbers
/// become header values without a string between, and the map is sized for them all.
fn report_headers(headers: &mut HeaderMap, report: &CallReport, api_base: bool) {
    const CALL_ID: HeaderName = HeaderName::from_static("x-switchyard-call-id");
    const COST: HeaderName = HeaderName::from_static("x-switchyard-response-cost");
    const MODEL_ID: HeaderName = HeaderName::from_static("x-switchyard-model-id");
    const API_BASE: HeaderName = HeaderName::from_static("x-switchyard-model-api-base");
    const RETRIES: HeaderName = HeaderName::from_static("x-switchyard-attempted-retries");
    const FALLBACKS: HeaderName = HeaderName::from_static("x-switchyard-attempted-fallbacks");
    const OVERHEAD: HeaderName = HeaderName::from_static("x-switchyard-overhead-duration-ms");
    const CACHE_HIT: HeaderName = HeaderName::from_static("x-switchyard-cache-hit");
    fn text(headers: &mut HeaderMap, name: HeaderName, value: &str) {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    }
    headers.reserve(12);
    text(headers, CALL_ID, &report.call_id);
    if let Some(receipt) = &report.receipt {
        // Exact, as `Usd` shows itself (all twelve decimals, no float), without the `$`.
        text(headers, COST, receipt.total.to_string().trim_start_matches('$'));
    }
    if let Some(deployment) = &report.deployment {
        text(headers, MODEL_ID, deployment);
    }
    // The upstream's URL is internal: shown only when the config asks for it.
    if api_base && let Some(api_base) = &report.api_base {
        text(headers, API_BASE, api_base);
    }
    headers.insert(RETRIES, HeaderValue::from(report.attempts.len().saturating_sub(1)));
    headers.insert(FALLBACKS, HeaderValue::from(report.fallbacks.len()));
    let upstream: Duration = report.attempts.iter().map(|a| a.duration).sum();
    // Milliseconds with three decimals, from whole microseconds (a float formatted to a
    // precision takes the slow, exact path of float printing).
    let overhead = report.latency.saturating_sub(upstream).as_nanos().saturating_add(500) / 1000;
    text(headers, OVERHEAD, &format!("{}.{:03}", overhead / 1000, overhead % 1000));
    headers.insert(CACHE_HIT, HeaderValue::from_static(if report.cache_hit { "true" } else { "false" }));
}

pub(super) async fn chat_completions(
    State(gateway): State<Arc<Gateway>>,
    Extension(principal): Extension<Principal>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiFailure> {
    let bytes = body(raw)?;
    let mut request: ChatRequest = parse(&bytes)?;
    let options = take_cache_control(&mut request)?;
    let group = request.model.clone();
    // The routed call's future (router, provider, transport) is large; boxed, it is built
    // once on the heap, and the handler's own future, which axum's layers move and box
    // again, stays small (unboxed, those moves were an eighth of the instructions a request
    // took under callgrind).
    Ok(match Box::pin(route_chat(&gateway, &principal, Box::new(request), options, None)).await? {
        Routed::Stream(stream, headers) => {
            let mut headers = headers;
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            with_headers(Body::from_stream(coalesce(sse(stream, group))).into_response(), headers)
        }
        Routed::Whole(mut response, headers) => {
            // Clients see the name they asked for, whatever deployment answered.
            response.model = group;
            with_headers(axum::Json(&response).into_response(), headers)
        }
    })
}

/// `response` with `headers` as well, which win over its own of the same name (as
/// `(headers, response)` has it): the response's own few (a content type) join the map,
/// which then becomes the response's, rather than each of the map's dozen being hashed
/// into the response's (a sixtieth of a pass-through request's instructions).
pub(super) fn with_headers(mut response: Response, mut headers: HeaderMap) -> Response {
    let own = std::mem::take(response.headers_mut());
    for name in own.keys() {
        if !headers.contains_key(name) {
            for value in own.get_all(name) {
                headers.append(name.clone(), value.clone());
            }
        }
    }
    *response.headers_mut() = headers;
    response
}

/// A routed chat answer and its `x-switchyard-*` and rate-limit headers.
pub(super) enum Routed {
    Whole(Box<crate::ChatResponse>, HeaderMap),
    Stream(Box<Metered>, HeaderMap),
}

/// Runs the pre-call guardrails, admits the call for the principal (models, limits,
/// budget), routes it, and runs the answer's guardrails (a stream's as it passes).
/// `unread` names content of the client's own body that the request does not carry (a
/// block type newer than the translation): where any guardrail runs it is refused, since
/// the guardrails could not check it.
/// The request comes boxed: held in this future by value it took its room (968 bytes) in
/// every state of it, twice, and the whole future is moved into a box when it starts.
pub(super) async fn route_chat(
    gateway: &Gateway,
    principal: &Principal,
    mut request: Box<ChatRequest>,
    mut options: CallOptions,
    unread: Option<String>,
) -> Result<Routed, ApiFailure> {
    let started = std::time::Instant::now();
    match request.check() {
        // A client's own body whose messages the translation could not read at all (block
        // types newer than this version) goes as it came to an upstream of its format, and
        // a translated attempt refuses it by name: no message to check here is not an error.
        Err(invalid)
            if invalid.param == "messages"
                && options.native.as_ref().is_some_and(|native| native.untranslatable_reason().is_some()) => {}
        checked => checked.map_err(crate::Error::from)?,
    }
    check_model(principal, &request.model)?;
    let requested = Requested::take(&mut request)?;
    let mut session = guardrails_for(gateway, principal, &requested, unread)?;
    // Only what the guardrails need is copied, and only when any run.
    let (group, key_id) = match &session {
        Some(_) => (request.model.clone(), principal.key().map(|k| k.id.clone())),
        None => (String::new(), None),
    };
    // A request sent as the client wrote it must be the one the guardrails passed.
    let before = options.native.is_some().then(|| session.as_ref().map(|_| request.clone())).flatten();
    // The guardrails' futures are large and run for few calls: boxed, they do not grow this
    // future (which its callers box, moving every byte of it) for the calls without them.
    if let Some(session) = session.as_mut()
        && let Err(failure) = Box::pin(session.pre_call(&mut request, &group, key_id.as_deref())).await
    {
        let records = session.records();
        gateway.metrics.observe_guardrails(&records);
        gateway.spend.send(blocked_row(principal.key().map(AsRef::as_ref), &request.model, &records, started));
        return Err(match session.header() {
            Some(header) => failure.header("x-switchyard-guardrails", header),
            None => failure,
        });
    }
    // Counting and pricing cost microseconds: done only for a key with a tpm or a budget.
    // Admitting a virtual key awaits the store, the counters and maybe a count: its future
    // is large, so it is boxed, and the master key, which has nothing to admit, skips it.
    let (admission, usage) = match principal.key() {
        None => (Admission::free(gateway), None),
        Some(_) => {
            let estimate = async || gateway.router.estimate(&request).await.unwrap_or_default();
            Box::pin(admit(gateway, principal, &request.model, estimate)).await?
        }
    };
    options.context = Some(admission.clone());
    if let Some(session) = &session
        && (before.as_ref().is_some_and(|before| *before != request)
            || (request.stream == Some(true) && session.works_on_answers()))
    {
        // Changed by a guardrail, or read by one as it streams: translated both ways.
        options.native = None;
    }
    // No guardrail reads the answer: an answer passed through is read for its usage only.
    options.usage_only = session.is_none();
    if request.stream == Some(true) {
        // Boxed apart, as the guardrails: the stream's call and the whole answer's would
        // otherwise each take their room in this future.
        let admitted = Admitted { admission, usage, session };
        return Box::pin(route_stream(gateway, principal, request, options, admitted)).await;
    }
    let native = options.native.clone();
    let mut headers = HeaderMap::new();
    let mut answer = gateway.router.chat_with(&request, options).await?;
    admission.wait_written().await;
    report_headers(&mut headers, &answer.report, gateway.show_api_base);
    limit_headers(&mut headers, principal.key(), usage);
    if let Some(session) = session {
        let on_answer = guard_answer(gateway, session, &request, &mut answer, (&group, key_id.as_deref()), native);
        if let Some(value) = Box::pin(on_answer).await? {
            headers.insert("x-switchyard-guardrails", value);
        }
    }
    Ok(Routed::Whole(Box::new(answer.response), headers))
}

/// The guardrails that run for this call (none: `None`), from the config, the key's
/// settings and what the request asks for. Passed through, content the guardrails could not
/// read (`unread`) would reach the upstream unchecked: where any run, it is not sent.
fn guardrails_for(
    gateway: &Gateway,
    principal: &Principal,
    requested: &Requested,
    unread: Option<String>,
) -> Result<Option<Session>, ApiFailure> {
    if gateway.guardrails.is_empty() && requested.on.is_empty() && requested.off.is_empty() {
        return Ok(None);
    }
    let key_settings = principal.key().map(|k| &k.guardrails);
    let master = principal.key().is_none();
    let session = gateway.guardrails.session(key_settings, master, requested, Records::default())?;
    if session.is_empty() {
        return Ok(None);
    }
    match unread {
        Some(what) => Err(ApiFailure::bad_request(format!(
            "{what} cannot be read by the gateway's guardrails, so the request is not sent"
        ))),
        None => Ok(Some(session)),
    }
}

/// What admitting a call left for routing its stream.
struct Admitted {
    admission: Arc<Admission>,
    usage: Option<MinuteUsage>,
    session: Option<Session>,
}

/// A stream's call, once admitted: the guardrails that read it as it passes, the metering
/// that settles it.
async fn route_stream(
    gateway: &Gateway,
    principal: &Principal,
    request: Box<ChatRequest>,
    options: CallOptions,
    Admitted { admission, usage, session }: Admitted,
) -> Result<Routed, ApiFailure> {
    let mut headers = HeaderMap::new();
    let stream = gateway.router.chat_stream_with(&request, options).await?;
    report_headers(&mut headers, stream.report(), gateway.show_api_base);
    limit_headers(&mut headers, principal.key(), usage);
    if let Some(value) = session.as_ref().and_then(Session::header).and_then(|h| HeaderValue::from_str(&h).ok()) {
        headers.insert("x-switchyard-guardrails", value);
    }
    let on_done = session.as_ref().map(|_| decisions_sink(gateway, stream.report().call_id.clone()));
    let guarded = GuardedStream::new(stream, session, *request, on_done);
    Ok(Routed::Stream(Box::new(Metered::new(gateway, guarded, admission)), headers))
}

/// The answer's guardrails: the header that reports them, or the failure a guardrail
/// refused the answer with. A guardrail that changed the answer abandons the upstream's
/// bytes (`native`), which no longer say it.
async fn guard_answer(
    gateway: &Gateway,
    mut session: Session,
    request: &ChatRequest,
    answer: &mut crate::router::Routed<crate::ChatResponse>,
    (group, key_id): (&str, Option<&str>),
    native: Option<Arc<crate::provider::native::Native>>,
) -> Result<Option<HeaderValue>, ApiFailure> {
    let checked = if session.works_on_answers() {
        let before = native.as_ref().map(|_| serde_json::to_value(&answer.response).ok());
        let checked = session.post_call(request, &mut answer.response, group, key_id).await;
        if let (Some(native), Some(before)) = (&native, before)
            && before != serde_json::to_value(&answer.response).ok()
        {
            // A guardrail changed the answer: the upstream's bytes no longer say it.
            native.abandon();
        }
        checked
    } else {
        Ok(())
    };
    decisions_sink(gateway, answer.report.call_id.clone())(session.records());
    let header = session.header();
    if let Err(failure) = checked {
        return Err(match header.clone() {
            Some(header) => failure.header("x-switchyard-guardrails", header),
            None => failure,
        });
    }
    Ok(header.and_then(|h| HeaderValue::from_str(&h).ok()))
}

/// Where a routed call's guardrail decisions go once they are all known: the metrics, and
/// its spend row.
fn decisions_sink(gateway: &Gateway, call_id: String) -> Box<dyn FnOnce(Vec<Record>) + Send> {
    let (spend, metrics) = (gateway.spend.clone(), gateway.metrics.clone());
    Box::new(move |records: Vec<Record>| {
        if records.is_empty() {
            return;
        }
        metrics.observe_guardrails(&records);
        spend.guardrails(call_id, serde_json::to_string(&records).unwrap_or_default());
    })
}

/// The spend row of a call a guardrail refused before it was routed.
fn blocked_row(key: Option<&KeyRecord>, group: &str, records: &[Record], started: std::time::Instant) -> SpendRow {
    SpendRow {
        call_id: crate::router::call_id(std::time::SystemTime::now()),
        key_id: key.map(|k| k.id.clone()),
        team_id: key.and_then(|k| k.team_id.clone()),
        model: group.to_string(),
        status: "blocked".into(),
        error_kind: Some("guardrail_violation".into()),
        latency_us: i64::try_from(started.elapsed().as_micros()).unwrap_or(i64::MAX),
        created_at: now_ms(),
        guardrails: serde_json::to_string(records).ok(),
        ..SpendRow::default()
    }
}

/// The chunks as server-sent events, each passed on as it comes, then `[DONE]`; an error
/// after the first chunk (or a guardrail's block) is sent as an error event and ends the
/// stream.
fn sse(
    stream: Box<Metered>,
    group: String,
) -> impl futures_core::Stream<Item = Result<Bytes, std::convert::Infallible>> {
    // The group's name travels in the state and is swapped into each chunk's `model`, so
    // no chunk allocates for it; each event is written into one buffer. The stream stays in
    // its box: the state is moved in and out of each step, and the stream is kilobytes.
    futures_util::stream::unfold(Some((stream, group)), |state| async move {
        let (mut stream, mut group) = state?;
        match stream.next_chunk().await {
            Some(Ok(mut chunk)) => {
                std::mem::swap(&mut chunk.model, &mut group);
                let mut event = Vec::with_capacity(256);
                event.extend_from_slice(b"data: ");
                let written = serde_json::to_writer(&mut event, &chunk);
                event.extend_from_slice(b"\n\n");
                std::mem::swap(&mut chunk.model, &mut group);
                match written {
                    Ok(()) => Some((Ok(Bytes::from(event)), Some((stream, group)))),
                    Err(err) => {
                        let failure = ApiFailure::new(ErrorKind::Server, format!("cannot encode a chunk: {err}"));
                        Some((Ok(Bytes::from(format!("data: {}\n\n", failure.body()))), None))
                    }
                }
            }
            Some(Err(failure)) => Some((Ok(Bytes::from(format!("data: {}\n\n", failure.body()))), None)),
            None => Some((Ok(Bytes::from_static(b"data: [DONE]\n\n")), None)),
        }
    })
}

pub(super) async fn embeddings(
    State(gateway): State<Arc<Gateway>>,
    Extension(principal): Extension<Principal>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiFailure> {
    let bytes = body(raw)?;
    let request: EmbeddingRequest = parse(&bytes)?;
    let group = request.model.clone();
    let (admission, usage) = admit(&gateway, &principal, &group, async || crate::router::Estimate::default()).await?;
    let options = CallOptions { context: Some(admission.clone()), ..CallOptions::default() };
    let mut answer = Box::pin(gateway.router.embed_with(&request, options)).await?;
    admission.wait_written().await;
    answer.response.model = group;
    let mut response = axum::Json(&answer.response).into_response();
    report_headers(response.headers_mut(), &answer.report, gateway.show_api_base);
    limit_headers(response.headers_mut(), principal.key(), usage);
    Ok(response)
}

pub(super) async fn liveness() -> Response {
    axum::Json(json!({"status": "healthy"})).into_response()
}

/// Ready when the shared state answers (never a billable call).
pub(super) async fn readiness(State(gateway): State<Arc<Gateway>>) -> Response {
    if let Err(err) = gateway.store.ping().await {
        return super::unavailable(format!("not ready: {err}"));
    }
    match gateway.router.state().ping().await {
        Ok(()) => {
            axum::Json(json!({"status": "ready", "state": state_name(&gateway), "database": gateway.store.kind()}))
                .into_response()
        }
        Err(err) => super::unavailable(format!("not ready: {err}")),
    }
}

fn state_name(gateway: &Gateway) -> &'static str {
    match gateway.router.state() {
        crate::router::SharedState::Memory(_) => "memory",
        crate::router::SharedState::Redis(_) => "redis",
    }
}

pub(super) async fn not_found(request: Request) -> Response {
    let path = super::envelope::shown(request.uri().path());
    ApiFailure::new(
        ErrorKind::NotFound,
        format!("no route for {} {path}", super::envelope::shown(request.method().as_str())),
    )
    .code("unknown_url")
    .into_response()
}

pub(super) async fn method_not_allowed(request: Request) -> Response {
    ApiFailure::new(
        ErrorKind::InvalidRequest,
        format!(
            "{} is not allowed on {}",
            super::envelope::shown(request.method().as_str()),
            super::envelope::shown(request.uri().path())
        ),
    )
    .status(StatusCode::METHOD_NOT_ALLOWED)
    .code("method_not_allowed")
    .into_response()
}

/// Prometheus metrics (no key: scrapers do not send one; it shows model names and totals).
pub(super) async fn metrics(State(gateway): State<Arc<Gateway>>) -> Response {
    for group in gateway.router.groups() {
        for deployment in gateway.router.deployments(group) {
            let cooling = gateway.router.state().cooldown_left(deployment).await.ok().flatten().is_some();
            gateway.metrics.set_cooling(group, deployment, cooling);
        }
    }
    let mut response = gateway.metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}
