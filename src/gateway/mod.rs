//! The gateway: an OpenAI-compatible HTTP server on the router (`switchyard serve`).
//!
//! The whole layer stack is assembled in [`app`], top to bottom in request order; the gateway
//! itself is built from a config in `build.rs`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router as Routes;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, get, on, post};
use secrecy::{ExposeSecret, SecretString};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::error::{Error, ErrorKind, Result};
use crate::router::Router;

mod admission;
mod auth;
mod build;
mod coalesce;
pub mod config;
mod env;
mod envelope;
pub mod guardrails;
mod handlers;
mod intake;
pub mod keys;
pub mod limits;
pub mod messages;
pub mod metrics;
pub mod mock_upstream;
mod models;
mod server;
mod settle;
pub mod spend;
pub mod store;
mod teams;
mod workers;

pub use config::Config;
pub use envelope::ApiFailure;
pub use server::ServerLimits;
pub use workers::{default_workers, serve_on_workers};

/// The database with no config: a SQLite file in the working directory.
pub const DEFAULT_DATABASE: &str = "sqlite://switchyard.db";

/// Requests in flight, over every route together, before the gateway sheds load (503).
pub const MAX_IN_FLIGHT: usize = 10_000;

/// The largest request body by default.
pub const DEFAULT_MAX_BODY: usize = 32 * 1024 * 1024;

/// What the handlers share.
pub struct Gateway {
    router: Router,
    master_key: SecretString,
    max_body: usize,
    /// Whether the master key was generated at start-up (to be printed once).
    generated_key: bool,
    store: store::Store,
    limits: Arc<limits::Limits>,
    /// Virtual keys by hash, for 10 s (negative answers too).
    keys: moka::future::Cache<String, Option<Arc<store::KeyRecord>>>,
    /// Teams by id, for 10 s.
    teams: moka::future::Cache<String, Option<Arc<store::TeamRecord>>>,
    /// The spend writer, taken at shutdown to drain it.
    writer: std::sync::Mutex<Option<spend::SpendWriter>>,
    /// Queues spend rows (calls refused before routing) and guardrail decisions.
    spend: spend::SpendSender,
    metrics: Arc<metrics::Metrics>,
    /// Ends every routed call: its metrics, spend row and admission's outcome.
    settler: Arc<settle::Settler>,
    /// The guardrails, compiled at start-up.
    guardrails: guardrails::Guardrails,
    /// How connections are served: deadlines, the cap, the shutdown deadline.
    server: ServerLimits,
    /// Bytes of request bodies being received.
    receiving: intake::Receiving,
    /// Whether answers carry `x-switchyard-model-api-base` (the upstream's URL).
    show_api_base: bool,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("router", &self.router)
            .field("max_body", &self.max_body)
            .finish_non_exhaustive()
    }
}

/// The models served with no config: the built-in mock, so the gateway works with no key.
impl Gateway {
    /// The router behind it.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// The master key.
    pub fn master_key(&self) -> &SecretString {
        &self.master_key
    }

    /// Whether the master key was generated (no config or environment gave one).
    pub fn master_key_was_generated(&self) -> bool {
        self.generated_key
    }

    /// The store.
    pub fn store(&self) -> &store::Store {
        &self.store
    }

