//! The HTTP clients under the [`Transport`](super::Transport): hyper's pooled client
//! directly (TCP, rustls, HTTP/1.1 and HTTP/2 by ALPN), or reqwest's when a proxy is
//! configured in the environment.
//!
//! Each request through reqwest's layers had its URL parsed three times and its future
//! boxed through several services; hyper's client takes the `http::Request` the adapters
//! build as it is. Proxies (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY` and `NO_PROXY`, as
//! curl reads them, or the system's settings on macOS and Windows) are reqwest's to honour,
//! tunnels and credentials included: with one set, every request goes through reqwest as
//! before. Without the `proxy` feature there is no reqwest: a proxy named in the
//! environment is then an error when the transport is built (rather than bypassed), and
//! the system's settings on macOS and Windows are not read.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::Uri;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::error::{Error, Result};

/// How many event loops can each have connections of their own (see [`super::set_lane`]).
pub(super) const LANES: usize = 64;

/// How long an idle pooled connection is kept.
const POOL_IDLE: Duration = Duration::from_secs(90);

const USER_AGENT: &str = concat!("switchyard/", env!("CARGO_PKG_VERSION"));

type Direct = HyperClient<Timed<hyper_rustls::HttpsConnector<HttpConnector>>, Full<Bytes>>;

/// One lane's client.
#[derive(Clone)]
pub(super) enum Client {
    /// hyper's client: no proxy in the environment (boxed: it is ten times reqwest's handle).
    Direct(Box<Direct>),
    /// reqwest's, which honours the environment's proxy settings.
    #[cfg(feature = "proxy")]
    Proxied(reqwest::Client),
}

/// A response head and its body, from either client.
pub(super) struct Response {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    pub body: NetBody,
}

/// A response body from the network.
pub enum NetBody {
    /// From hyper's client.
    Hyper(hyper::body::Incoming),
    /// From reqwest's.
    #[cfg(feature = "proxy")]
    Reqwest(reqwest::Response),
}

impl std::fmt::Debug for NetBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NetBody")
    }
}

impl NetBody {
    /// The next piece of the body, or `None` at its end (trailers are skipped).
    pub(super) async fn chunk(&mut self) -> std::result::Result<Option<Bytes>, BoxError> {
        match self {
            Self::Hyper(body) => loop {
                match body.frame().await {
                    None => return Ok(None),
                    Some(Err(e)) => return Err(Box::new(e)),
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            return Ok(Some(data));
                        }
                    }
                }
            },
            #[cfg(feature = "proxy")]
            Self::Reqwest(response) => response.chunk().await.map_err(|e| Box::new(e) as BoxError),
        }
    }
}

pub(super) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The proxy variables reqwest reads.
const PROXY_VARIABLES: [&str; 6] = ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"];

/// The first proxy variable the environment sets (an empty value is none).
fn proxy_variable() -> Option<&'static str> {
    PROXY_VARIABLES.into_iter().find(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
}

/// Whether the environment names a proxy that reqwest would use.
fn proxy_configured() -> bool {
    if cfg!(all(feature = "proxy", any(target_os = "macos", target_os = "windows"))) {
        // The system's proxy settings are read there too; only reqwest knows them.
        return true;
    }
    proxy_variable().is_some()
}

/// How the clients are built: one per lane, all alike.
#[derive(Clone, Copy, Debug)]
pub(super) struct Settings {
    pub connect: Duration,
    pub proxied: bool,
}

impl Settings {
    pub fn from_env(connect: Duration) -> Self {
        Self { connect, proxied: proxy_configured() }
    }

    pub fn build(self) -> Result<Client> {
        let mut tls = super::tls_config()?;
        if self.proxied {
            #[cfg(feature = "proxy")]
            return reqwest_client(tls, self.connect).map(Client::Proxied);
            #[cfg(not(feature = "proxy"))]
            return Err(Error::Config(format!(
                "the environment names a proxy ({}), and this build of switchyard cannot use one: \
                 enable its `proxy` feature, or unset the variable",
                proxy_variable().unwrap_or("a proxy variable")
            )));
        }
        // The connector sets ALPN itself (h2, then http/1.1), and refuses a config that
        // names protocols already.
        tls.alpn_protocols.clear();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = HyperClient::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(Timed { inner: https, after: self.connect });
        Ok(Client::Direct(Box::new(client)))
    }
}

#[cfg(feature = "proxy")]
fn reqwest_client(tls: rustls::ClientConfig, connect: Duration) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(connect)
        .pool_idle_timeout(POOL_IDLE)
        .tcp_nodelay(true)
        // A provider endpoint that redirects is not followed: the request's body and its
        // credential (`x-api-key`, `api-key`, `x-goog-api-key` are not stripped by
        // reqwest's cross-origin rule) would go to wherever the redirect points, and that
        // place's answer would reach the client (a read-anything SSRF). hyper's client
        // never follows one.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(USER_AGENT)
        .build()
        .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))
}

