//! `switchyard mock-upstream`: the built-in mock provider as an OpenAI-format HTTP server,
//! for load tests and end-to-end tests that want a real upstream process. An optional fixed
//! latency is added before each answer (first byte).

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::Response;

/// The mock upstream's routes: every path, as the mock provider answers it.
pub fn app(latency: Duration) -> axum::Router {
    axum::Router::new().fallback(answer).with_state(latency)
}

async fn answer(State(latency): State<Duration>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024 * 1024).await.unwrap_or_default();
    let request = http::Request::from_parts(parts, bytes);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let raw = crate::provider::mock::serve(request).await;
    let mut response = Response::builder().status(raw.status);
    for (name, value) in &raw.headers {
        response = response.header(name, value);
    }
    let body = match raw.body {
        crate::transport::Body::Chunks(chunks) => {
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
