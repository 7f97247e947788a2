//! Retries, backoff, `Retry-After`, and per-attempt timeouts, against wiremock on loopback.

use std::time::{Duration, Instant};

use serde_json::json;
use switchyard::error::TimeoutPhase;
use switchyard::transport::{RetryPolicy, Timeouts};
use switchyard::{ChatMessage, ChatRequest, Client, Error, ErrorKind, ProviderKind, ProviderSettings};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn ok_body() -> serde_json::Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi", "refusal": null}, "logprobs": null, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    })
}

fn error_body(kind: &str, code: Option<&str>) -> serde_json::Value {
    json!({"error": {"message": "nope", "type": kind, "param": null, "code": code}})
}

fn fast_retries(max: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries: max,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        ..RetryPolicy::default()
    }
}

fn client(server: &MockServer, retry: RetryPolicy, timeouts: Timeouts) -> Client {
    Client::builder()
        .read_env(false)
        .retry(retry)
        .timeouts(timeouts)
        .provider(
            ProviderKind::OpenAi,
            ProviderSettings::with_api_key("sk-test").base_url(format!("{}/v1", server.uri())),
        )
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn request() -> ChatRequest {
    ChatRequest::new("openai/gpt-4o-mini", vec![ChatMessage::user("hi")])
}

async fn received(server: &MockServer) -> usize {
    server.received_requests().await.map_or(0, |r| r.len())
}

#[tokio::test]
async fn a_429_is_retried_after_the_wait_it_asks_for() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after-ms", "120")
                .set_body_json(error_body("tokens", Some("rate_limit_exceeded"))),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200).set_body_json(ok_body())).mount(&server).await;
    let started = Instant::now();
    let answer = client(&server, fast_retries(2), Timeouts::default()).chat(&request()).await;
    assert_eq!(answer.map(|a| a.text().map(str::to_string)).ok().flatten().as_deref(), Some("hi"));
    assert_eq!(received(&server).await, 2);
    assert!(
        started.elapsed() >= Duration::from_millis(120),
        "retried before the upstream's wait: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn server_errors_are_retried_then_reported_with_their_kind() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_json(error_body("server_error", None)))
        .mount(&server)
        .await;
    let err = client(&server, fast_retries(2), Timeouts::default()).chat(&request()).await.err();
    assert_eq!(received(&server).await, 3, "one attempt and two retries");
    let err = err.unwrap_or_else(|| panic!("expected an error"));
    assert_eq!((err.kind(), err.status()), (ErrorKind::Overloaded, Some(503)));
}

#[tokio::test]
async fn a_500_then_success_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_json(error_body("server_error", None)))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200).set_body_json(ok_body())).mount(&server).await;
    assert!(client(&server, fast_retries(1), Timeouts::default()).chat(&request()).await.is_ok());
    assert_eq!(received(&server).await, 2);
}

#[tokio::test]
async fn client_errors_and_exhausted_quota_are_not_retried() {
    for (status, body) in [
        (400, error_body("invalid_request_error", None)),
        (401, error_body("invalid_request_error", Some("invalid_api_key"))),
        (429, error_body("insufficient_quota", Some("insufficient_quota"))),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(status).set_body_json(body))
            .mount(&server)
            .await;
        let err = client(&server, fast_retries(3), Timeouts::default()).chat(&request()).await.err();
        assert_eq!(received(&server).await, 1, "status {status} was retried");
        assert!(err.is_some_and(|e| !e.is_retryable()), "status {status}");
    }
}

#[tokio::test]
async fn a_retry_after_longer_than_the_limit_is_returned_not_waited() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(429).insert_header("retry-after", "3600").set_body_json(error_body("requests", None)),
        )
        .mount(&server)
        .await;
    let err = client(&server, fast_retries(3), Timeouts::default()).chat(&request()).await.err();
    assert_eq!(received(&server).await, 1);
    assert_eq!(err.and_then(|e| e.retry_after()), Some(Duration::from_secs(3600)));
}

#[tokio::test]
async fn connection_refused_is_a_retryable_transport_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(9);
    let client = Client::builder()
        .read_env(false)
        .retry(fast_retries(1))
        .provider(
            ProviderKind::OpenAi,
            ProviderSettings::with_api_key("sk").base_url(format!("http://127.0.0.1:{port}/v1")),
        )
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let err = client.chat(&request()).await.err();
    assert!(matches!(&err, Some(Error::Transport { message, .. }) if message.contains("could not connect")), "{err:?}");
    assert!(err.is_some_and(|e| e.is_retryable()));
}

#[tokio::test]
async fn a_slow_response_head_hits_the_first_byte_timeout() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(ok_body()).set_delay(Duration::from_millis(800)))
        .mount(&server)
        .await;
    let timeouts = Timeouts { first_byte: Duration::from_millis(100), ..Timeouts::default() };
    let err = client(&server, RetryPolicy::none(), timeouts).chat(&request()).await.err();
    assert!(matches!(err, Some(Error::Timeout { phase: TimeoutPhase::FirstByte, .. })), "{err:?}");
}

