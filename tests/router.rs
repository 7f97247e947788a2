//! The router end to end: wiremock upstreams (and the in-process mock provider) on loopback,
//! state in memory and in Redis (127.0.0.1:6379, started by `.ci/run`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use switchyard::cache::{CacheControl, ResponseCache};
use switchyard::hooks::{CallEvent, EventKind, Hooks};
use switchyard::router::{CallOptions, Deployment, Router, RouterBuilder, SharedState, Strategy};
use switchyard::transport::RetryPolicy;
use switchyard::{ChatMessage, ChatRequest, Error, ErrorKind, ProviderKind};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const REDIS: &str = "redis://127.0.0.1:6379/0";

fn ok_body(text: &str) -> serde_json::Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": null}, "logprobs": null, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}
    })
}

fn error_body(kind: &str, code: Option<&str>) -> serde_json::Value {
    json!({"error": {"message": "nope", "type": kind, "param": null, "code": code}})
}

/// An OpenAI-format upstream answering every chat call with `response`.
async fn upstream(response: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST")).and(path("/v1/chat/completions")).respond_with(response).mount(&server).await;
    server
}

async fn ok_upstream(text: &str) -> MockServer {
    upstream(ResponseTemplate::new(200).set_body_json(ok_body(text))).await
}

fn at(server: &MockServer) -> Deployment {
    Deployment::new("openai/gpt-4o-mini").api_key("sk-test").base_url(format!("{}/v1", server.uri()))
}

async fn received(server: &MockServer) -> usize {
    server.received_requests().await.map_or(0, |r| r.len())
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_retries: 2,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        max_retry_after: Duration::from_secs(5),
    }
}

fn builder() -> RouterBuilder {
    Router::builder().read_env(false).retry(fast_retries())
}

fn build(builder: RouterBuilder) -> Router {
    builder.build().unwrap_or_else(|e| panic!("{e}"))
}

fn chat(model: &str, text: &str) -> ChatRequest {
    ChatRequest::new(model, vec![ChatMessage::user(text)])
}

fn prefix() -> String {
    format!("switchyard-router-test-{:016x}:", fastrand::u64(..))
}

async fn redis_state(prefix: &str) -> SharedState {
    SharedState::redis(REDIS, prefix)
        .await
        .unwrap_or_else(|e| panic!("Redis must run on 127.0.0.1:6379 for this test (.ci/run starts it): {e}"))
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out_then_the_retry_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after-ms", "200")
                .set_body_json(error_body("rate_limit_exceeded", Some("rate_limit_exceeded"))),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(ok_body("hi")))
        .mount(&server)
        .await;
    let router = build(builder().deployment("gpt", at(&server)));
    let started = std::time::Instant::now();
    let answer = router.chat(&chat("gpt", "hello")).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer.response.text(), Some("hi"));
    let report = &answer.report;
    assert_eq!(report.attempts.len(), 2);
    assert_eq!(report.attempts[0].error.as_ref().map(|e| e.0), Some(ErrorKind::RateLimited));
    assert!(report.attempts[1].error.is_none());
    assert!(started.elapsed() >= Duration::from_millis(200), "the retry waited for the Retry-After");
    assert_eq!(received(&server).await, 2);
}

#[tokio::test]
async fn a_500_on_one_deployment_is_retried_on_another() {
    let broken = upstream(ResponseTemplate::new(500).set_body_json(error_body("server_error", None))).await;
    let healthy = ok_upstream("from healthy").await;
    // Weight 0 is only used when nothing else can be: the broken one is picked first.
    let router = build(
        builder().deployment("gpt", at(&broken).id("broken")).deployment("gpt", at(&healthy).id("healthy").weight(0)),
    );
    let answer = router.chat(&chat("gpt", "hello")).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer.response.text(), Some("from healthy"));
    assert_eq!(answer.report.deployment.as_deref(), Some("healthy"));
    let tried: Vec<&str> = answer.report.attempts.iter().map(|a| a.deployment.as_str()).collect();
    assert_eq!(tried, ["broken", "healthy"]);
    assert_eq!(answer.report.attempts[0].error.as_ref().map(|e| e.0), Some(ErrorKind::Server));
    assert!(answer.report.fallbacks.is_empty());
}

