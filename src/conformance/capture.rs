//! A recording proxy on loopback: the client under test is pointed at it, it forwards every
//! request to the endpoint being checked and keeps both sides byte for byte. The live checks
//! read the wire answers from it (so they validate what the endpoint sent, not what our
//! adapters made of it), and `record` writes them into a new case.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::Response;

use crate::error::{Error, Result};

/// One request and its answer, as they crossed the proxy.
#[derive(Clone, Debug)]
pub struct Exchange {
    /// The method.
    pub method: String,
    /// The path (below the endpoint's origin).
    pub path: String,
    /// The query string, if any.
    pub query: Option<String>,
    /// The request's headers, lower-case names, as sent.
    pub request_headers: Vec<(String, String)>,
    /// The request body.
    pub request_body: Bytes,
    /// The answer's status (502 when the endpoint could not be reached).
    pub status: u16,
    /// The answer's headers.
    pub response_headers: Vec<(String, String)>,
    /// The answer's body, whole.
    pub response_body: Bytes,
    /// Why the endpoint could not be reached, when it could not.
    pub error: Option<String>,
}

impl Exchange {
    /// A response header's value.
    pub fn response_header(&self, name: &str) -> Option<&str> {
        self.response_headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

#[derive(Clone)]
struct Forward {
    origin: String,
    http: reqwest::Client,
    exchanges: Arc<Mutex<Vec<Exchange>>>,
}

/// A running proxy; stops when dropped.
#[derive(Debug)]
pub struct Capture {
    base: String,
    exchanges: Arc<Mutex<Vec<Exchange>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Headers that belong to one connection, not to the request or answer.
const HOP_BY_HOP: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    // Asked for identity, so the bodies kept are the bytes the client decodes.
    "accept-encoding",
];

impl Capture {
    /// A proxy on 127.0.0.1 forwarding to `origin` (`https://api.example.com`), each request
    /// bounded by `timeout`.
    pub async fn start(origin: &str, timeout: Duration) -> Result<Self> {
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(crate::transport::tls_config()?)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .build()
            .map_err(|e| Error::Config(format!("cannot build the proxy's HTTP client: {e}")))?;
        let exchanges = Arc::new(Mutex::new(Vec::new()));
        let forward = Forward { origin: origin.trim_end_matches('/').to_string(), http, exchanges: exchanges.clone() };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| Error::Config(format!("cannot open the recording proxy: {e}")))?;
        let addr = listener.local_addr().map_err(|e| Error::Config(format!("recording proxy: {e}")))?;
        let app = axum::Router::new().fallback(relay).with_state(forward);
        let task = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, app).await {
                tracing::warn!(error = %err, "the recording proxy stopped");
            }
        });
        Ok(Self { base: format!("http://{addr}"), exchanges, task })
    }

    /// The proxy's origin (`http://127.0.0.1:PORT`).
    pub fn origin(&self) -> &str {
        &self.base
    }

    /// What crossed it so far, in order.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.exchanges.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

async fn relay(State(forward): State<Forward>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 256 << 20).await.unwrap_or_default();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().map(str::to_string);
    let request_headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter(|(name, _)| !HOP_BY_HOP.contains(&name.as_str()))
        .map(|(name, value)| (name.as_str().to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
        .collect();
    let url = match &query {
        Some(q) => format!("{}{path}?{q}", forward.origin),
        None => format!("{}{path}", forward.origin),
    };
    let mut outbound = forward.http.request(parts.method.clone(), &url).body(body.clone());
    for (name, value) in parts.headers.iter().filter(|(name, _)| !HOP_BY_HOP.contains(&name.as_str())) {
        outbound = outbound.header(name, value);
    }
    let mut exchange = Exchange {
        method: parts.method.to_string(),
        path,
        query,
        request_headers,
        request_body: body,
        status: 502,
        response_headers: Vec::new(),
        response_body: Bytes::new(),
        error: None,
    };
    let answered = match outbound.send().await {
        Ok(response) => {
            exchange.status = response.status().as_u16();
            exchange.response_headers = response
                .headers()
                .iter()
                .filter(|(name, _)| !HOP_BY_HOP.contains(&name.as_str()))
                .map(|(n, v)| (n.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                .collect();
            match response.bytes().await {
                Ok(bytes) => {
                    exchange.response_body = bytes;
                    true
                }
                Err(err) => {
                    exchange.error = Some(format!("the answer was cut off: {err}"));
                    false
                }
            }
        }
        Err(err) => {
            exchange.error = Some(format!("cannot reach {url}: {err}"));
            false
        }
    };
    let mut response = Response::builder().status(exchange.status);
    if answered {
        for (name, value) in &exchange.response_headers {
            response = response.header(name, value);
        }
    }
    let body = if answered {
        Body::from(exchange.response_body.clone())
    } else {
        Body::from(exchange.error.clone().unwrap_or_default())
    };
    forward.exchanges.lock().unwrap_or_else(PoisonError::into_inner).push(exchange);
    response.body(body).unwrap_or_else(|_| Response::new(Body::empty()))
}
