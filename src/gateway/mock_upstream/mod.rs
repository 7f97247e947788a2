//! `switchyard mock-upstream`: the built-in mock provider as an OpenAI-format HTTP server
//! (and an Anthropic-format one on `POST /v1/messages`), for load tests and end-to-end tests
//! that want a real upstream process. An optional fixed
//! latency is added before each answer (first byte), and it can be told to misbehave: in
//! what it says, so that the live conformance checks can be shown to catch each fault, or
//! on the wire (hangs, stalls, drips, resets, oversize lines, redirects, huge
//! waits, HTML), so that the gateway can be shown to answer each in bounded time and memory.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use serde_json::Value;

mod anthropic;
mod wire;

/// A fault the mock upstream can be told to commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Misbehaviour {
    /// `finish_reason` is `done`, which is not one of OpenAI's.
    WrongFinishReason,
    /// Streams stop halfway, with no `[DONE]`.
    BrokenStream,
    /// Tool-call arguments are not JSON.
    BadToolArguments,
    /// No usage, in answers or at the end of streams that asked for it.
    MissingUsage,
    /// No answer at all: not even the response head comes (for an hour).
    HangBeforeHeaders,
    /// The head and half the body come, then nothing (for an hour).
    StallMidBody,
    /// The body comes one byte at a time, a byte every 250 ms.
    Drip,
    /// The head and half the body come, then the connection is cut.
    Reset,
    /// A stream's (or answer's) body is one line that never ends.
    OversizeLine,
    /// A `307` to this server's `/redirected`, which answers as if the redirect had been
    /// followed (a client that follows it shows "followed a redirect").
    Redirect,
    /// A 429 asking to wait `1e22` ms, or until the year 9999.
    HugeRetryAfter,
    /// A 200 whose body is an HTML page (a captive portal, a misrouted proxy).
    Html200,
}

impl Misbehaviour {
    /// Every fault, with its name on the command line.
    pub const ALL: [(&'static str, Self); 12] = [
        ("wrong-finish-reason", Self::WrongFinishReason),
        ("broken-stream", Self::BrokenStream),
        ("bad-tool-arguments", Self::BadToolArguments),
        ("missing-usage", Self::MissingUsage),
        ("hang-before-headers", Self::HangBeforeHeaders),
        ("stall-mid-body", Self::StallMidBody),
        ("drip", Self::Drip),
        ("reset", Self::Reset),
        ("oversize-line", Self::OversizeLine),
        ("redirect", Self::Redirect),
        ("huge-retry-after", Self::HugeRetryAfter),
        ("html-200", Self::Html200),
    ];

    /// The fault with this name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, m)| *m)
    }

    /// Whether the fault is in how the answer travels, not in what it says.
    fn on_the_wire(self) -> bool {
        !matches!(self, Self::WrongFinishReason | Self::BrokenStream | Self::BadToolArguments | Self::MissingUsage)
    }

    /// Applies the fault to one JSON answer or stream chunk; `false` drops the chunk.
    fn apply(self, value: &mut Value) -> bool {
        match self {
            Self::WrongFinishReason => {
                for choice in value.get_mut("choices").and_then(Value::as_array_mut).into_iter().flatten() {
                    if choice.get("finish_reason").is_some_and(|f| !f.is_null()) {
                        choice["finish_reason"] = Value::String("done".into());
                    }
                }
                true
            }
            Self::BadToolArguments => {
                for choice in value.get_mut("choices").and_then(Value::as_array_mut).into_iter().flatten() {
                    for part in ["message", "delta"] {
                        let calls = choice.pointer_mut(&format!("/{part}/tool_calls")).and_then(Value::as_array_mut);
                        for call in calls.into_iter().flatten() {
                            if let Some(arguments) = call.pointer_mut("/function/arguments")
                                && arguments.as_str().is_some_and(|a| !a.is_empty())
                            {
                                // A fragment (or whole) missing its closing: `{"input": "x` never parses.
                                let text =
                                    arguments.as_str().unwrap_or_default().trim_end_matches(['}', '"']).to_string();
                                *arguments = Value::String(text);
                            }
                        }
                    }
                }
                true
            }
            Self::MissingUsage => {
                let usage_only = value.get("choices").and_then(Value::as_array).is_some_and(Vec::is_empty)
                    && value.get("usage").is_some_and(|u| !u.is_null());
                if let Some(object) = value.as_object_mut() {
                    object.remove("usage");
                }
                !usage_only
            }
            _ => true,
        }
    }
}

#[derive(Clone, Copy)]
struct Settings {
    latency: Duration,
    misbehaviour: Option<Misbehaviour>,
}

/// The mock upstream's routes: every path, as the mock provider answers it.
pub fn app(latency: Duration) -> axum::Router {
    misbehaving(latency, None)
}

/// [`app`], committing `misbehaviour` in every answer.
pub fn misbehaving(latency: Duration, misbehaviour: Option<Misbehaviour>) -> axum::Router {
    axum::Router::new().fallback(answer).with_state(Settings { latency, misbehaviour })
}

async fn answer(State(settings): State<Settings>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024 * 1024).await.unwrap_or_default();
    let request = http::Request::from_parts(parts, bytes);
    if !settings.latency.is_zero() {
        tokio::time::sleep(settings.latency).await;
    }
    if let Some(fault) = settings.misbehaviour.filter(|m| m.on_the_wire()) {
        return wire::answer(fault, request).await;
    }
    if request.uri().path().ends_with("/v1/messages") && settings.misbehaviour.is_none() {
        return anthropic::answer(request).await;
    }
    let raw = crate::provider::mock::serve(request).await;
    let mut response = Response::builder().status(raw.status);
    for (name, value) in &raw.headers {
        if settings.misbehaviour.is_none() || name != http::header::CONTENT_LENGTH {
            response = response.header(name, value);
        }
    }
    let body = match raw.body {
        crate::transport::Body::Chunks(mut chunks) => {
            if let Some(fault) = settings.misbehaviour {
                if fault == Misbehaviour::BrokenStream && chunks.len() > 1 {
                    let keep = (chunks.len() / 2).max(1);
                    chunks.truncate(keep);
                }
                chunks.retain_mut(|chunk| match rewrite(fault, &chunk.bytes) {
                    Some(bytes) => {
                        chunk.bytes = bytes;
                        true
                    }
                    None => false,
                });
            }
            Body::from_stream(futures_util::stream::unfold(chunks, |mut chunks| async move {
                let chunk = chunks.pop_front()?;
                if !chunk.delay.is_zero() {
                    tokio::time::sleep(chunk.delay).await;
                }
                Some((Ok::<Bytes, std::convert::Infallible>(chunk.bytes), chunks))
            }))
        }
        crate::transport::Body::Http(_) => Body::empty(),
    };
    response.body(body).unwrap_or_else(|_| Response::new(Body::empty()))
}

/// A chunk (a whole JSON body, or one `data: {...}` event) with the fault applied; `None`
/// when the fault drops it.
fn rewrite(fault: Misbehaviour, bytes: &Bytes) -> Option<Bytes> {
    let text = std::str::from_utf8(bytes).ok()?;
    let (prefix, json, suffix) = match text.strip_prefix("data: ") {
        Some(rest) => ("data: ", rest.trim_end(), "\n\n"),
        None => ("", text, ""),
    };
    let Ok(mut value) = serde_json::from_str::<Value>(json) else {
        return Some(bytes.clone()); // `[DONE]`, or a body that is not JSON
    };
    if !fault.apply(&mut value) {
        return None;
    }
    Some(Bytes::from(format!("{prefix}{value}{suffix}")))
}
