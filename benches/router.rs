//! Per-call costs of the router: the routing decision alone, a whole routed call against the
//! in-process mock (next to the same call without a router), response-cache lookups, and
//! token counting. Redis figures are measured when Redis answers on 127.0.0.1:6379.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use switchyard::cache::ResponseCache;
use switchyard::router::policy::{Candidate, Strategy, choose};
use switchyard::router::state::MinuteUsage;
use switchyard::router::{Deployment, Router, SharedState};
use switchyard::{ChatMessage, ChatRequest, Client, ProviderKind};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"))
}

fn request(model: &str) -> ChatRequest {
    ChatRequest::new(
        model,
        vec![ChatMessage::system("You are terse."), ChatMessage::user("What is the capital of France? One word.")],
    )
}

fn bench_decision(c: &mut Criterion) {
    let candidates: Vec<Candidate> = (0..4)
        .map(|i| Candidate {
            weight: i + 1,
            rpm: Some(1000),
            tpm: Some(100_000),
            usage: MinuteUsage { requests: u64::from(i) * 10, tokens: u64::from(i) * 1000 },
            in_flight: u64::from(4 - i),
            latency: Some(Duration::from_millis(100 + u64::from(i))),
            ..Candidate::default()
        })
        .collect();
    let mut rng = fastrand::Rng::with_seed(7);
    let mut group = c.benchmark_group("routing_decision");
    for (name, strategy) in [
        ("weighted_shuffle", Strategy::WeightedShuffle),
        ("least_busy", Strategy::LeastBusy),
        ("lowest_latency", Strategy::LowestLatency),
        ("usage_based", Strategy::UsageBased),
    ] {
        group.bench_function(format!("{name}_of_4"), |b| {
            b.iter(|| choose(strategy, black_box(&candidates), 500, &mut rng))
        });
    }
    group.finish();
}

fn bench_calls(c: &mut Criterion) {
    let rt = runtime();
    let client = Client::builder().read_env(false).build().unwrap_or_else(|e| panic!("{e}"));
    let router = Router::builder()
        .read_env(false)
        .deployment("m", Deployment::new("mock/echo").rpm(1_000_000_000))
        .deployment("m", Deployment::new("mock/echo").weight(2))
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let direct = request("mock/echo");
    let routed = request("m");
    let mut group = c.benchmark_group("routed_call");
    group.bench_function("client_chat_mock_no_router", |b| {
        b.iter(|| rt.block_on(client.chat(black_box(&direct))).unwrap_or_else(|e| panic!("{e}")))
    });
    group.bench_function("router_chat_mock_memory_state", |b| {
        b.iter(|| rt.block_on(router.chat(black_box(&routed))).unwrap_or_else(|e| panic!("{e}")))
    });
    group.finish();
}

fn bench_cache(c: &mut Criterion) {
    let rt = runtime();
    let memory = ResponseCache::memory(64 << 20, Duration::from_secs(3600));
    let router = Router::builder()
        .read_env(false)
        .cache(memory.clone())
        .deployment("m", Deployment::new("mock/echo"))
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let req = request("m");
    let answer = rt.block_on(router.chat(&req)).unwrap_or_else(|e| panic!("{e}"));
    let key = ResponseCache::key(&req).unwrap_or_else(|e| panic!("{e}"));
    rt.block_on(memory.put(&key, &answer.response, None)).unwrap_or_else(|e| panic!("{e}"));

    let mut group = c.benchmark_group("response_cache");
    group.bench_function("key_of_a_short_request", |b| b.iter(|| ResponseCache::key(black_box(&req))));
    group.bench_function("memory_get_hit", |b| b.iter(|| rt.block_on(memory.get(black_box(&key)))));
    group.bench_function("router_chat_answered_from_memory_cache", |b| {
        b.iter(|| rt.block_on(router.chat(black_box(&req))).unwrap_or_else(|e| panic!("{e}")))
    });
    match rt.block_on(ResponseCache::redis("redis://127.0.0.1:6379/0", "switchyard-bench:", Duration::from_secs(600))) {
        Ok(redis) => {
            rt.block_on(redis.put(&key, &answer.response, None)).unwrap_or_else(|e| panic!("{e}"));
            group.bench_function("redis_get_hit_loopback", |b| b.iter(|| rt.block_on(redis.get(black_box(&key)))));
        }
        Err(e) => eprintln!("skipping the Redis cache bench: {e}"),
    }
    if let Ok(state) = rt.block_on(SharedState::redis("redis://127.0.0.1:6379/0", "switchyard-bench:")) {
        let router = Router::builder()
            .read_env(false)
            .state(state)
            .deployment("m", Deployment::new("mock/echo").rpm(1_000_000_000))
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        group.bench_function("router_chat_mock_redis_state_with_rpm", |b| {
            b.iter(|| rt.block_on(router.chat(black_box(&req))).unwrap_or_else(|e| panic!("{e}")))
        });
    }
    group.finish();
}

fn bench_tokens(c: &mut Criterion) {
    let text = "The quick brown fox jumps over the lazy dog, naïvely. ".repeat(75);
    let req = ChatRequest::new("gpt-4o", vec![ChatMessage::system("Be brief."), ChatMessage::user(text.as_str())]);
    // Load the tokenizer before measuring.
    switchyard::tokens::count_chat(ProviderKind::OpenAi, "gpt-4o", &req);
    let mut group = c.benchmark_group("token_count");
    group.bench_function("count_chat_4kb_o200k", |b| {
        b.iter(|| switchyard::tokens::count_chat(ProviderKind::OpenAi, "gpt-4o", black_box(&req)))
    });
    group.bench_function("upper_bound_4kb", |b| b.iter(|| switchyard::tokens::chat_upper_bound(black_box(&req))));
    group.finish();
}

criterion_group!(benches, bench_decision, bench_calls, bench_cache, bench_tokens);
criterion_main!(benches);
