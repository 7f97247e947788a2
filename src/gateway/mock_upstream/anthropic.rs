//! The mock upstream in Anthropic's format: `POST /v1/messages` (whole and streamed) is
//! answered by the mock provider through the gateway's own translation (the request to
//! OpenAI's shape, the answer and each chunk back to Anthropic's), so a gateway's
//! pass-through route can be measured and tested against a real Anthropic-format process.

use std::collections::VecDeque;

use axum::body::{Body, Bytes};
use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};

use super::super::messages::{StreamTranslator, from_openai, to_openai};
use crate::transport::{Body as RawBody, Chunk};

/// Anthropic's error envelope with `status`.
fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({"type": "error", "error": {"type": kind, "message": message}});
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response
}

pub(super) async fn answer(request: http::Request<Bytes>) -> Response {
    let Ok(value) = serde_json::from_slice::<Value>(request.body()) else {
        return error(StatusCode::BAD_REQUEST, "invalid_request_error", "the body is not JSON");
    };
    let chat = match to_openai(&value) {
        Ok(chat) => chat,
        Err(failure) => return error(StatusCode::BAD_REQUEST, "invalid_request_error", &failure.message),
    };
    let (model, stream) = (chat.model.clone(), chat.stream == Some(true));
    let body = serde_json::to_vec(&chat).unwrap_or_default();
    let mut inner = http::Request::new(Bytes::from(body));
    *inner.method_mut() = http::Method::POST;
    *inner.uri_mut() = http::Uri::from_static("/v1/chat/completions");
    let raw = crate::provider::mock::serve(inner).await;
    let RawBody::Chunks(chunks) = raw.body else { return error(StatusCode::INTERNAL_SERVER_ERROR, "api_error", "") };
    if !raw.status.is_success() {
        let text = joined(&chunks);
        let message = serde_json::from_slice::<Value>(&text)
            .ok()
            .and_then(|v| v.pointer("/error/message").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_default();
        return error(raw.status, "invalid_request_error", &message);
    }
    let mut response = if stream {
        let translated = translate_stream(chunks, model);
        let mut response =
            Response::new(Body::from_stream(futures_util::stream::unfold(translated, |mut c| async move {
                let chunk = c.pop_front()?;
                if !chunk.delay.is_zero() {
                    tokio::time::sleep(chunk.delay).await;
                }
                Some((Ok::<Bytes, std::convert::Infallible>(chunk.bytes), c))
            })));
        response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/event-stream"));
        response
    } else {
        let text = joined(&chunks);
        let Ok(answer) = serde_json::from_slice::<crate::ChatResponse>(&text) else {
            return error(StatusCode::INTERNAL_SERVER_ERROR, "api_error", "the mock's answer did not decode");
        };
        let mut response = Response::new(Body::from(from_openai(&answer, &model).to_string()));
        response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
        response
    };
    *response.status_mut() = StatusCode::OK;
    response
}

/// A whole body's pieces, joined.
fn joined(chunks: &VecDeque<Chunk>) -> Vec<u8> {
    chunks.iter().flat_map(|c| c.bytes.iter().copied()).collect()
}

/// The mock's OpenAI stream (one `data:` event per chunk) as Anthropic's events, each with
/// the delay its chunk had.
fn translate_stream(chunks: VecDeque<Chunk>, model: String) -> VecDeque<Chunk> {
    let mut translator = StreamTranslator::new(model);
    let mut out = VecDeque::with_capacity(chunks.len() + 2);
    for chunk in chunks {
        let mut bytes = Vec::new();
        let text = String::from_utf8_lossy(&chunk.bytes);
        for data in text.split("\n\n").filter_map(|e| e.trim().strip_prefix("data: ")) {
            if data == "[DONE]" {
                translator.finish(&mut bytes);
            } else if let Ok(parsed) = serde_json::from_str::<crate::ChatChunk>(data) {
                translator.chunk(&parsed, &mut bytes);
            }
        }
        out.push_back(Chunk { delay: chunk.delay, bytes: Bytes::from(bytes) });
    }
    out
}
