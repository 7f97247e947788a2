//! Intake: how a request's body is received, before any handler sees it (after the key is
//! checked, so nothing is read for a caller without one).
//!
//! - A declared `Content-Length` past the body limit is refused (413) before a byte of the
//!   body is read.
//! - A `Content-Type` that is not JSON is refused (415). JSON (`application/json`,
//!   `application/*+json`), none at all, and `application/x-www-form-urlencoded` (what
//!   `curl -d` sends when no type is given) are read as JSON.
//! - The body must arrive within [`ServerLimits::body_timeout`], with no pause longer than
//!   [`ServerLimits::body_idle`] (408), and be no larger than the limit (413).
//! - Bodies being received at once hold at most [`ServerLimits::max_receiving`] bytes over
//!   all connections; a request that would pass it is refused (503), so slow uploads
//!   cannot pin the memory.
//!
//! Every refusal is OpenAI's envelope (Anthropic's on `/v1/messages`) and closes the
//! connection, since the rest of the body is not read.
//!
//! [`ServerLimits::body_timeout`]: super::ServerLimits::body_timeout
//! [`ServerLimits::body_idle`]: super::ServerLimits::body_idle
//! [`ServerLimits::max_receiving`]: super::ServerLimits::max_receiving

use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;

use super::{ApiFailure, Gateway};
use crate::error::ErrorKind;

/// Bytes of request bodies being received, over every connection.
#[derive(Debug, Default)]
pub(super) struct Receiving(AtomicUsize);

/// Bytes one request holds of [`Receiving`], given back when dropped.
struct Held<'a> {
    receiving: &'a Receiving,
    bytes: usize,
}

impl Held<'_> {
    /// Takes `more` bytes, or `false` when that would pass `max`.
    fn take(&mut self, more: usize, max: usize) -> bool {
        let before = self.receiving.0.fetch_add(more, Ordering::AcqRel);
        if before.saturating_add(more) > max {
            self.receiving.0.fetch_sub(more, Ordering::AcqRel);
            return false;
        }
        self.bytes += more;
        true
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.receiving.0.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// A body as it is received. One that comes in one piece (most do) is passed on as it is,
/// not copied.
struct Gathered {
    first: Option<Bytes>,
    joined: bytes::BytesMut,
    declared: Option<u64>,
    max: usize,
}

impl Gathered {
    /// Adds a piece: refused past the body limit (413), or when the bytes beyond what the
    /// request declared would pass what all bodies being received may hold (503).
    fn push(&mut self, piece: Bytes, held: &mut Held<'_>, max_receiving: usize) -> Result<(), ApiFailure> {
        let len = self.first.as_ref().map_or(0, Bytes::len) + self.joined.len() + piece.len();
        if len > self.max {
            return Err(too_large(self.max));
        }
        let beyond_declared = len.saturating_sub(held.bytes);
        if beyond_declared > 0 && !held.take(beyond_declared, max_receiving) {
            return Err(busy());
        }
        match self.first.take() {
            None if self.joined.is_empty() => self.first = Some(piece),
            None => self.joined.extend_from_slice(&piece),
            Some(earlier) => {
                let expected = self.declared.and_then(|l| usize::try_from(l).ok()).unwrap_or(len);
                self.joined.reserve(expected.min(self.max));
                self.joined.extend_from_slice(&earlier);
                self.joined.extend_from_slice(&piece);
            }
        }
        Ok(())
    }

    fn finish(self) -> Bytes {
        self.first.unwrap_or_else(|| self.joined.freeze())
    }
}

/// The most bytes of header names and values a request may have. hyper's own limit (its
/// read buffer, about 400 KB) is approximate: a head that arrives in one read can pass it.
pub const MAX_HEADER_BYTES: usize = 64 << 10;

/// Refuses a request whose headers pass [`MAX_HEADER_BYTES`] (431, in an envelope, as hyper's
/// own refusal of a head past its buffer is rewritten to), before any route runs. A plain
/// tower service, not a `from_fn` middleware: it neither boxes nor allocates.
#[derive(Clone, Debug)]
pub(super) struct HeaderLimit<S>(pub S);

impl<S> tower::Service<Request> for HeaderLimit<S>
where
    S: tower::Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = futures_util::future::Either<std::future::Ready<Result<Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let bytes: usize = request.headers().iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum();
        if bytes <= MAX_HEADER_BYTES {
            return futures_util::future::Either::Right(self.0.call(request));
        }
        let mut response =
            ApiFailure::new(ErrorKind::InvalidRequest, "the request's headers are too large (or too many)")
                .status(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
                .code("headers_too_large")
                .into_response();
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        futures_util::future::Either::Left(std::future::ready(Ok(response)))
    }
}

/// Whether a body of this `Content-Type` is read as JSON.
fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
        || essence == "application/x-www-form-urlencoded"
        || essence.is_empty()
}