#[tokio::test]
async fn a_context_length_error_moves_to_the_context_window_fallback_without_retrying() {
    let small = upstream(
        ResponseTemplate::new(400).set_body_json(error_body("invalid_request_error", Some("context_length_exceeded"))),
    )
    .await;
    let big = ok_upstream("from big").await;
    let unrelated = ok_upstream("wrong").await;
    let router = build(
        builder()
            .deployment("small", at(&small))
            .deployment("big", at(&big))
            .deployment("other", at(&unrelated))
            .fallbacks("small", ["other"])
            .context_window_fallbacks("small", ["big"]),
    );
    let answer = router.chat(&chat("small", "hello")).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer.response.text(), Some("from big"));
    assert_eq!(answer.report.fallbacks, ["big"]);
    assert_eq!(answer.report.attempts.len(), 2);
    assert_eq!(received(&small).await, 1, "context errors are not retried");
    assert_eq!(received(&unrelated).await, 0);
}

#[tokio::test]
async fn the_pre_call_check_skips_deployments_whose_window_is_too_small() {
    let tiny = ok_upstream("tiny").await;
    let roomy = ok_upstream("roomy").await;
    let router = build(
        builder()
            .deployment("gpt", at(&tiny).id("tiny").context_window(100))
            .deployment("gpt", at(&roomy).id("roomy").context_window(100_000)),
    );
    let long = "the quick brown fox jumps over the lazy dog ".repeat(40);
    for _ in 0..10 {
        let answer = router.chat(&chat("gpt", &long)).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(answer.report.deployment.as_deref(), Some("roomy"));
    }
    assert_eq!(received(&tiny).await, 0);
    // A short prompt fits both.
    let mut deployments = std::collections::HashSet::new();
    for _ in 0..40 {
        let answer = router.chat(&chat("gpt", "hi")).await.unwrap_or_else(|e| panic!("{e}"));
        deployments.extend(answer.report.deployment);
    }
    assert_eq!(deployments.len(), 2);
}

#[tokio::test]
async fn a_prompt_too_large_for_every_deployment_fails_before_any_call_or_falls_back() {
    let tiny = ok_upstream("tiny").await;
    let big = ok_upstream("big").await;
    let long = "the quick brown fox jumps over the lazy dog ".repeat(40);
    let router = build(builder().deployment("tiny", at(&tiny).context_window(100)));
    let err = router.chat(&chat("tiny", &long)).await.err().unwrap_or_else(|| panic!("too large"));
    assert_eq!(err.kind(), ErrorKind::ContextLengthExceeded);
    assert!(err.to_string().contains("`tiny`"), "{err}");
    assert_eq!(received(&tiny).await, 0);

    let router = build(
        builder()
            .deployment("tiny", at(&tiny).context_window(100))
            .deployment("big", at(&big))
            .context_window_fallbacks("tiny", ["big"]),
    );
    let answer = router.chat(&chat("tiny", &long)).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer.response.text(), Some("big"));
    assert_eq!(answer.report.fallbacks, ["big"]);
    assert_eq!(answer.report.attempts.len(), 1, "no attempt on the small window");
    assert_eq!(received(&tiny).await, 0);
}

#[tokio::test]
async fn a_failing_deployment_cools_down_and_comes_back() {
    let broken = upstream(ResponseTemplate::new(503).set_body_json(error_body("server_error", None))).await;
    let healthy = ok_upstream("ok").await;
    let router = build(
        builder()
            .allowed_fails(0)
            .cooldown(Duration::from_millis(400))
            .deployment("gpt", at(&broken).id("broken"))
            .deployment("gpt", at(&healthy).id("healthy").weight(0)),
    );
    let first = router.chat(&chat("gpt", "1")).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first.report.attempts.len(), 2);
    let left = router.state().cooldown_left("broken").await.unwrap_or_else(|e| panic!("{e}"));
    assert!(left.is_some(), "the broken deployment cools down");
    let second = router.chat(&chat("gpt", "2")).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(second.report.attempts.len(), 1, "the cooling deployment is skipped");
    assert_eq!(received(&broken).await, 1);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let third = router.chat(&chat("gpt", "3")).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(third.report.attempts[0].deployment, "broken", "back after the cooldown");
    assert_eq!(received(&broken).await, 2);
}

