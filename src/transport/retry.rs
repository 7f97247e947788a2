//! Retry policy: exponential backoff with jitter that honours the upstream's `Retry-After`.

use std::time::{Duration, SystemTime};

use http::HeaderMap;

/// When and how often to try a request again.
///
/// A request is retried on 408, 409, 429 and 5xx answers (unless the error says it cannot
/// succeed, like an exhausted quota), on connection failures and on first-byte timeouts, never
/// after a stream has started. The wait is the upstream's `Retry-After` when it gives one
/// (up to [`RetryPolicy::max_retry_after`]; a longer wait is returned to the caller as the
/// error instead), otherwise `initial_backoff * 2^attempt`, capped at `max_backoff`, with
/// "equal jitter" (half fixed, half random) so that clients do not retry in lockstep.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 disables retrying).
    pub max_retries: u32,
    /// The first backoff.
    pub initial_backoff: Duration,
    /// The largest backoff.
    pub max_backoff: Duration,
    /// The longest `Retry-After` that is waited out; a longer one ends the retries.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 2,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// No retries.
    pub fn none() -> Self {
        Self { max_retries: 0, ..Self::default() }
    }

    /// How long to wait before retry number `attempt` (0 for the first retry), or `None`
    /// when no retry should be made.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Option<Duration> {
        if attempt >= self.max_retries {
            return None;
        }
        if let Some(wait) = retry_after {
            return (wait <= self.max_retry_after).then_some(wait);
        }
        let exp = self.initial_backoff.saturating_mul(2u32.saturating_pow(attempt));
        let capped = exp.min(self.max_backoff);
        let half = capped / 2;
        Some(half + half.mul_f64(fastrand::f64()))
    }
}

/// The wait an upstream asks for: `retry-after-ms` (Azure), `retry-after` in seconds or as an
/// HTTP date, or none. Every form is capped at [`crate::bounds::MAX_RETRY_AFTER`] (one day):
/// `retry-after-ms: 1e22` or a date in the year 9999 must not cool a deployment down for
/// millennia, nor overflow a clock.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    retry_after_at(headers, SystemTime::now())
}

pub(crate) fn retry_after_at(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    use crate::bounds::{MAX_RETRY_AFTER, capped_secs};
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(wait) = text("retry-after-ms")
        .and_then(|v| v.parse::<f64>().ok())
        .and_then(|ms| capped_secs(ms / 1000.0, MAX_RETRY_AFTER))
    {
        return Some(wait);
    }
    let value = text("retry-after")?;
    if let Ok(secs) = value.parse::<f64>() {
        return capped_secs(secs, MAX_RETRY_AFTER);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO).min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn reads_seconds_milliseconds_and_http_dates() {
        assert_eq!(retry_after(&headers(&[("retry-after", "7")])), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(&headers(&[("retry-after", "1.5")])), Some(Duration::from_millis(1500)));
        assert_eq!(
            retry_after(&headers(&[("retry-after-ms", "250"), ("retry-after", "9")])),
            Some(Duration::from_millis(250))
        );
        let now = httpdate::parse_http_date("Sun, 22 Nov 2026 12:00:00 GMT").ok();
        let h = headers(&[("retry-after", "Sun, 22 Nov 2026 12:00:30 GMT")]);
        assert_eq!(now.and_then(|now| retry_after_at(&h, now)), Some(Duration::from_secs(30)));
        let past = headers(&[("retry-after", "Sun, 22 Nov 2026 11:00:00 GMT")]);
        assert_eq!(now.and_then(|now| retry_after_at(&past, now)), Some(Duration::ZERO));
    }

    #[test]
    fn every_form_is_capped_at_a_day() {
        let day = Some(crate::bounds::MAX_RETRY_AFTER);
        assert_eq!(retry_after(&headers(&[("retry-after-ms", "1e22")])), day);
        assert_eq!(retry_after(&headers(&[("retry-after-ms", "1e300")])), day);
        assert_eq!(retry_after(&headers(&[("retry-after", "1e300")])), day);
        assert_eq!(retry_after(&headers(&[("retry-after", "Fri, 31 Dec 9999 23:59:59 GMT")])), day);
        assert_eq!(
            retry_after(&headers(&[("retry-after-ms", "inf"), ("retry-after", "2")])),
            Some(Duration::from_secs(2))
        );
    }

    #[test]
    fn ignores_garbage() {
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")])), None);
        assert_eq!(retry_after(&headers(&[("retry-after", "-3")])), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered_within_bounds() {
        let policy = RetryPolicy { max_retries: 10, ..RetryPolicy::default() };
        for attempt in 0..10 {
            let full = policy.initial_backoff.saturating_mul(1 << attempt).min(policy.max_backoff);
            for _ in 0..50 {
                let d = policy.delay(attempt, None).unwrap_or_default();
                assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?} not in [{:?}, {full:?}]", full / 2);
            }
        }
    }

    #[test]
    fn honours_retry_after_up_to_the_limit_and_stops_after_max_retries() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.delay(0, Some(Duration::from_secs(3))), Some(Duration::from_secs(3)));
        assert_eq!(policy.delay(0, Some(Duration::from_secs(600))), None);
        assert_eq!(policy.delay(2, None), None);
        assert_eq!(RetryPolicy::none().delay(0, None), None);
    }
}
