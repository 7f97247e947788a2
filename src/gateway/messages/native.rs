//! Pass-through: a Messages request routed to an Anthropic-format upstream goes out as the
//! client sent it, with only the model and the credentials replaced; the client's
//! `anthropic-version` and `anthropic-beta` headers go with it and `?beta=true` is kept. The
//! answer and every stream event come back as the upstream sent them, event and block types
//! this version does not know included, while the router's decoder reads usage from the
//! same bytes for spend, budgets and metrics.
//!
//! Translation is used instead when a guardrail changed the request or answer, or reads a
//! streamed answer as it passes (it may hold back or rewrite text).

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Uri};
use serde_json::{Value, json};

use super::super::ApiFailure;
use super::super::admission::Metered;
use super::OURS;
use super::answer::StreamTranslator;
use crate::provider::native::Native;

/// The client's request as a [`Native`] body for Anthropic upstreams.
pub(super) fn request(
    bytes: Bytes,
    value: &Value,
    headers: &HeaderMap,
    uri: &Uri,
    untranslatable: Option<String>,
) -> Result<Native, ApiFailure> {
    let body = match value.as_object() {
        Some(object) if OURS.iter().any(|k| object.contains_key(*k)) => {
            let mut object = object.clone();
            object.retain(|k, _| !OURS.contains(&k.as_str()));
            Bytes::from(serde_json::to_vec(&object).map_err(|e| ApiFailure::bad_request(e.to_string()))?)
        }
        _ => bytes,
    };
    let native = Native::messages(body).map_err(|e| ApiFailure::bad_request(e.to_string()))?;
    // One header is sent on as it is; several are joined into one.
    let mut values = headers.get_all("anthropic-beta").iter();
    let betas = match (values.next(), values.next()) {
        (None, _) => None,
        (Some(one), None) => one.to_str().is_ok().then(|| one.clone()),
        (Some(_), Some(_)) => {
            let all: Vec<&str> = headers.get_all("anthropic-beta").iter().filter_map(|v| v.to_str().ok()).collect();
            HeaderValue::from_str(&all.join(",")).ok()
        }
    };
    let beta_query =
        uri.query().is_some_and(|q| form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "beta" && v == "true"));
    Ok(native
        .version(headers.get("anthropic-version").cloned())
        .betas(betas)
        .beta_query(beta_query)
        .untranslatable(untranslatable))
}

/// The upstream's stream bytes, forwarded as they are decoded; the stream is read through
/// the gateway's own layers (budget, guardrails), so a cut there still ends it. An error the
/// upstream did not send itself (a budget, a timeout) becomes an `error` event.
pub(super) fn events(
    stream: Box<Metered>,
    native: Arc<Native>,
) -> impl futures_core::Stream<Item = Result<Bytes, Infallible>> {
    futures_util::stream::unfold(Some((stream, native, ErrorScan::default())), |state| async move {
        let (mut stream, native, mut scan) = state?;
        loop {
            // What the first chunk's read brought in is served before waiting for more.
            let ready = native.take();
            if !ready.is_empty() {
                scan.see(&ready);
                return Some((Ok(ready), Some((stream, native, scan))));
            }
            match stream.next_chunk().await {
                Some(Ok(_)) => {}
                None => return Some((Ok(native.take()), None)),
                Some(Err(failure)) => {
                    let rest = native.take();
                    scan.see(&rest);
                    let mut out = rest.to_vec();
                    if !scan.seen {
                        let kind = if failure.kind == "guardrail_violation" { failure.kind } else { "api_error" };
                        let body = json!({"type": "error", "error": {"type": kind, "message": failure.message}});
                        StreamTranslator::event(&mut out, "error", &body);
                    }
                    return Some((Ok(Bytes::from(out)), None));
                }
            }
        }
    })
}

/// Whether the bytes forwarded so far hold an `error` event (however they were split).
#[derive(Default)]
struct ErrorScan {
    tail: Vec<u8>,
    seen: bool,
}

impl ErrorScan {
    const NEEDLE: &'static [u8] = b"event: error";

    fn see(&mut self, bytes: &[u8]) {
        if self.seen || bytes.is_empty() {
            return;
        }
        let keep = Self::NEEDLE.len() - 1;
        let contains = |hay: &[u8]| hay.windows(Self::NEEDLE.len()).any(|w| w == Self::NEEDLE);
        // Across the boundary: the last bytes before it and the first after it.
        self.tail.extend_from_slice(&bytes[..bytes.len().min(keep)]);
        self.seen = contains(&self.tail) || contains(bytes);
        if bytes.len() >= keep {
            self.tail.clear();
            self.tail.extend_from_slice(&bytes[bytes.len() - keep..]);
        } else if self.tail.len() > keep {
            self.tail.drain(..self.tail.len() - keep);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorScan;

    #[test]
    fn an_error_event_is_found_across_pieces() {
        let mut scan = ErrorScan::default();
        scan.see(b"event: ping\ndata: {}\n\nevent: er");
        assert!(!scan.seen);
        scan.see(b"ror\ndata: {}\n\n");
        assert!(scan.seen);
    }
}