#[tokio::test]
async fn every_deployment_cooling_down_is_a_rate_limit_error_naming_the_group() {
    let limited = upstream(
        ResponseTemplate::new(429)
            .insert_header("retry-after", "30")
            .set_body_json(error_body("rate_limit_exceeded", None)),
    )
    .await;
    let router = build(builder().deployment("gpt", at(&limited)));
    let err = router.chat(&chat("gpt", "hello")).await.err().unwrap_or_else(|| panic!("rate limited"));
    // 30 s is beyond the policy's 5 s max_retry_after: no waiting, a clear error instead.
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    let again = router.chat(&chat("gpt", "hello")).await.err().unwrap_or_else(|| panic!("cooling down"));
    assert!(matches!(again, Error::Routing { kind: ErrorKind::RateLimited, .. }), "{again:?}");
    assert!(again.to_string().contains("`gpt`"), "{again}");
    assert!(again.retry_after().is_some_and(|w| w > Duration::from_secs(25)), "{:?}", again.retry_after());
    assert_eq!(received(&limited).await, 1, "the cooling deployment is not called again");
}

#[tokio::test]
async fn authentication_errors_are_not_retried_but_fall_back() {
    let unauthorised = upstream(
        ResponseTemplate::new(401).set_body_json(error_body("invalid_request_error", Some("invalid_api_key"))),
    )
    .await;
    let backup = ok_upstream("backup").await;
    let router = build(
        builder()
            .deployment("gpt", at(&unauthorised))
            .deployment("gpt", at(&unauthorised))
            .deployment("backup", at(&backup))
            .fallbacks("gpt", ["backup"]),
    );
    let answer = router.chat(&chat("gpt", "hello")).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer.response.text(), Some("backup"));
    assert_eq!(received(&unauthorised).await, 1);
    assert_eq!(answer.report.fallbacks, ["backup"]);
}

#[tokio::test]
async fn unknown_groups_and_bad_configs_are_clear_errors() {
    let router = build(builder().deployment("gpt", Deployment::new("mock/echo")));
    let err = router.chat(&chat("gtp", "hi")).await.err().unwrap_or_else(|| panic!("unknown"));
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("`gtp`") && err.to_string().contains("gpt"), "{err}");
    let err = builder()
        .deployment("gpt", Deployment::new("mock/echo"))
        .fallbacks("gpt", ["claude"])
        .build()
        .err()
        .unwrap_or_else(|| panic!("unknown fallback"));
    assert!(err.to_string().contains("`claude`"), "{err}");
    let err = builder().deployment("x", Deployment::new("nosuch/model")).build().err().unwrap_or_else(|| panic!("bad"));
    assert!(err.to_string().contains("`x/0`"), "{err}");
}

#[tokio::test]
async fn weighted_shuffle_follows_the_weights() {
    let router = build(
        builder()
            .deployment("m", Deployment::new("mock/echo").id("light").weight(1))
            .deployment("m", Deployment::new("mock/echo").id("heavy").weight(3)),
    );
    let mut counts: HashMap<String, usize> = HashMap::new();
    let n = 2000;
    for _ in 0..n {
        let answer = router.chat(&chat("m", "hi")).await.unwrap_or_else(|e| panic!("{e}"));
        *counts.entry(answer.report.deployment.unwrap_or_default()).or_default() += 1;
    }
    let heavy = counts.get("heavy").copied().unwrap_or(0) as f64 / f64::from(n);
    // Expected 0.75; four standard deviations of a binomial(2000, 0.75) share is 0.039.
    assert!((heavy - 0.75).abs() < 0.04, "heavy share {heavy}");
}

#[tokio::test]
async fn least_busy_spreads_concurrent_calls() {
    let router = build(
        builder()
            .strategy(Strategy::LeastBusy)
            .deployment("slow", Deployment::new("mock/slow-50").id("a"))
            .deployment("slow", Deployment::new("mock/slow-50").id("b")),
    );
    let requests: Vec<ChatRequest> = (0..10).map(|i| chat("slow", &format!("call {i}"))).collect();
    let answers = futures_util::future::join_all(requests.iter().map(|r| router.chat(r))).await;
    let mut counts: HashMap<String, usize> = HashMap::new();
    for answer in answers {
        let answer = answer.unwrap_or_else(|e| panic!("{e}"));
        *counts.entry(answer.report.deployment.unwrap_or_default()).or_default() += 1;
    }
    assert_eq!(counts.get("a"), Some(&5), "{counts:?}");
    assert_eq!(counts.get("b"), Some(&5), "{counts:?}");
}

