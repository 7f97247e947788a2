//! Azure errors: OpenAI's envelope with Azure's codes. A prompt blocked by the content filter
//! is a 400 with `code: content_filter` and `innererror.code: ResponsibleAIPolicyViolation`;
//! throttling is a 429 with `retry-after` / `retry-after-ms`, and older API versions only say
//! "Please retry after N seconds" in the message, which is read when no header came.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use crate::error::ApiError;
use crate::provider::ProviderKind;

/// Maps an Azure error answer.
pub fn decode_error(status: StatusCode, headers: &HeaderMap, body: &Bytes) -> ApiError {
    let mut err = crate::provider::errors::decode_error(ProviderKind::Azure, status, headers, body);
    if err.retry_after.is_none() && status == StatusCode::TOO_MANY_REQUESTS {
        err.retry_after = retry_hint(&err.message);
    }
    err
}

/// "... Please retry after 7 seconds." -> 7 s.
fn retry_hint(message: &str) -> Option<Duration> {
    let rest = &message[message.find("retry after ")? + "retry after ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    rest[digits.len()..].trim_start().starts_with("second").then_some(())?;
    digits.parse().ok().map(|secs| Duration::from_secs(secs).min(crate::bounds::MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_retry_hint_in_the_message() {
        let msg = "Requests to the ChatCompletions_Create Operation have exceeded call rate limit. Please retry after 7 seconds.";
        assert_eq!(retry_hint(msg), Some(Duration::from_secs(7)));
        assert_eq!(retry_hint("Please retry after a while"), None);
    }
}
