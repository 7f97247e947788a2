//! The router's shared state: the same behaviour in memory and in Redis (127.0.0.1:6379,
//! started by `.ci/run`), and two instances sharing Redis see one cooldown and one count.

use std::time::Duration;

use switchyard::router::state::{MinuteUsage, SharedState};

const REDIS: &str = "redis://127.0.0.1:6379/0";

/// A Redis state under a prefix of its own, so parallel tests do not meet.
async fn redis(prefix: &str) -> SharedState {
    SharedState::redis(REDIS, prefix)
        .await
        .unwrap_or_else(|e| panic!("Redis must run on 127.0.0.1:6379 for this test (.ci/run starts it): {e}"))
}

fn prefix() -> String {
    format!("switchyard-test-{:016x}", fastrand::u64(..))
}

async fn backends() -> Vec<(&'static str, SharedState)> {
    vec![("memory", SharedState::memory()), ("redis", redis(&prefix()).await)]
}

#[tokio::test]
async fn cooldowns_start_report_what_is_left_and_end() {
    for (name, state) in backends().await {
        assert_eq!(state.cooldown_left("d1").await.ok(), Some(None), "{name}: no cooldown yet");
        state.start_cooldown("d1", Duration::from_millis(300)).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        let left = state.cooldown_left("d1").await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(left.is_some_and(|l| l <= Duration::from_millis(300)), "{name}: {left:?}");
        assert_eq!(state.cooldown_left("d2").await.ok(), Some(None), "{name}: only d1 cools down");
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(state.cooldown_left("d1").await.ok(), Some(None), "{name}: the cooldown ended");
    }
}

#[tokio::test]
async fn failures_count_within_their_window_and_then_start_again() {
    for (name, state) in backends().await {
        let window = Duration::from_millis(300);
        for expected in 1..=3 {
            assert_eq!(state.record_failure("d1", window).await.ok(), Some(expected), "{name}");
        }
        assert_eq!(state.record_failure("d2", window).await.ok(), Some(1), "{name}: per deployment");
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(state.record_failure("d1", window).await.ok(), Some(1), "{name}: a new window");
    }
}

#[tokio::test]
async fn usage_adds_up_per_deployment() {
    for (name, state) in backends().await {
        assert_eq!(state.usage("d1").await.ok(), Some(MinuteUsage::default()), "{name}");
        state.add_usage("d1", 1, 120).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        let total = state.add_usage("d1", 1, 30).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        // A minute boundary between the two calls would split them; it is 1 in 60 that the
        // second lands alone, so accept either whole split, never a wrong sum.
        assert!(
            total == MinuteUsage { requests: 2, tokens: 150 } || total == MinuteUsage { requests: 1, tokens: 30 },
            "{name}: {total:?}"
        );
        let read = state.usage("d1").await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            read == total || read == MinuteUsage { requests: 0, tokens: 0 },
            "{name}: read {read:?} after {total:?}"
        );
        assert_eq!(state.usage("d2").await.ok(), Some(MinuteUsage::default()), "{name}: per deployment");
    }
}

#[tokio::test]
async fn two_instances_sharing_redis_see_one_cooldown_and_one_count() {
    let shared = prefix();
    let (a, b) = (redis(&shared).await, redis(&shared).await);
    a.start_cooldown("azure-east", Duration::from_secs(30)).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(b.cooldown_left("azure-east").await.ok().flatten().is_some(), "b sees a's cooldown");
    a.add_usage("azure-west", 1, 10).await.unwrap_or_else(|e| panic!("{e}"));
    let seen = b.add_usage("azure-west", 1, 10).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(seen.requests == 2 || seen.requests == 1, "one count across instances: {seen:?}");
    assert_eq!(a.record_failure("azure-west", Duration::from_secs(30)).await.ok(), Some(1));
    assert_eq!(b.record_failure("azure-west", Duration::from_secs(30)).await.ok(), Some(2));

    // Memory state is per process: another instance sees nothing.
    let (m1, m2) = (SharedState::memory(), SharedState::memory());
    m1.start_cooldown("azure-east", Duration::from_secs(30)).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m2.cooldown_left("azure-east").await.ok(), Some(None));
}

#[tokio::test]
async fn a_redis_that_is_not_there_is_a_clear_error() {
    let err = SharedState::redis("redis://127.0.0.1:1/0", "x").await.err().map(|e| e.to_string());
    assert!(err.as_deref().is_some_and(|e| e.contains("redis")), "{err:?}");
    let bad = SharedState::redis("not a url", "x").await.err().map(|e| e.to_string());
    assert!(bad.as_deref().is_some_and(|e| e.contains("not a url")), "{bad:?}");
}