#[tokio::test]
async fn two_routers_sharing_redis_see_one_cooldown_and_one_rpm_count() {
    let prefix = prefix();
    let limited = upstream(
        ResponseTemplate::new(429)
            .insert_header("retry-after", "30")
            .set_body_json(error_body("rate_limit_exceeded", None)),
    )
    .await;
    let healthy = ok_upstream("ok").await;
    let make = |state: SharedState| {
        build(
            builder()
                .state(state)
                .deployment("gpt", at(&limited).id("limited"))
                .deployment("gpt", at(&healthy).id("healthy").weight(0))
                .deployment("capped", Deployment::new("mock/echo").id("capped").rpm(2)),
        )
    };
    let one = make(redis_state(&prefix).await);
    let two = make(redis_state(&prefix).await);
    let first = one.chat(&chat("gpt", "hi")).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first.report.attempts.len(), 2, "router one met the 429");
    let second = two.chat(&chat("gpt", "hi")).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(second.report.attempts.len(), 1, "router two skips the deployment router one cooled down");
    assert_eq!(received(&limited).await, 1);

    // Keep the three rpm calls inside one wall-clock minute.
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    if secs % 60 > 55 {
        tokio::time::sleep(Duration::from_secs(61 - secs % 60)).await;
    }
    one.chat(&chat("capped", "1")).await.unwrap_or_else(|e| panic!("{e}"));
    two.chat(&chat("capped", "2")).await.unwrap_or_else(|e| panic!("{e}"));
    let err = one.chat(&chat("capped", "3")).await.err().unwrap_or_else(|| panic!("the shared rpm is spent"));
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert!(err.to_string().contains("rpm/tpm limit"), "{err}");
}

/// The cache, for one backend: miss, hit (free, marked), no-cache, no-store, TTL.
async fn cache_behaves(name: &str, cache: ResponseCache) {
    let server = ok_upstream("cached answer").await;
    let router = build(builder().cache(cache).deployment("gpt", at(&server)));
    let request = chat("gpt", &format!("cache test {}", fastrand::u64(..)));
    let miss = router.chat(&request).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(!miss.report.cache_hit, "{name}");
    let paid = miss.report.receipt.as_ref().map(|r| r.total.0).unwrap_or(0);
    assert!(paid > 0, "{name}: gpt-4o-mini is priced");
    let mut with_user = request.clone();
    with_user.user = Some("someone-else".into());
    let hit = router.chat(&with_user).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(hit.report.cache_hit, "{name}: user metadata is not part of the key");
    assert_eq!(hit.response.text(), Some("cached answer"));
    let receipt = hit.report.receipt.unwrap_or_else(|| panic!("{name}: a receipt for the hit"));
    assert!(receipt.cache_hit && receipt.total.0 == 0, "{name}: a hit costs nothing");
    assert!(hit.report.attempts.is_empty());
    assert_eq!(received(&server).await, 1, "{name}");

    let no_cache =
        CallOptions { cache: CacheControl { no_cache: true, ..CacheControl::default() }, ..CallOptions::default() };
    let fresh = router.chat_with(&request, no_cache).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(!fresh.report.cache_hit, "{name}");
    assert_eq!(received(&server).await, 2, "{name}");

    let other = chat("gpt", &format!("not stored {}", fastrand::u64(..)));
    let no_store =
        CallOptions { cache: CacheControl { no_store: true, ..CacheControl::default() }, ..CallOptions::default() };
    router.chat_with(&other, no_store).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    router.chat(&other).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(received(&server).await, 4, "{name}: no-store kept it out of the cache");

    let short = chat("gpt", &format!("short-lived {}", fastrand::u64(..)));
    let ttl = CallOptions {
        cache: CacheControl { ttl: Some(Duration::from_millis(300)), ..CacheControl::default() },
        ..CallOptions::default()
    };
    router.chat_with(&short, ttl).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(router.chat(&short).await.is_ok_and(|a| a.report.cache_hit), "{name}: hit within the TTL");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(router.chat(&short).await.is_ok_and(|a| !a.report.cache_hit), "{name}: expired after the TTL");
}

#[tokio::test]
async fn the_memory_cache_hits_misses_and_expires() {
    cache_behaves("memory", ResponseCache::memory(16 << 20, Duration::from_secs(60))).await;
}

#[tokio::test]
async fn the_redis_cache_hits_misses_and_expires() {
    let cache = ResponseCache::redis(REDIS, &prefix(), Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("Redis must run on 127.0.0.1:6379: {e}"));
    cache_behaves("redis", cache).await;
}

