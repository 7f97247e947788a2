//! OpenAI-format chat streams: one chunk per `data:` event, ending with `[DONE]`.

use std::collections::VecDeque;

use serde_json::Value;

use crate::ChatChunk;
use crate::error::{Error, ErrorKind, Result};
use crate::provider::{Flow, ProviderKind, StreamDecode};
use crate::transport::sse::{SseEvent, SseFramer};

/// Decodes an OpenAI-format SSE stream.
///
/// An event carrying an error envelope (OpenAI and several compatible servers send one
/// mid-stream) ends the stream with [`Error::Stream`] of the matching kind. A stream that
/// ends without `[DONE]` is accepted if a finish reason was seen (some servers omit the
/// marker) and is otherwise reported as cut off.
#[derive(Debug)]
pub struct Decoder {
    provider: ProviderKind,
    finished: bool,
}

impl Decoder {
    /// A decoder for one stream from `provider`.
    pub fn new(provider: ProviderKind) -> Self {
        Self { provider, finished: false }
    }
}

impl StreamDecode for Decoder {
    type Framer = SseFramer;

    fn framer(&self) -> SseFramer {
        SseFramer::new()
    }

    fn on_frame(&mut self, event: SseEvent, out: &mut VecDeque<ChatChunk>) -> Result<Flow> {
        if event.is_done_marker() {
            return Ok(Flow::Done);
        }
        if event.data().iter().all(u8::is_ascii_whitespace) {
            return Ok(Flow::Continue);
        }
        match serde_json::from_slice::<ChatChunk>(event.data()) {
            Ok(chunk) if event.event() != "error" && !chunk.extra.contains_key("error") => {
                self.finished |= chunk.choices.iter().any(|c| c.finish_reason.is_some());
                out.push_back(chunk);
                Ok(Flow::Continue)
            }
            parsed => Err(self.error_event(&event, parsed.err())),
        }
    }

    fn on_eof(&mut self, _out: &mut VecDeque<ChatChunk>) -> Result<()> {
        if self.finished {
            return Ok(());
        }
        Err(Error::Stream {
            provider: self.provider,
            kind: ErrorKind::Server,
            message: "the stream ended before `[DONE]` and before any finish reason".into(),
        })
    }
}

impl Decoder {
    fn error_event(&self, event: &SseEvent, parse_error: Option<serde_json::Error>) -> Error {
        let value = serde_json::from_slice::<Value>(event.data()).ok();
        let envelope = value.as_ref().filter(|v| v.get("error").is_some() || event.event() == "error");
        match (envelope, parse_error) {
            (Some(body), _) => {
                let fields = super::error::fields(body);
                let message = fields.message.clone().unwrap_or_else(|| "error event in the stream".into());
                let status = body
                    .pointer("/error/status")
                    .or_else(|| body.pointer("/error/code"))
                    .and_then(Value::as_u64)
                    .and_then(|s| http::StatusCode::from_u16(u16::try_from(s).ok()?).ok());
                let kind = match status {
                    Some(status) => super::error::classify(status, &fields, &message),
                    None => super::error::classify_without_status(&fields, &message),
                };
                Error::Stream { provider: self.provider, kind, message }
            }
            (None, Some(err)) => Error::decode(self.provider, "stream event", err, event.data().to_vec().into()),
            (None, None) => Error::Stream {
                provider: self.provider,
                kind: ErrorKind::Server,
                message: "error event in the stream".into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_kind(data: &str) -> Option<ErrorKind> {
        let mut decoder = Decoder::new(ProviderKind::OpenAi);
        match decoder.on_frame(SseEvent::new("", data.to_string()), &mut VecDeque::new()) {
            Err(Error::Stream { kind, .. }) => Some(kind),
            _ => None,
        }
    }

    #[test]
    fn mid_stream_errors_get_the_most_specific_kind() {
        let ctx = r#"{"error":{"message":"too long","type":"invalid_request_error","code":"context_length_exceeded"}}"#;
        assert_eq!(error_kind(ctx), Some(ErrorKind::ContextLengthExceeded));
        let limited = r#"{"error":{"message":"slow down","type":"rate_limit_error"}}"#;
        assert_eq!(error_kind(limited), Some(ErrorKind::RateLimited));
        let with_status = r#"{"error":{"message":"busy","code":503}}"#;
        assert_eq!(error_kind(with_status), Some(ErrorKind::Overloaded));
        assert_eq!(error_kind(r#"{"error":"boom"}"#), Some(ErrorKind::Server));
    }

    #[test]
    fn a_chunk_that_is_not_json_is_a_decode_error_keeping_the_data() {
        let mut decoder = Decoder::new(ProviderKind::OpenAi);
        let result = decoder.on_frame(SseEvent::new("", "{not json"), &mut VecDeque::new());
        assert!(matches!(result, Err(Error::Decode { ref body, .. }) if body.as_ref() == b"{not json"), "{result:?}");
    }
}
