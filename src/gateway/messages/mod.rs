//! `POST /v1/messages`: Anthropic's Messages format in, any provider out, streams included.
//!
//! The request is translated to the OpenAI-shaped request the router speaks, and the answer
//! translated back; an attempt that sends the translation first checks the body against our
//! description of Anthropic's format (one that goes to an Anthropic-format upstream as it
//! came is that upstream's to judge). What maps:
//!
//! - `system` (string or text blocks, `cache_control` kept) to a system message; text, image
//!   (base64 or URL) and PDF document blocks to content parts; `tool_use` blocks to tool calls
//!   (input as JSON arguments); `tool_result` blocks to tool messages, in order; thinking
//!   blocks ride along as `thinking_blocks` (signatures kept) so Anthropic upstreams get
//!   them back.
//! - `tools` to function tools (`input_schema` as parameters), `tool_choice` auto / any / tool
//!   / none to auto / required / the named function / none (`disable_parallel_tool_use` to
//!   `parallel_tool_calls: false`), `stop_sequences` to `stop` (`metadata.user_id`, a hint, is dropped),
//!   `thinking.budget_tokens` to `reasoning_effort` (up to 1024 low, 2048 medium, more high:
//!   the budget is rounded to a level), `output_config.format` to a JSON-schema
//!   `response_format`. Server tools (web search and the like), `mcp_servers` and
//!   `container` are refused with a clear error rather than dropped; a system-role message
//!   among the messages (Claude Code sends them) stays a system message where it stands.
//! - Hints the translation cannot carry (`context_management`, `service_tier`,
//!   `thinking.display`, fields newer than this version) are dropped, each named in a debug
//!   log: they shape how an answer is produced on Anthropic's side, not what it says.
//! - Answers: reasoning to a `thinking` block, text, tool calls to `tool_use` blocks (with
//!   their arguments parsed), `finish_reason` to `stop_reason`, and usage with cache reads and
//!   writes apart from `input_tokens`, as Anthropic counts them.
//! - Streams: `message_start`, one `content_block_start` / `_delta` / `_stop` run per
//!   thinking, text or tool-use block (tool arguments as `input_json_delta`), `message_delta`
//!   with the stop reason and usage, `message_stop`; an error after the start is an `error`
//!   event. Usage is always asked of the upstream so the final counts are right.

use std::sync::Arc;

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

mod answer;
mod count;
mod native;
mod request;

use super::auth::Principal;
use super::coalesce::coalesce;
use super::envelope::anthropic_error;
use super::handlers::{Routed, body, route_chat, with_headers};
use super::{ApiFailure, Gateway};
use crate::router::CallOptions;
use answer::events;
pub use answer::{StreamTranslator, from_openai};
pub use count::COUNT_HEADER;
pub(super) use count::count_tokens;
pub use request::{Lenient, to_openai, to_openai_lenient};

/// Our fields in a Messages body (the guardrails a request asks for, as on the OpenAI
/// route); not Anthropic's, so never sent to it.
const OURS: [&str; 2] = ["guardrails", "disable_guardrails"];

pub(super) async fn messages(
    State(gateway): State<Arc<Gateway>>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    uri: Uri,
    raw: Result<Bytes, BytesRejection>,
) -> Response {
    match handle(&gateway, &principal, &headers, &uri, raw).await {
        Ok(response) => response,
        Err(failure) => anthropic_error(&failure),
    }
}

async fn handle(
    gateway: &Gateway,
    principal: &Principal,
    headers: &HeaderMap,
    uri: &Uri,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiFailure> {
    let bytes = body(raw)?;
    let value = parse_json(&bytes)?;
    // Checked against our description of the format only where an attempt translates it
    // (`Native::check_translatable`): passed through, the upstream judges it.
    let Lenient { mut request, untranslatable, unread } = to_openai_lenient(&value)?;
    for field in OURS {
        if let Some(names) = value.get(field) {
            request.extra.insert(field.into(), names.clone());
        }
    }
    let native = Arc::new(native::request(bytes, &value, headers, uri, untranslatable)?);
    let group = request.model.clone();
    let options = CallOptions { native: Some(native.clone()), ..CallOptions::default() };
    Ok(match Box::pin(route_chat(gateway, principal, Box::new(request), options, unread)).await? {
        Routed::Whole(response, mut headers) => {
            if native.answered() {
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                upstream_headers(&mut headers, &native);
                with_headers(Body::from(native.take()).into_response(), headers)
            } else {
                with_headers(axum::Json(from_openai(&response, &group)).into_response(), headers)
            }
        }
        Routed::Stream(stream, mut headers) => {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            let body = if native.answered() {
                upstream_headers(&mut headers, &native);
                Body::from_stream(coalesce(native::events(stream, native)))
            } else {
                Body::from_stream(coalesce(events(stream, group)))
            };
            with_headers(body.into_response(), headers)
        }
    })
}

/// The upstream's headers a passed-through answer keeps: its `request-id` (the gateway's own
/// id is `x-request-id`), so what a client logs can be looked up on the provider's side, and
/// the rate limits it reports (`anthropic-ratelimit-*`), as a client talking to Anthropic
/// would see them (the gateway's own limits for a virtual key are `x-ratelimit-*`, apart).
fn upstream_headers(headers: &mut HeaderMap, native: &crate::provider::native::Native) {
    for (name, value) in native.upstream_headers() {
        headers.append(name, value);
    }
}

/// The body as JSON (objects without duplicate keys), or the error that says what is wrong.
fn parse_json(bytes: &[u8]) -> Result<Value, ApiFailure> {
    if bytes.is_empty() {
        return Err(ApiFailure::bad_request("the request body is empty; send a JSON object"));
    }
    super::intake::strict_json(bytes).map_err(|e| {
        let what = if e.is_syntax() || e.is_eof() { "the request body is not valid JSON" } else { "invalid request" };
        ApiFailure::bad_request(format!("{what}: {e}"))
    })
}