#[tokio::test]
async fn a_streamed_answer_is_cached_and_replayed_as_a_stream() {
    for (name, cache) in [
        ("memory", ResponseCache::memory(16 << 20, Duration::from_secs(60))),
        (
            "redis",
            ResponseCache::redis(REDIS, &prefix(), Duration::from_secs(60)).await.unwrap_or_else(|e| panic!("{e}")),
        ),
    ] {
        let router = build(builder().cache(cache).deployment("m", Deployment::new("mock/tools")));
        let mut request = chat("m", "What is the weather in Paris?");
        request.stream_options =
            Some(serde_json::from_value(json!({"include_usage": true})).unwrap_or_else(|e| panic!("{e}")));
        let first = router.chat_stream(&request).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!first.report().cache_hit);
        let first = first.collect_response().await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(first.report.receipt.is_some(), "{name}: mock is priced, the receipt comes at the end");
        // The answer is stored in the background once the stream ended.
        let mut replay = None;
        for _ in 0..50 {
            let stream = router.chat_stream(&request).await.unwrap_or_else(|e| panic!("{name}: {e}"));
            if stream.report().cache_hit {
                replay = Some(stream);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let replay = replay.unwrap_or_else(|| panic!("{name}: the streamed answer was cached"));
        let replayed = replay.collect_response().await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            serde_json::to_value(&replayed.response.choices).ok(),
            serde_json::to_value(&first.response.choices).ok(),
            "{name}: the replay assembles to the same answer, tool calls included"
        );
        assert_eq!(replayed.response.usage, first.response.usage, "{name}");
        assert!(replayed.report.receipt.is_some_and(|r| r.total.0 == 0), "{name}");
        // The same entry serves a whole (non-stream) request.
        let whole = router.chat(&request).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(whole.report.cache_hit, "{name}");
    }
}

#[tokio::test]
async fn a_stream_failing_before_its_first_chunk_is_retried_elsewhere() {
    let router = build(
        builder()
            .deployment("m", Deployment::new("mock/error-503").id("down"))
            .deployment("m", Deployment::new("mock/echo").id("up").weight(0)),
    );
    let stream = router.chat_stream(&chat("m", "hello there")).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stream.report().deployment.as_deref(), Some("up"));
    assert_eq!(stream.report().attempts.len(), 2);
    assert!(stream.report().time_to_first_token.is_some());
    let answer = stream.collect_response().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer.response.text(), Some("hello there"));
}

#[tokio::test]
async fn a_stream_failing_after_its_first_chunk_ends_with_a_typed_error() {
    let events = Arc::new(Mutex::new(Vec::<CallEvent>::new()));
    let seen = events.clone();
    let hooks = Hooks::new().on_event(move |e| {
        seen.lock().unwrap_or_else(|e| e.into_inner()).push(e.clone());
        Ok(())
    });
    let router = build(
        builder()
            .hooks(hooks)
            .deployment("m", Deployment::new("mock/truncated").id("cut"))
            .deployment("m", Deployment::new("mock/echo").id("whole").weight(0)),
    );
    let mut stream =
        router.chat_stream(&chat("m", "one two three four five six")).await.unwrap_or_else(|e| panic!("{e}"));
    let mut chunks = 0;
    let mut error = None;
    while let Some(item) = stream.next_chunk().await {
        match item {
            Ok(_) => chunks += 1,
            Err(e) => error = Some(e),
        }
    }
    assert!(chunks > 0);
    let error = error.unwrap_or_else(|| panic!("the cut stream ends with an error"));
    assert!(matches!(error, Error::Stream { .. }), "{error:?}");
    assert_eq!(stream.report().attempts.len(), 1, "no retry once chunks were passed on");
    let events = events.lock().unwrap_or_else(|e| e.into_inner());
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, EventKind::Failure);
    assert_eq!(events[0].deployment.as_deref(), Some("cut"));
    assert!(events[0].error_kind.is_some());
}