    /// Whether `presented` is the master key, compared in constant time.
    fn is_master_key(&self, presented: &str) -> bool {
        use subtle::ConstantTimeEq as _;
        let expected = self.master_key.expose_secret().as_bytes();
        bool::from(presented.as_bytes().ct_eq(expected))
    }
}

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A route of the admin API: its method, path and handler, from one entry (so the method
/// listed is the method served).
type ApiRoute = (&'static str, &'static str, MethodRouter<Arc<Gateway>>);

fn route<H, T>(method: &'static str, path: &'static str, handler: H) -> ApiRoute
where
    H: axum::handler::Handler<T, Arc<Gateway>>,
    T: 'static,
{
    let filter = if method == "POST" { MethodFilter::POST } else { MethodFilter::GET };
    (method, path, on(filter, handler))
}

/// The admin routes (master key or an admin key), as `openapi/switchyard.yaml` lists them.
fn admin_routes() -> Vec<ApiRoute> {
    vec![
        route("POST", "/key/generate", keys::generate),
        route("GET", "/key/info", keys::info),
        route("POST", "/key/update", keys::update),
        route("POST", "/key/delete", keys::delete),
        route("GET", "/key/list", keys::list),
        route("GET", "/spend/logs", keys::spend_logs),
        route("GET", "/model/info", keys::model_info),
        route("POST", "/team/new", teams::new),
        route("GET", "/team/info", teams::info),
        route("POST", "/team/update", teams::update),
        route("POST", "/team/delete", teams::delete),
        route("GET", "/team/list", teams::list),
    ]
}

/// The routes of the admin document that need no key.
fn open_routes(document: Bytes) -> Vec<ApiRoute> {
    let serve_document = move || {
        let document = document.clone();
        async move { ([(axum::http::header::CONTENT_TYPE, "application/json")], document) }
    };
    vec![
        route("GET", "/health/liveness", handlers::liveness),
        route("GET", "/health/readiness", handlers::readiness),
        route("GET", "/openapi.json", serve_document),
    ]
}

/// Every route `openapi/switchyard.yaml` describes, as (method, path): the admin API, the
/// health checks and the document itself. A test checks the document lists exactly these.
pub fn admin_api_routes() -> Vec<(&'static str, &'static str)> {
    admin_routes().into_iter().chain(open_routes(Bytes::new())).map(|(method, path, _)| (method, path)).collect()
}

/// `openapi/switchyard.yaml` as JSON (converted by build.rs).
const ADMIN_DOCUMENT: &str = include_str!(concat!(env!("OUT_DIR"), "/switchyard.openapi.json"));

/// The admin document as this gateway serves it: the `models` a key may be given narrowed to
/// the model names served (the gateway refuses others).
fn admin_document(gateway: &Gateway) -> Bytes {
    let Ok(mut document) = serde_json::from_str::<serde_json::Value>(ADMIN_DOCUMENT) else {
        return Bytes::from_static(ADMIN_DOCUMENT.as_bytes());
    };
    let groups = gateway.router.groups();
    for request in ["KeyGenerateRequest", "KeyUpdateRequest"] {
        let pointer = format!("/components/schemas/{request}/properties/models/items");
        if !groups.is_empty()
            && let Some(items) = document.pointer_mut(&pointer).and_then(|s| s.as_object_mut())
        {
            items.insert("enum".into(), groups.clone().into());
        }
    }
    // Likewise the guardrails a key may name: those configured (none, when none is).
    let names: Vec<&str> = gateway.guardrails.names();
    for list in ["on", "off"] {
        let pointer = format!("/components/schemas/KeyGuardrails/properties/{list}");
        if let Some(array) = document.pointer_mut(&pointer).and_then(|s| s.as_object_mut()) {
            if names.is_empty() {
                array.insert("maxItems".into(), 0.into());
            } else if let Some(items) = array.get_mut("items").and_then(|i| i.as_object_mut()) {
                items.insert("enum".into(), names.clone().into());
            }
        }
    }
    serde_json::to_vec(&document).map(Bytes::from).unwrap_or_else(|_| Bytes::from_static(ADMIN_DOCUMENT.as_bytes()))
}

/// A request id for requests that come without one: 128 random bits from a per-thread
/// generator, as 32 hex digits. (`MakeRequestUuid` asks the OS for randomness on every
/// request, a system call each; a request id needs to be unique, not secret.)
#[derive(Clone, Copy, Debug)]
struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let mut id = String::with_capacity(32);
        crate::provider::ids::push_hex(&mut id, fastrand::u64(..), 16);
        crate::provider::ids::push_hex(&mut id, fastrand::u64(..), 16);
        axum::http::HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

/// The HTTP app: the layer stack, top to bottom in request order, then the routes.
pub fn app(gateway: Arc<Gateway>) -> Routes {
    let max_body = gateway.max_body;
    // Authenticated routes: everything under /v1 (unknown paths stay 404 through route_layer).
    let v1 = Routes::new()
        .route("/v1/chat/completions", post(handlers::chat_completions))
        .route("/chat/completions", post(handlers::chat_completions))
        .route("/v1/embeddings", post(handlers::embeddings))
        .route("/embeddings", post(handlers::embeddings))
        .route("/v1/messages", post(messages::messages))
        .route("/v1/messages/count_tokens", post(messages::count_tokens))
        .route("/v1/models", get(models::models))
        .route("/models", get(models::models))
        // The key first, then the body (read whole, bounded: `intake::gather`), in one layer.
        .route_layer(axum::middleware::from_fn_with_state(gateway.clone(), auth::authenticate));
    let mut admin = Routes::new();
    for (_, path, route) in admin_routes() {
        admin = admin.route(path, route);
    }
    let admin = admin.route_layer(axum::middleware::from_fn_with_state(gateway.clone(), auth::authenticate_admin));
    let document = admin_document(&gateway);
    let mut open = Routes::new().route("/metrics", get(handlers::metrics));
    for (_, path, route) in open_routes(document) {
        open = open.route(path, route);
    }
    let routes = v1
        .merge(admin)
        .merge(open)
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .with_state(gateway);
    // The stack wraps the routes as one service, once. (`Routes::layer` would wrap every
    // route's handler in its own copy of it, and a request would then pass through a boxed
    // service, and a boxed future, at each layer's boundary with axum's routing.)
    Routes::new().fallback_service(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), RandomRequestId))
            .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
            .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<axum::body::Body>| {
                tracing::debug_span!(
                    "request",
                    method = %request.method(),
                    uri = %logged_uri(request.uri()),
                    version = ?request.version()
                )
            }))
            .layer(CatchPanicLayer::custom(|_| {
                ApiFailure::new(ErrorKind::Server, "the gateway failed on this request; it has been logged")
                    .into_response()
            }))
            .layer(DefaultBodyLimit::max(max_body))
            // Past this many requests in flight, answer 503 at once rather than queue.
            .layer(axum::error_handling::HandleErrorLayer::new(|_: tower::BoxError| async {
                unavailable("the gateway is at its limit of requests in flight; retry shortly")
            }))
            .load_shed()
            .concurrency_limit(MAX_IN_FLIGHT)
            // Headers past the gateway's limit are refused before any route runs.
            .layer(tower::layer::layer_fn(intake::HeaderLimit))
            .service(routes),
    )
}

