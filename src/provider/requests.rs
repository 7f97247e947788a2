//! The HTTP pieces every adapter builds its requests from: URLs joined as LiteLLM joins
//! `api_base`, JSON posts and GETs, and credentials in headers that are never logged.

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method};
use secrecy::{ExposeSecret, SecretString};

use crate::error::{Error, Result};

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