#[tokio::test]
async fn the_total_timeout_bounds_retries() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(500)
                .set_body_json(error_body("server_error", None))
                .set_delay(Duration::from_millis(60)),
        )
        .mount(&server)
        .await;
    let timeouts = Timeouts { total: Some(Duration::from_millis(100)), ..Timeouts::default() };
    let retry = RetryPolicy { max_retries: 50, ..fast_retries(50) };
    let err = client(&server, retry, timeouts).chat(&request()).await.err();
    assert!(matches!(err, Some(Error::Timeout { phase: TimeoutPhase::Total, .. })), "{err:?}");
}

#[tokio::test]
async fn a_stream_that_fails_before_its_first_chunk_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_json(error_body("server_error", None)))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let sse = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200).insert_header("content-type", "text/event-stream").set_body_string(sse),
        )
        .mount(&server)
        .await;
    let stream = client(&server, fast_retries(1), Timeouts::default()).chat_stream(&request()).await;
    let answer = match stream {
        Ok(stream) => stream.collect_response().await,
        Err(e) => Err(e),
    };
    assert_eq!(answer.ok().and_then(|a| a.text().map(str::to_string)).as_deref(), Some("ok"));
    assert_eq!(received(&server).await, 2);
}

#[tokio::test]
async fn requests_carry_the_user_agent_and_the_stream_flag_only_when_streaming() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200).set_body_json(ok_body())).mount(&server).await;
    let mut req = request();
    req.stream = Some(true);
    req.stream_options = Some(switchyard::spec::openai::ChatCompletionStreamOptions {
        include_usage: Some(true),
        include_obfuscation: None,
        extra: Default::default(),
    });
    assert!(client(&server, RetryPolicy::none(), Timeouts::default()).chat(&req).await.is_ok());
    let sent = server.received_requests().await.unwrap_or_default();
    let agent = sent[0].headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(agent.starts_with("switchyard/"), "{agent}");
    let body: serde_json::Value = serde_json::from_slice(&sent[0].body).unwrap_or_default();
    assert!(
        body.get("stream").is_none() && body.get("stream_options").is_none(),
        "a non-stream call must not stream: {body}"
    );
}

/// Defect: an upstream's 307 to another origin was followed, and the body and the key
/// header went with it; the other place's answer reached the caller.
#[tokio::test]
async fn redirects_are_not_followed_and_nothing_goes_to_where_they_point() {
    let elsewhere = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(ok_body()))
        .mount(&elsewhere)
        .await;
    for status in [301, 302, 307, 308] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(status)
                    .insert_header("location", format!("{}/v1/chat/completions", elsewhere.uri())),
            )
            .mount(&server)
            .await;
        for kind in [ProviderKind::OpenAi, ProviderKind::Anthropic] {
            let client = Client::builder()
                .read_env(false)
                .retry(RetryPolicy::none())
                .provider(kind, ProviderSettings::with_api_key("sk-secret").base_url(format!("{}/v1", server.uri())))
                .build()
                .unwrap_or_else(|e| panic!("{e}"));
            let model = if kind == ProviderKind::OpenAi { "openai/gpt-4o-mini" } else { "anthropic/claude-haiku-4-5" };
            let err = client.chat(&ChatRequest::new(model, vec![ChatMessage::user("hi")])).await.err();
            let err = err.unwrap_or_else(|| panic!("{status} from {kind} is not an answer"));
            assert!(matches!(err, Error::Transport { .. }) && err.to_string().contains("redirect"), "{err}");
        }
    }
    assert_eq!(received(&elsewhere).await, 0, "nothing was sent where the redirects pointed");
}

/// Defect: one 1 GB `data:` line drove the gateway's memory to 2.1 GB: stream events are
/// now capped (16 MiB) and end the stream with a typed error.
#[tokio::test]
async fn a_stream_event_past_the_size_limit_ends_the_stream_with_a_typed_error() {
    let server = MockServer::start().await;
    let line = format!("data: {}", "x".repeat(switchyard::MAX_STREAM_EVENT + 1024));
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200).insert_header("content-type", "text/event-stream").set_body_string(line),
        )
        .mount(&server)
        .await;
    let client = client(&server, RetryPolicy::none(), Timeouts::default());
    let mut stream = client.chat_stream(&request()).await.unwrap_or_else(|e| panic!("{e}"));
    let first = stream.next_chunk().await;
    match first {
        Some(Err(Error::TooLarge { what, limit, .. })) => {
            assert_eq!((what, limit), ("stream event", switchyard::MAX_STREAM_EVENT));
        }
        other => panic!("expected a TooLarge error, got {other:?}"),
    }
    assert!(stream.next_chunk().await.is_none());
}
