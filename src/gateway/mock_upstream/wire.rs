//! Faults on the wire: the mock provider's answer, delivered the way a broken or hostile
//! upstream would deliver it. Each is what the gateway must answer in bounded time and
//! memory (the fault tests in `tests/gateway_faults.rs` say with what).

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::response::Response;
use futures_util::StreamExt as _;
use http::{HeaderValue, StatusCode, header};

use super::Misbehaviour;
use crate::transport::Body as RawBody;

/// How long a hang or a stall lasts: longer than any deadline a test or a client sets.
const HANG: Duration = Duration::from_secs(3600);

/// The pause between two bytes of a drip.
const DRIP: Duration = Duration::from_millis(250);

/// The path a redirect points at.
pub(super) const REDIRECTED: &str = "/redirected";

/// The answer to `request` with `fault` committed on the wire.
pub(super) async fn answer(fault: Misbehaviour, request: http::Request<Bytes>) -> Response {
    match fault {
        Misbehaviour::HangBeforeHeaders => {
            tokio::time::sleep(HANG).await;
            plain(StatusCode::GATEWAY_TIMEOUT, "text/plain", "hung")
        }
        Misbehaviour::Redirect if request.uri().path() != REDIRECTED => {
            let host = request.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
            let mut response = plain(StatusCode::TEMPORARY_REDIRECT, "text/plain", "moved");
            if let Ok(location) = HeaderValue::from_str(&format!("http://{host}{REDIRECTED}")) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
        }
        Misbehaviour::Redirect => followed(request).await,
        Misbehaviour::HugeRetryAfter => {
            let body = r#"{"error": {"message": "slow down", "type": "rate_limit_exceeded", "param": null, "code": "rate_limit_exceeded"}}"#;
            let mut response = plain(StatusCode::TOO_MANY_REQUESTS, "application/json", body);
            response.headers_mut().insert("retry-after-ms", HeaderValue::from_static("1e22"));
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("Fri, 31 Dec 9999 23:59:59 GMT"));
            response
        }
        Misbehaviour::Html200 => plain(
            StatusCode::OK,
            "text/html",
            "<!doctype html><html><head><title>Sign in</title></head><body>Please sign in to continue.</body></html>",
        ),
        Misbehaviour::StallMidBody | Misbehaviour::Drip | Misbehaviour::Reset | Misbehaviour::OversizeLine => {
            let raw = crate::provider::mock::serve(request).await;
            let bytes: Vec<u8> = match raw.body {
                RawBody::Chunks(chunks) => chunks.into_iter().flat_map(|c| c.bytes.to_vec()).collect(),
                RawBody::Http(_) => Vec::new(),
            };
            let mut response = Response::builder().status(raw.status);
            for (name, value) in &raw.headers {
                if name != header::CONTENT_LENGTH {
                    response = response.header(name, value);
                }
            }
            response.body(body(fault, bytes)).unwrap_or_else(|_| Response::new(Body::empty()))
        }
        _ => plain(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", "not a wire fault"),
    }
}

/// The body of an answer whose bytes are `bytes`, with `fault` committed.
fn body(fault: Misbehaviour, bytes: Vec<u8>) -> Body {
    let half = bytes.len() / 2;
    type Piece = Result<Bytes, std::io::Error>;
    match fault {
        Misbehaviour::StallMidBody => {
            let head = futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from(bytes[..half].to_vec()))]);
            let stall = futures_util::stream::once(async {
                tokio::time::sleep(HANG).await;
                Ok(Bytes::new())
            });
            Body::from_stream(head.chain(stall))
        }
        Misbehaviour::Drip => Body::from_stream(futures_util::stream::unfold(0usize, move |at| {
            let byte = bytes.get(at).copied();
            async move {
                let byte = byte?;
                tokio::time::sleep(DRIP).await;
                Some((Ok::<_, std::io::Error>(Bytes::from(vec![byte])), at + 1))
            }
        })),
        Misbehaviour::Reset => {
            let pieces: [Piece; 2] = [
                Ok(Bytes::from(bytes[..half].to_vec())),
                Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "the mock upstream cut the connection")),
            ];
            Body::from_stream(futures_util::stream::iter(pieces))
        }
        Misbehaviour::OversizeLine => {
            // `data: xxxx...` (or a JSON string) that never ends, a megabyte at a time.
            let start = futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"data: {\"x\": \""))]);
            let endless = futures_util::stream::repeat_with(|| Ok(Bytes::from(vec![b'x'; 1 << 20])));
            Body::from_stream(start.chain(endless))
        }
        _ => Body::from(bytes),
    }
}

/// What a client that followed the redirect would get: an answer that says so.
async fn followed(request: http::Request<Bytes>) -> Response {
    let stream = serde_json::from_slice::<serde_json::Value>(request.body()).ok().and_then(|v| v["stream"].as_bool());
    let text = "followed a redirect";
    if stream == Some(true) {
        let chunk = serde_json::json!({"id": "chatcmpl-redirected", "object": "chat.completion.chunk", "created": 1, "model": "redirected",
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": text}, "finish_reason": "stop"}]});
        return plain(StatusCode::OK, "text/event-stream", &format!("data: {chunk}\n\ndata: [DONE]\n\n"));
    }
    let answer = serde_json::json!({"id": "chatcmpl-redirected", "object": "chat.completion", "created": 1, "model": "redirected",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": 4}});
    plain(StatusCode::OK, "application/json", &answer.to_string())
}

fn plain(status: StatusCode, content_type: &'static str, body: &str) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