#[tokio::test]
async fn hooks_get_one_standard_event_per_call_and_cannot_fail_it() {
    let events = Arc::new(Mutex::new(Vec::<CallEvent>::new()));
    let (sync_seen, async_seen) = (events.clone(), Arc::new(Mutex::new(0usize)));
    let async_count = async_seen.clone();
    let hooks = Hooks::new()
        .on_event(|_| Err("this hook always fails".into()))
        .on_event(|_| panic!("this hook always panics"))
        .on_event(move |e| {
            sync_seen.lock().unwrap_or_else(|e| e.into_inner()).push(e.clone());
            Ok(())
        })
        .on_event_async(move |_| {
            let count = async_count.clone();
            async move {
                *count.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                Err::<(), _>("async hooks may fail too".into())
            }
        });
    let router = build(
        builder()
            .hooks(hooks)
            .deployment("m", Deployment::new("mock/echo").id("echo"))
            .deployment("bad", Deployment::new("mock/error-400")),
    );
    let answer = router.chat(&chat("m", "hello")).await.unwrap_or_else(|e| panic!("failing hooks fail no call: {e}"));
    let mut stream_request = chat("m", "streamed words here");
    stream_request.stream_options =
        Some(serde_json::from_value(json!({"include_usage": true})).unwrap_or_else(|e| panic!("{e}")));
    let streamed = router.chat_stream(&stream_request).await.unwrap_or_else(|e| panic!("{e}"));
    streamed.collect_response().await.unwrap_or_else(|e| panic!("{e}"));
    assert!(router.chat(&chat("bad", "hello")).await.is_err());
    tokio::time::sleep(Duration::from_millis(50)).await;

    let events = events.lock().unwrap_or_else(|e| e.into_inner());
    let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [EventKind::Success, EventKind::StreamEnd, EventKind::Failure]);
    let success = &events[0];
    assert_eq!(success.call_id, answer.report.call_id);
    assert_eq!((success.group.as_str(), success.deployment.as_deref()), ("m", Some("echo")));
    assert_eq!(success.provider, Some(ProviderKind::Mock));
    assert!(success.usage.is_some() && success.receipt.is_some() && !success.cache_hit);
    let stream_end = &events[1];
    assert!(stream_end.stream && stream_end.time_to_first_token.is_some());
    assert!(stream_end.usage.is_some(), "usage from the stream's last chunk");
    assert!(stream_end.receipt.is_some());
    assert_eq!(events[2].error_kind, Some(ErrorKind::InvalidRequest));
    assert_eq!(*async_seen.lock().unwrap_or_else(|e| e.into_inner()), 3);
}

#[tokio::test]
async fn every_answer_carries_a_receipt_and_embeddings_route_too() {
    let router = build(builder().deployment("m", Deployment::new("mock/echo")));
    let answer = router.chat(&chat("m", "price me")).await.unwrap_or_else(|e| panic!("{e}"));
    let receipt = answer.report.receipt.unwrap_or_else(|| panic!("mock/echo is priced"));
    assert_eq!(receipt.model, "mock/echo");
    assert!(receipt.lines.iter().any(|l| l.item == "prompt"));
    let request: switchyard::EmbeddingRequest =
        serde_json::from_value(json!({"model": "m", "input": ["a", "b"]})).unwrap_or_else(|e| panic!("{e}"));
    let embedded = router.embed(&request).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(embedded.response.data.len(), 2);
    assert_eq!(embedded.report.deployment.as_deref(), Some("m/0"));
}

#[tokio::test]
async fn a_call_dropped_before_its_end_still_ends_in_one_cancelled_event() {
    let events = Arc::new(Mutex::new(Vec::<CallEvent>::new()));
    let seen = events.clone();
    let router = build(
        builder()
            .hooks(Hooks::new().on_event(move |e| {
                seen.lock().unwrap_or_else(|e| e.into_inner()).push(e.clone());
                Ok(())
            }))
            .deployment("slow", Deployment::new("mock/slow-5000").id("slow"))
            .deployment("drip", Deployment::new("mock/drip-50").id("drip")),
    );
    // A whole answer the caller stops waiting for, mid-attempt.
    let request = chat("slow", "a prompt of some words");
    assert!(tokio::time::timeout(Duration::from_millis(50), router.chat(&request)).await.is_err());
    // A stream dropped after its first chunk.
    let mut stream =
        router.chat_stream(&chat("drip", "one two three four five six")).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(stream.next_chunk().await.is_some_and(|c| c.is_ok()));
    assert!(stream.next_chunk().await.is_some_and(|c| c.is_ok()));
    drop(stream);
    let events = events.lock().unwrap_or_else(|e| e.into_inner());
    let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [EventKind::Cancelled, EventKind::Cancelled]);
    let whole = &events[0];
    assert_eq!(whole.deployment.as_deref(), Some("slow"), "the attempt in flight is named");
    assert!(whole.usage_estimated);
    let usage = whole.usage.as_ref().unwrap_or_else(|| panic!("the prompt is estimated"));
    assert!(usage.prompt_tokens > 0 && usage.completion_tokens == 0, "{usage:?}");
    let streamed = &events[1];
    assert_eq!(streamed.deployment.as_deref(), Some("drip"));
    let usage = streamed.usage.as_ref().unwrap_or_else(|| panic!("what was streamed is estimated"));
    assert!(streamed.usage_estimated && usage.completion_tokens > 0, "{usage:?}");
    assert!(streamed.error.as_deref().is_some_and(|e| e.contains("dropped")), "{:?}", streamed.error);
}