/// The request with its body read whole, within the gateway's limits (size, time, bytes
/// being received across requests), or the refusal (in Anthropic's envelope on its routes).
/// Run by the authentication middleware once the key is known ([`super::auth`]): one layer
/// for both, so a request pays for one boxed future and one service clone, not two.
pub(super) async fn gather(gateway: &Gateway, request: Request) -> Result<Request, Response> {
    if matches!(*request.method(), Method::GET | Method::HEAD | Method::DELETE | Method::OPTIONS)
        && request.headers().get(header::CONTENT_LENGTH).is_none_or(|v| v.as_bytes() == b"0")
        && request.headers().get(header::TRANSFER_ENCODING).is_none()
    {
        return Ok(request);
    }
    let anthropic = request.uri().path().starts_with("/v1/messages");
    let refuse = |failure: ApiFailure| {
        let mut response = if anthropic { super::envelope::anthropic_error(&failure) } else { failure.into_response() };
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        response
    };
    let max = gateway.max_body;
    let declared = request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max as u64) {
        return Err(refuse(too_large(max)));
    }
    if let Some(kind) = request.headers().get(header::CONTENT_TYPE)
        && !kind.to_str().is_ok_and(is_json)
    {
        let shown = String::from_utf8_lossy(kind.as_bytes()).into_owned();
        return Err(refuse(
            ApiFailure::new(
                ErrorKind::InvalidRequest,
                format!(
                    "the request body must be JSON (`Content-Type: application/json`), not `{}`",
                    super::envelope::shown(&shown)
                ),
            )
            .status(StatusCode::UNSUPPORTED_MEDIA_TYPE)
            .code("unsupported_media_type"),
        ));
    }
    let (parts, body) = request.into_parts();
    let limits = &gateway.server;
    let mut held = Held { receiving: &gateway.receiving, bytes: 0 };
    if let Some(len) = declared.and_then(|l| usize::try_from(l).ok())
        && !held.take(len, limits.max_receiving)
    {
        return Err(refuse(busy()));
    }
    let mut stream = body.into_data_stream();
    let mut gathered = Gathered { first: None, joined: bytes::BytesMut::new(), declared, max };
    // Most bodies are all there with the head: what is ready is taken without a timer.
    let mut ended = false;
    while let Some(next) = futures_util::FutureExt::now_or_never(stream.next()) {
        match next {
            None => {
                ended = true;
                break;
            }
            Some(Err(err)) => return Err(refuse(unreadable(&err))),
            Some(Ok(piece)) => {
                if let Err(failure) = gathered.push(piece, &mut held, limits.max_receiving) {
                    return Err(refuse(failure));
                }
            }
        }
    }
    if !ended {
        let read = async {
            loop {
                match tokio::time::timeout(limits.body_idle, stream.next()).await {
                    Err(_) => return Err(slow()),
                    Ok(None) => return Ok(()),
                    Ok(Some(Err(err))) => return Err(unreadable(&err)),
                    Ok(Some(Ok(piece))) => gathered.push(piece, &mut held, limits.max_receiving)?,
                }
            }
        };
        match tokio::time::timeout(limits.body_timeout, read).await {
            Ok(Ok(())) => {}
            Ok(Err(failure)) => return Err(refuse(failure)),
            Err(_) => return Err(refuse(slow())),
        }
    }
    let bytes = gathered.finish();
    drop(held);
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// Parses a JSON body into a `Value`, refusing duplicate keys in any object, as the typed
/// routes do (a `Value` would keep the last quietly, and two readers of the same body, a
/// guardrail and an upstream, could then see different requests).
pub(super) fn strict_json(bytes: &[u8]) -> serde_json::Result<serde_json::Value> {
    use serde::de::DeserializeSeed as _;
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = Strict.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// A JSON value whose objects have no duplicate keys.
struct Strict;

impl<'de> serde::de::DeserializeSeed<'de> for Strict {
    type Value = serde_json::Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Strict {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, serde_json::Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element_seed(Strict)? {
            items.push(item);
        }
        Ok(serde_json::Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format_args!(
                    "duplicate field `{}`",
                    super::envelope::shown(&key)
                )));
            }
            let value = map.next_value_seed(Strict)?;
            object.insert(key, value);
        }
        Ok(serde_json::Value::Object(object))
    }
}

fn unreadable(err: &impl std::fmt::Display) -> ApiFailure {
    ApiFailure::bad_request(format!("cannot read the request body: {err}"))
}

fn too_large(max: usize) -> ApiFailure {
    ApiFailure::new(
        ErrorKind::InvalidRequest,
        format!("the request body is larger than the gateway's limit of {} MB", max >> 20),
    )
    .status(StatusCode::PAYLOAD_TOO_LARGE)
    .code("request_too_large")
}

fn slow() -> ApiFailure {
    ApiFailure::new(ErrorKind::Timeout, "the request body did not arrive in time")
        .status(StatusCode::REQUEST_TIMEOUT)
        .code("request_timeout")
}

fn busy() -> ApiFailure {
    let mut failure =
        ApiFailure::new(ErrorKind::Overloaded, "the gateway is receiving too much at once; retry shortly")
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .code("receiving_too_much");
    failure.retry_after = Some(1);
    failure
}

#[cfg(test)]
mod tests {
    use super::{is_json, strict_json};

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        assert!(strict_json(br#"{"a": 1, "b": [{"c": 2}], "d": null, "e": 1.5, "f": -3}"#).is_ok());
        for bad in [&br#"{"a": 1, "a": 2}"#[..], br#"{"m": [{"x": 1, "x": 1}]}"#, br#"{"a": 1} trailing"#] {
            assert!(strict_json(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let err = strict_json(br#"{"model": "a", "model": "b"}"#).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("duplicate field `model`"), "{err}");
    }

    #[test]
    fn json_and_what_curl_sends_are_read_and_nothing_else() {
        for fine in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/merge-patch+json",
            "application/x-www-form-urlencoded",
            "",
        ] {
            assert!(is_json(fine), "{fine}");
        }
        for refused in [
            "text/html",
            "multipart/form-data; boundary=x",
            "application/xml",
            "text/plain",
            "application/octet-stream",
        ] {
            assert!(!is_json(refused), "{refused}");
        }
    }
}