/// A client per lane, all with the same settings; lane 0's is built at once (so a bad
/// setting is an error when the transport is made), the others when first used.
pub(super) struct Lanes {
    first: Client,
    more: [OnceLock<Client>; LANES - 1],
    settings: Settings,
}

impl Lanes {
    pub fn new(settings: Settings) -> Result<Self> {
        Ok(Self { first: settings.build()?, more: std::array::from_fn(|_| OnceLock::new()), settings })
    }

    /// Lane `lane`'s client.
    pub fn get(&self, lane: usize) -> &Client {
        match lane.checked_sub(1) {
            None => &self.first,
            Some(i) => self.more[i % (LANES - 1)].get_or_init(|| {
                // The same settings built lane 0's client; should another build fail, the
                // lane shares lane 0's pool rather than fail its calls.
                self.settings.build().unwrap_or_else(|_| self.first.clone())
            }),
        }
    }

    pub fn proxied(&self) -> bool {
        self.settings.proxied
    }
}

/// Why a request could not be sent.
pub(super) enum SendError {
    /// Connecting (TCP and TLS) took longer than the connect timeout.
    ConnectTimeout,
    /// Anything else, with whether it happened while connecting.
    Failed { connect: bool, error: BoxError },
}

impl Client {
    /// Sends one request and waits for the response head.
    pub async fn send(&self, mut request: http::Request<Bytes>) -> std::result::Result<Response, SendError> {
        match self {
            Self::Direct(client) => {
                if !request.headers().contains_key(http::header::USER_AGENT) {
                    request.headers_mut().insert(http::header::USER_AGENT, http::HeaderValue::from_static(USER_AGENT));
                }
                let response = client.request(request.map(Full::new)).await.map_err(|e| {
                    if timed_out(&e) {
                        SendError::ConnectTimeout
                    } else {
                        SendError::Failed { connect: e.is_connect(), error: Box::new(e) }
                    }
                })?;
                let (parts, body) = response.into_parts();
                Ok(Response { status: parts.status, headers: parts.headers, body: NetBody::Hyper(body) })
            }
            #[cfg(feature = "proxy")]
            Self::Proxied(client) => {
                let request = reqwest::Request::try_from(request)
                    .map_err(|e| SendError::Failed { connect: false, error: Box::new(e) })?;
                let response = client.execute(request).await.map_err(|e| {
                    if e.is_timeout() {
                        SendError::ConnectTimeout
                    } else {
                        SendError::Failed { connect: e.is_connect(), error: Box::new(e) }
                    }
                })?;
                Ok(Response {
                    status: response.status(),
                    headers: response.headers().clone(),
                    body: NetBody::Reqwest(response),
                })
            }
        }
    }
}

/// Whether a send failed because connecting outlasted its deadline (see [`Timed`]).
fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if e.is::<ConnectTimedOut>() {
            return true;
        }
        cause = e.source();
    }
    false
}

/// The connect deadline, over TCP and TLS together (hyper's own covers TCP only).
#[derive(Clone)]
pub(super) struct Timed<C> {
    inner: C,
    after: Duration,
}

#[derive(Debug)]
struct ConnectTimedOut;

impl std::fmt::Display for ConnectTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connecting timed out")
    }
}

impl std::error::Error for ConnectTimedOut {}

impl<C> tower_service::Service<Uri> for Timed<C>
where
    C: tower_service::Service<Uri>,
    C::Future: Send + 'static,
    C::Error: Into<BoxError>,
{
    type Response = C::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = std::result::Result<C::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.inner.call(uri);
        let after = self.after;
        Box::pin(async move {
            match tokio::time::timeout(after, connecting).await {
                Ok(connected) => connected.map_err(Into::into),
                Err(_) => Err(Box::new(ConnectTimedOut) as BoxError),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With a proxy named, a build with the `proxy` feature goes through reqwest; one
    /// without it refuses to build a client rather than bypass the proxy. (`.ci/run` runs
    /// this without the feature too.)
    #[test]
    fn a_proxy_is_used_or_the_client_is_refused_never_bypassed() {
        let settings = Settings { connect: Duration::from_secs(1), proxied: true };
        let built = settings.build();
        #[cfg(feature = "proxy")]
        assert!(matches!(built, Ok(Client::Proxied(_))));
        #[cfg(not(feature = "proxy"))]
        match built {
            Err(Error::Config(message)) => assert!(message.contains("`proxy` feature"), "{message}"),
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("a client was built that would bypass the proxy"),
        }
        let direct = Settings { connect: Duration::from_secs(1), proxied: false }.build();
        assert!(matches!(direct, Ok(Client::Direct(_))));
    }
}
