//! Durations from outside: `Retry-After` in every form, `retry-after-ms`, key and budget
//! durations (`30d`), and the bounds every one passes through. Never a panic, never past
//! the bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::bounds::{MAX_CONFIG_WAIT, MAX_RETRY_AFTER, capped_secs, deadline, secs_within};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(value) = http::HeaderValue::from_str(text) {
        for name in ["retry-after", "retry-after-ms"] {
            let mut headers = http::HeaderMap::new();
            headers.insert(name, value.clone());
            let wait = switchyard::transport::retry::retry_after(&headers);
            assert!(wait.is_none_or(|w| w <= MAX_RETRY_AFTER), "{name}: {text:?} -> {wait:?}");
        }
    }
    let _ = switchyard::gateway::keys::parse_duration(text);
    if let Ok(seconds) = text.trim().parse::<f64>() {
        assert!(capped_secs(seconds, MAX_RETRY_AFTER).is_none_or(|d| d <= MAX_RETRY_AFTER));
        let within = secs_within(seconds, true, MAX_CONFIG_WAIT);
        assert!(within.is_none_or(|d| d <= MAX_CONFIG_WAIT));
        if let Some(wait) = capped_secs(seconds, std::time::Duration::MAX) {
            let _ = deadline(std::time::Instant::now(), wait);
        }
    }
});