/// A request's URI as it is logged: the values of query parameters that can hold a secret
/// (`key`, `api_key`, `token`, ...), and any value that looks like a key, are replaced by
/// `[redacted]` (`/key/info?key=sk-...` must not put the key in a log).
fn logged_uri(uri: &axum::http::Uri) -> String {
    let Some(query) = uri.query() else { return uri.path().to_string() };
    let secret_name = |name: &str| {
        let name = name.to_ascii_lowercase();
        ["key", "token", "secret", "password", "auth", "signature", "credential"].iter().any(|s| name.contains(s))
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decoded = |part: &str| form_urlencoded::parse(part.as_bytes()).next().map(|(n, _)| n.into_owned());
            let hidden =
                secret_name(&decoded(name).unwrap_or_default()) || decoded(value).is_some_and(|v| v.starts_with("sk-"));
            if hidden { format!("{name}=[redacted]") } else { pair.to_string() }
        })
        .collect();
    format!("{}?{}", uri.path(), pairs.join("&"))
}

/// Serves `gateway` on `addr` with one event loop per core ([`serve_on_workers`]) until
/// ctrl-c or SIGTERM, then drains in-flight requests.
pub async fn serve(gateway: Gateway, addr: SocketAddr) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Config(format!("cannot listen on {addr}: {e}")))?;
    serve_on_workers(gateway, listener, default_workers(), shutdown_signal()).await
}

/// Serves on a bound listener, on the caller's runtime (one event loop), until `shutdown`
/// resolves; see [`serve_on_workers`].
pub async fn serve_on(
    gateway: Gateway,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    serve_on_workers(gateway, listener, 1, shutdown).await
}

/// The listener with `TCP_NODELAY` set on every accepted connection. Without it, Nagle's
/// algorithm holds back each small write (an SSE event) until the previous one is
/// acknowledged, and a client that delays its acknowledgements (most do, by up to 40 ms)
/// sees a stream arrive in 40 ms steps.
pub fn no_delay(listener: tokio::net::TcpListener) -> impl axum::serve::Listener<Addr = SocketAddr> {
    use axum::serve::ListenerExt as _;
    listener.tap_io(|stream| set_no_delay(stream))
}

/// Sets `TCP_NODELAY` on an accepted connection (see [`no_delay`]).
fn set_no_delay(stream: &tokio::net::TcpStream) {
    if let Err(err) = stream.set_nodelay(true) {
        tracing::debug!(error = %err, "cannot set TCP_NODELAY on a connection");
    }
}

/// Resolves on ctrl-c or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing the requests in flight");
}

/// A 503 answer, for readiness checks.
pub(crate) fn unavailable(message: impl Into<String>) -> Response {
    ApiFailure::new(ErrorKind::Overloaded, message).status(StatusCode::SERVICE_UNAVAILABLE).into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn logged_uris_hide_secrets_in_the_query() {
        let uri: axum::http::Uri =
            "/key/info?key=sk-abc123secret&limit=5&api_key=xyz&x=sk-zz".parse().unwrap_or_default();
        let logged = super::logged_uri(&uri);
        assert_eq!(logged, "/key/info?key=[redacted]&limit=5&api_key=[redacted]&x=[redacted]");
        assert!(!logged.contains("sk-"));
        let plain: axum::http::Uri = "/v1/chat/completions".parse().unwrap_or_default();
        assert_eq!(super::logged_uri(&plain), "/v1/chat/completions");
    }
}
