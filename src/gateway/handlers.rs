//! Thin handlers: authenticate, parse (a bad body is an error envelope), route, answer.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{ApiFailure, Gateway};
use crate::cache::CacheControl;
use crate::error::ErrorKind;
use crate::router::{CallOptions, CallReport, RoutedStream};
use crate::{ChatRequest, EmbeddingRequest};

/// Deny by default: every `/v1` route needs the master key (as `Authorization: Bearer`,
/// `x-api-key` or `api-key`).
pub(super) async fn authenticate(State(gateway): State<Arc<Gateway>>, request: Request, next: Next) -> Response {
    let Some(presented) = presented_key(request.headers()) else {
        return ApiFailure::new(
            ErrorKind::Authentication,
            "no API key: send `Authorization: Bearer <key>` (or `x-api-key`)",
        )
        .code("missing_api_key")
        .into_response();
    };
    if !gateway.is_master_key(presented) {
        return ApiFailure::new(ErrorKind::Authentication, "the API key is not valid")
            .code("invalid_api_key")
            .into_response();
    }
    next.run(request).await
}

fn presented_key(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
    bearer
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .or_else(|| headers.get("api-key").and_then(|v| v.to_str().ok()))
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

/// The body, or the envelope for one that is too large or unreadable.
fn body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiFailure> {
    body.map_err(|rejection| {
        let status = rejection.status();
        let failure = ApiFailure::bad_request(format!("cannot read the request body: {}", rejection.body_text()));
        if status == StatusCode::PAYLOAD_TOO_LARGE { failure.status(status).code("request_too_large") } else { failure }
    })
}

/// Parses a JSON body into `T`, or says what is wrong with it.
fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiFailure> {
    if bytes.is_empty() {
        return Err(ApiFailure::bad_request("the request body is empty; send a JSON object"));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        let what = if e.is_syntax() || e.is_eof() { "the request body is not valid JSON" } else { "invalid request" };
        ApiFailure::bad_request(format!("{what}: {e}"))
    })
}

/// LiteLLM's per-request `cache: {"no-cache": true, "no-store": true, "ttl": 60}`.
fn take_cache_control(request: &mut ChatRequest) -> Result<CallOptions, ApiFailure> {
    let Some(value) = request.extra.remove("cache") else { return Ok(CallOptions::default()) };
    let bad = || {
        ApiFailure::bad_request("`cache` must be an object with `no-cache`, `no-store` (booleans) and `ttl` (seconds)")
    };
    let object = value.as_object().ok_or_else(bad)?;
    let flag =
        |name: &str| object.get(name).map(|v| v.as_bool().ok_or_else(bad)).transpose().map(|b| b.unwrap_or(false));
    let ttl = object
        .get("ttl")
        .map(|v| v.as_f64().filter(|s| s.is_finite() && *s >= 0.0).map(Duration::from_secs_f64).ok_or_else(bad))
        .transpose()?;
    Ok(CallOptions { cache: CacheControl { no_cache: flag("no-cache")?, no_store: flag("no-store")?, ttl } })
}

/// The `x-switchyard-*` headers of a routed answer.
fn report_headers(headers: &mut HeaderMap, report: &CallReport) {
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    set("x-switchyard-call-id", report.call_id.clone());
    if let Some(receipt) = &report.receipt {
        set("x-switchyard-response-cost", format!("{:.12}", receipt.total.as_dollars()));
    }
    if let Some(deployment) = &report.deployment {
        set("x-switchyard-model-id", deployment.clone());
    }
    if let Some(api_base) = &report.api_base {
        set("x-switchyard-model-api-base", api_base.clone());
    }
    set("x-switchyard-attempted-retries", report.attempts.len().saturating_sub(1).to_string());
    set("x-switchyard-attempted-fallbacks", report.fallbacks.len().to_string());
    let upstream: Duration = report.attempts.iter().map(|a| a.duration).sum();
    set(
        "x-switchyard-overhead-duration-ms",
        format!("{:.3}", report.latency.saturating_sub(upstream).as_secs_f64() * 1e3),
    );
    set("x-switchyard-cache-hit", report.cache_hit.to_string());
}

pub(super) async fn chat_completions(
    State(gateway): State<Arc<Gateway>>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiFailure> {
    let bytes = body(raw)?;
    let mut request: ChatRequest = parse(&bytes)?;
    let options = take_cache_control(&mut request)?;
    let group = request.model.clone();
    if request.stream == Some(true) {
        let stream = gateway.router.chat_stream_with(&request, options).await?;
        let mut headers = HeaderMap::new();
        report_headers(&mut headers, stream.report());
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        return Ok((headers, Body::from_stream(sse(stream, group))).into_response());
    }
    let mut answer = gateway.router.chat_with(&request, options).await?;
    // Clients see the name they asked for, whatever deployment answered.
    answer.response.model = group;
    let mut response = axum::Json(&answer.response).into_response();
    report_headers(response.headers_mut(), &answer.report);
    Ok(response)
}

/// The chunks as server-sent events, each passed on as it comes, then `[DONE]`; an error
/// after the first chunk is sent as an error event and ends the stream.
fn sse(
    stream: RoutedStream,
    group: String,
) -> impl futures_core::Stream<Item = Result<Bytes, std::convert::Infallible>> {
    futures_util::stream::unfold(Some(stream), move |state| {
        let group = group.clone();
        async move {
            let mut stream = state?;
            match stream.next_chunk().await {
                Some(Ok(mut chunk)) => {
                    chunk.model = group;
                    let json = serde_json::to_string(&chunk).unwrap_or_default();
                    Some((Ok(Bytes::from(format!("data: {json}\n\n"))), Some(stream)))
                }
                Some(Err(err)) => {
                    let body = ApiFailure::from(&err).body();
                    Some((Ok(Bytes::from(format!("data: {body}\n\n"))), None))
                }
                None => Some((Ok(Bytes::from_static(b"data: [DONE]\n\n")), None)),
            }
        }
    })
}

pub(super) async fn embeddings(
    State(gateway): State<Arc<Gateway>>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiFailure> {
    let bytes = body(raw)?;
    let request: EmbeddingRequest = parse(&bytes)?;
    let group = request.model.clone();
    let mut answer = gateway.router.embed(&request).await?;
    answer.response.model = group;
    let mut response = axum::Json(&answer.response).into_response();
    report_headers(response.headers_mut(), &answer.report);
    Ok(response)
}

pub(super) async fn models(State(gateway): State<Arc<Gateway>>) -> Response {
    let data: Vec<_> = gateway
        .router
        .groups()
        .into_iter()
        .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "switchyard"}))
        .collect();
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

pub(super) async fn liveness() -> Response {
    axum::Json(json!({"status": "healthy"})).into_response()
}

/// Ready when the shared state answers (never a billable call).
pub(super) async fn readiness(State(gateway): State<Arc<Gateway>>) -> Response {
    match gateway.router.state().ping().await {
        Ok(()) => axum::Json(json!({"status": "ready", "state": state_name(&gateway)})).into_response(),
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
    ApiFailure::new(ErrorKind::NotFound, format!("no route for {} {}", request.method(), request.uri().path()))
        .code("unknown_url")
        .into_response()
}

pub(super) async fn method_not_allowed(request: Request) -> Response {
    ApiFailure::new(
        ErrorKind::InvalidRequest,
        format!("{} is not allowed on {}", request.method(), request.uri().path()),
    )
    .status(StatusCode::METHOD_NOT_ALLOWED)
    .code("method_not_allowed")
    .into_response()
}
