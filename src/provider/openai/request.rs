//! Encoding OpenAI-format requests (OpenAI, Azure, compatible vendors).

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::provider::{Ctx, ProviderKind, Quirks};
use crate::{ChatRequest, EmbeddingRequest};

/// The JSON body of a chat request: the caller's request with the provider's model id, the
/// stream flag this call needs, and the vendor's quirks applied. Nothing else is added.
pub fn chat_body(provider: ProviderKind, request: &ChatRequest, ctx: &Ctx<'_>, quirks: &Quirks) -> Result<Bytes> {
    if *quirks == Quirks::NONE {
        // No quirks: adjust the typed request and serialise it once (about half the cost of
        // going through a `serde_json::Value`).
        let mut outbound = request.clone();
        ctx.model.clone_into(&mut outbound.model);
        if ctx.stream {
            outbound.stream = Some(true);
        } else {
            outbound.stream = None;
            outbound.stream_options = None;
        }
        return serde_json::to_vec(&outbound).map(Bytes::from).map_err(|e| Error::invalid(e.to_string(), None));
    }
    let mut body = to_object(provider, request)?;
    body.insert("model".into(), Value::String(ctx.model.to_string()));
    if ctx.stream {
        body.insert("stream".into(), Value::Bool(true));
    } else {
        // A non-stream call: a `stream` flag from the caller would make the upstream stream,
        // and `stream_options` without streaming is an error at OpenAI.
        body.remove("stream");
        body.remove("stream_options");
    }
    quirks.apply(provider, &mut body, ctx.drop_params)?;
    serde_json::to_vec(&body).map(Bytes::from).map_err(|e| Error::invalid(e.to_string(), None))
}

/// The JSON body of an embeddings request, with the provider's model id.
pub fn embed_body(provider: ProviderKind, request: &EmbeddingRequest, ctx: &Ctx<'_>) -> Result<Bytes> {
    let mut body = to_object(provider, request)?;
    body.insert("model".into(), Value::String(ctx.model.to_string()));
    serde_json::to_vec(&body).map(Bytes::from).map_err(|e| Error::invalid(e.to_string(), None))
}

fn to_object(provider: ProviderKind, value: &impl Serialize) -> Result<Map<String, Value>> {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Error::Config(format!("{provider}: request did not serialize to an object"))),
        Err(e) => Err(Error::invalid(format!("request cannot be encoded: {e}"), None)),
    }
}

/// `base` joined with `path`, unless `base` already ends with it (LiteLLM's `api_base` rule).
pub fn join_url(base: &str, path: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with(path) { base.to_string() } else { format!("{base}{path}") }
}

/// A request with a JSON body and the given headers.
pub fn post_json(url: &str, body: Bytes, headers: &HeaderMap) -> Result<http::Request<Bytes>> {
    build(Method::POST, url, body, headers, true)
}

/// A GET request with the given headers.
pub fn get(url: &str, headers: &HeaderMap) -> Result<http::Request<Bytes>> {
    build(Method::GET, url, Bytes::new(), headers, false)
}

fn build(method: Method, url: &str, body: Bytes, headers: &HeaderMap, json: bool) -> Result<http::Request<Bytes>> {
    let mut request = http::Request::builder()
        .method(method)
        .uri(url)
        .body(body)
        .map_err(|e| Error::Config(format!("invalid URL `{url}`: {e}")))?;
    if json {
        request.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    for (name, value) in headers {
        request.headers_mut().append(name, value.clone());
    }
    Ok(request)
}

/// `Authorization: Bearer <key>`, marked sensitive so it is never logged.
pub fn bearer(headers: &mut HeaderMap, key: Option<&SecretString>) -> Result<()> {
    if let Some(key) = key {
        headers.insert(AUTHORIZATION, secret_header(&format!("Bearer {}", key.expose_secret()))?);
    }
    Ok(())
}

/// A header value holding a secret: validated, and flagged sensitive.
pub fn secret_header(value: &str) -> Result<HeaderValue> {
    let mut value = HeaderValue::from_str(value)
        .map_err(|_| Error::Config("the API key holds characters not allowed in an HTTP header".into()))?;
    value.set_sensitive(true);
    Ok(value)
}

/// Extra headers from configuration, checked once.
pub fn header_map(pairs: &[(String, String)]) -> Result<HeaderMap> {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        let name = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Error::Config(format!("invalid header name `{name}`")))?;
        let value =
            HeaderValue::from_str(value).map_err(|_| Error::Config(format!("invalid value for header `{name}`")))?;
        map.append(name, value);
    }
    Ok(map)
}