/// A call's owner, recording what it was told and whether the hooks had run by then.
struct Owner {
    ended: Mutex<Vec<(EventKind, usize)>>,
    hooks_ran: Arc<Mutex<usize>>,
}

impl switchyard::hooks::CallOwner for Owner {
    fn ended(&self, event: &CallEvent) {
        let ran = *self.hooks_ran.lock().unwrap_or_else(|e| e.into_inner());
        self.ended.lock().unwrap_or_else(|e| e.into_inner()).push((event.kind, ran));
    }
}

#[tokio::test]
async fn a_calls_owner_is_told_its_end_before_the_hooks_and_comes_back_typed_in_them() {
    let hooks_ran = Arc::new(Mutex::new(0usize));
    let (count, typed) = (hooks_ran.clone(), Arc::new(Mutex::new(false)));
    let seen_typed = typed.clone();
    let hooks = Hooks::new().on_event(move |e| {
        *count.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        let any: Option<&dyn std::any::Any> = e.context.as_deref().map(|c| c as &dyn std::any::Any);
        *seen_typed.lock().unwrap_or_else(|e| e.into_inner()) = any.is_some_and(|a| a.is::<Owner>());
        Ok(())
    });
    let router = build(
        builder()
            .hooks(hooks)
            .deployment("m", Deployment::new("mock/echo"))
            .deployment("bad", Deployment::new("mock/error-400")),
    );
    let owner = Arc::new(Owner { ended: Mutex::default(), hooks_ran: hooks_ran.clone() });
    let options = || CallOptions { context: Some(owner.clone()), ..CallOptions::default() };
    router.chat_with(&chat("m", "hello"), options()).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(router.chat_with(&chat("bad", "hello"), options()).await.is_err());
    let stream = router.chat_stream_with(&chat("m", "a stream"), options()).await.unwrap_or_else(|e| panic!("{e}"));
    stream.collect_response().await.unwrap_or_else(|e| panic!("{e}"));
    let ended = owner.ended.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert_eq!(ended, vec![(EventKind::Success, 0), (EventKind::Failure, 1), (EventKind::StreamEnd, 2)]);
    assert!(*typed.lock().unwrap_or_else(|e| e.into_inner()), "a hook gets the owner back as its own type");
}

#[tokio::test]
async fn wildcard_groups_serve_the_names_they_match_and_exact_names_come_first() {
    let (claude, exact, any) = (ok_upstream("claude").await, ok_upstream("exact").await, ok_upstream("any").await);
    let router = builder()
        .deployment("claude-*", at(&claude))
        .deployment("claude-opus-4", at(&exact))
        .deployment("*", at(&any))
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    for (name, served_by, group) in [
        ("claude-sonnet-4-5-20250929", "claude", "claude-*"),
        ("claude-opus-4", "exact", "claude-opus-4"),
        ("llama-3", "any", "*"),
    ] {
        let answer = router
            .chat(&ChatRequest::new(name, vec![ChatMessage::user("hi")]))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(answer.response.text(), Some(served_by), "{name}");
        assert_eq!(answer.report.group, group, "{name}");
        assert_eq!(router.resolve(name), Some(group));
    }
    let without_catch_all = builder().deployment("claude-*", at(&claude)).build().unwrap_or_else(|e| panic!("{e}"));
    let err = without_catch_all.chat(&ChatRequest::new("gpt-4o", vec![ChatMessage::user("hi")])).await.err();
    assert_eq!(err.map(|e| e.kind()), Some(ErrorKind::NotFound));
}
