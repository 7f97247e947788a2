//! The bounds on durations that come from outside: an upstream's `Retry-After`, a client's
//! cache TTL, a config's timeouts. A number such as `1e300` seconds is valid JSON and a
//! valid header, and `Duration::from_secs_f64` panics on it (so does `Instant + Duration`
//! past the clock's range); every such value passes through here first.
//!
//! Values from an upstream are capped (the upstream is not ours to refuse); values from a
//! client or a config are refused past their range with an error naming the field, since
//! silently serving another value than the one asked for would surprise whoever set it.

use std::time::{Duration, Instant};

/// The longest wait an upstream may ask for (`Retry-After` in seconds or as a date,
/// `retry-after-ms`, Gemini's `retryDelay`, Azure's "retry after N seconds"): one day. A
/// longer one is read as one day, so a deployment that says "come back in 8,000 years"
/// cools down for a day and is then tried again.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);

/// The longest time anything is cached or counted for: a year.
pub const MAX_TTL: Duration = Duration::from_secs(365 * 86_400);

/// The longest timeout or cooldown a config may set: a day.
pub const MAX_CONFIG_WAIT: Duration = Duration::from_secs(86_400);

/// `seconds` as a duration, capped at `max`; `None` for a negative or non-finite number.
pub fn capped_secs(seconds: f64, max: Duration) -> Option<Duration> {
    if !seconds.is_finite() || seconds < 0.0 {
        return None;
    }
    // Compared as floats first: `from_secs_f64` is only called on a value it can hold.
    Some(if seconds >= max.as_secs_f64() { max } else { Duration::from_secs_f64(seconds) })
}

/// `seconds` as a duration when it is within `(0 or min, max]`, else `None`.
pub fn secs_within(seconds: f64, allow_zero: bool, max: Duration) -> Option<Duration> {
    let low_ok = if allow_zero { seconds >= 0.0 } else { seconds > 0.0 };
    (seconds.is_finite() && low_ok && seconds <= max.as_secs_f64()).then(|| Duration::from_secs_f64(seconds))
}

/// A config's number of seconds, checked: the error names the field and the range.
pub fn config_secs(field: &str, seconds: f64, allow_zero: bool, max: Duration) -> crate::Result<Duration> {
    secs_within(seconds, allow_zero, max).ok_or_else(|| {
        let low = if allow_zero { "from 0" } else { "more than 0" };
        crate::Error::Config(format!(
            "invalid config: {field} is {seconds}; it must be a number of seconds {low} up to {}",
            max.as_secs()
        ))
    })
}

/// `now + wait`, or the latest instant this clock can hold within [`MAX_TTL`] of now: never
/// the panic of an `Instant` overflow.
pub fn deadline(now: Instant, wait: Duration) -> Instant {
    now.checked_add(wait.min(MAX_TTL)).or_else(|| now.checked_add(MAX_CONFIG_WAIT)).unwrap_or(now)
}

/// The most of a caller's value an error message repeats.
pub const SHOWN: usize = 120;

/// A value from a caller as an error message shows it: whole when short, else its first
/// [`SHOWN`] bytes (on a character boundary) and how long it was. A 1 MB model name must
/// not come back whole in the 404.
pub fn shown(value: &str) -> std::borrow::Cow<'_, str> {
    if value.len() <= SHOWN {
        return std::borrow::Cow::Borrowed(value);
    }
    let cut = (0..=SHOWN).rev().find(|&i| value.is_char_boundary(i)).unwrap_or(0);
    std::borrow::Cow::Owned(format!("{}... ({} bytes)", &value[..cut], value.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_negative_and_odd_numbers_never_panic() {
        for value in [1e22, 1e300, f64::MAX, f64::INFINITY, f64::NAN, -1.0, -0.0, 0.0, 5e-324] {
            let capped = capped_secs(value, MAX_RETRY_AFTER);
            assert!(capped.is_none_or(|d| d <= MAX_RETRY_AFTER), "{value}: {capped:?}");
            let within = secs_within(value, true, MAX_CONFIG_WAIT);
            assert!(within.is_none_or(|d| d <= MAX_CONFIG_WAIT), "{value}: {within:?}");
        }
        assert_eq!(capped_secs(1e300, MAX_RETRY_AFTER), Some(MAX_RETRY_AFTER));
        assert_eq!(capped_secs(1.5, MAX_RETRY_AFTER), Some(Duration::from_millis(1500)));
        assert_eq!(capped_secs(-3.0, MAX_RETRY_AFTER), None);
        assert_eq!(secs_within(0.0, false, MAX_CONFIG_WAIT), None);
        assert_eq!(secs_within(86_400.0, false, MAX_CONFIG_WAIT), Some(MAX_CONFIG_WAIT));
        assert_eq!(secs_within(86_400.5, false, MAX_CONFIG_WAIT), None);
    }

    #[test]
    fn config_errors_name_the_field_and_the_range() {
        let err = config_secs("router_settings.cooldown_time", 1e300, true, MAX_CONFIG_WAIT)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("router_settings.cooldown_time") && err.contains("86400"), "{err}");
    }

    #[test]
    fn deadlines_saturate_instead_of_overflowing() {
        let now = Instant::now();
        assert_eq!(deadline(now, Duration::from_secs(5)), now + Duration::from_secs(5));
        assert!(deadline(now, Duration::MAX) > now);
        assert!(deadline(now, Duration::MAX) <= now + MAX_TTL);
    }

    #[test]
    fn long_values_are_shown_cut_with_their_length() {
        assert_eq!(shown("gpt-4o"), "gpt-4o");
        let long = "é".repeat(1000);
        let cut = shown(&long);
        assert!(cut.len() < 200 && cut.ends_with("(2000 bytes)"), "{cut}");
    }
}
