//! The AWS event stream (`application/vnd.amazon.eventstream`), Bedrock's streaming format.
//!
//! Each message is a frame: a 12-byte prelude (total length, headers length, prelude CRC32),
//! typed headers, the payload, and a CRC32 of everything before it. The decoding and both
//! checksum checks are `aws-smithy-eventstream`'s; this module feeds it bytes as they arrive,
//! however they are split, and hands on the three headers that matter with the payload.

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use bytes::{Buf, Bytes, BytesMut};

use super::Framer;
use crate::catalog::ProviderKind;
use crate::error::{Error, ErrorKind, Result};

/// The largest frame accepted (AWS's own limit is 16 MiB).
const MAX_FRAME: usize = 16 * 1024 * 1024;

/// What a frame carries, by its `:message-type` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameKind {
    /// An event; `:event-type` names it (`contentBlockDelta`).
    Event(String),
    /// A modelled error; `:exception-type` names it (`throttlingException`).
    Exception(String),
    /// An error outside the model; `:error-code` names it (with `:error-message`).
    Error {
        /// `:error-code`.
        code: String,
        /// `:error-message`.
        message: String,
    },
}

/// One decoded frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventFrame {
    /// What it is.
    pub kind: FrameKind,
    /// The payload (JSON for Bedrock).
    pub payload: Bytes,
}

/// Splits an event stream into frames.
#[derive(Debug)]
pub struct EventStreamFramer {
    provider: ProviderKind,
    buffer: BytesMut,
    decoder: MessageFrameDecoder,
    /// The frame in progress was started (its prelude read) by the decoder.
    in_frame: bool,
    /// Frames read.
    frames: u64,
}

impl EventStreamFramer {
    /// A framer for `provider`'s stream (named in errors).
    pub fn new(provider: ProviderKind) -> Self {
        Self { provider, buffer: BytesMut::new(), decoder: MessageFrameDecoder::new(), in_frame: false, frames: 0 }
    }

    fn corrupt(&self, why: impl std::fmt::Display) -> Error {
        Error::Stream {
            provider: self.provider,
            kind: ErrorKind::Server,
            message: format!("corrupt event stream: {why}"),
        }
    }
}

impl Framer for EventStreamFramer {
    type Frame = EventFrame;

    fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    fn next_frame(&mut self) -> Result<Option<EventFrame>> {
        // The decoder keeps a frame's prelude once it has read it, so the length check
        // happens here, before it commits to a frame it would buffer without bound.
        if !self.in_frame && self.buffer.len() >= 4 {
            let total = (&self.buffer[..4]).get_u32() as usize;
            if total > MAX_FRAME {
                return Err(self.corrupt(format!("a frame of {total} bytes is larger than the {MAX_FRAME}-byte limit")));
            }
        }
        let before = self.buffer.len();
        let decoded = self.decoder.decode_frame(&mut self.buffer).map_err(|e| self.corrupt(e))?;
        match decoded {
            DecodedFrame::Incomplete => {
                self.in_frame |= self.buffer.len() < before;
                Ok(None)
            }
            DecodedFrame::Complete(message) => {
                self.in_frame = false;
                self.frames += 1;
                let header = |name: &str| {
                    message
                        .headers()
                        .iter()
                        .find(|h| h.name().as_str() == name)
                        .and_then(|h| h.value().as_string().ok())
                        .map(|s| s.as_str().to_string())
                };
                let kind = match header(":message-type").as_deref() {
                    Some("event") => FrameKind::Event(header(":event-type").unwrap_or_default()),
                    Some("exception") => FrameKind::Exception(header(":exception-type").unwrap_or_default()),
                    Some("error") => FrameKind::Error {
                        code: header(":error-code").unwrap_or_default(),
                        message: header(":error-message").unwrap_or_default(),
                    },
                    other => {
                        return Err(self.corrupt(format_args!("a frame with `:message-type` {other:?}")));
                    }
                };
                Ok(Some(EventFrame { kind, payload: message.payload().clone() }))
            }
        }
    }

    fn buffered(&self) -> usize {
        self.buffer.len()
    }

    fn progress(&self) -> u64 {
        self.frames
    }

    fn finish(&mut self) -> Result<Option<EventFrame>> {
        if self.in_frame || !self.buffer.is_empty() {
            let left = self.buffer.len();
            self.buffer.clear();
            return Err(self.corrupt(format!("the stream ended inside a frame ({left} bytes left over)")));
        }
        Ok(None)
    }
}

/// Writes one frame: for tests, benchmarks and the mock upstream.
pub fn encode_frame(message_type: &str, type_header: (&str, &str), payload: &[u8]) -> Vec<u8> {
    // Written here rather than with aws-smithy-eventstream's encoder so that the decoder is
    // checked against an independent writer of the format.
    let mut headers = Vec::new();
    let mut header = |name: &str, value: &str| {
        headers.push(name.len() as u8);
        headers.extend_from_slice(name.as_bytes());
        headers.push(7); // string
        headers.extend_from_slice(&(value.len() as u16).to_be_bytes());
        headers.extend_from_slice(value.as_bytes());
    };
    header(":message-type", message_type);
    header(type_header.0, type_header.1);
    header(":content-type", "application/json");
    let total = 12 + headers.len() + payload.len() + 4;
    let mut frame = Vec::with_capacity(total);
    frame.extend_from_slice(&(total as u32).to_be_bytes());
    frame.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(&frame);
    frame.extend_from_slice(&prelude_crc.to_be_bytes());
    frame.extend_from_slice(&headers);
    frame.extend_from_slice(payload);
    let crc = crc32fast::hash(&frame);
    frame.extend_from_slice(&crc.to_be_bytes());
    frame
}

/// An event frame (`:message-type: event`) with a JSON payload.
pub fn event_frame(event_type: &str, payload: &[u8]) -> Vec<u8> {
    encode_frame("event", (":event-type", event_type), payload)
}

/// An exception frame (`:message-type: exception`) with a JSON payload.
pub fn exception_frame(exception_type: &str, payload: &[u8]) -> Vec<u8> {
    encode_frame("exception", (":exception-type", exception_type), payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framer() -> EventStreamFramer {
        EventStreamFramer::new(ProviderKind::Mock)
    }

    fn all(framer: &mut EventStreamFramer) -> Result<Vec<EventFrame>> {
        let mut out = Vec::new();
        while let Some(frame) = framer.next_frame()? {
            out.push(frame);
        }
        Ok(out)
    }

    #[test]
    fn frames_come_out_with_their_type_and_payload() {
        let mut bytes = event_frame("messageStart", br#"{"role":"assistant"}"#);
        bytes.extend(exception_frame("throttlingException", br#"{"message":"slow down"}"#));
        let mut f = framer();
        f.push(&bytes);
        let frames = all(&mut f).unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].kind, FrameKind::Event("messageStart".into()));
        assert_eq!(&frames[0].payload[..], br#"{"role":"assistant"}"#);
        assert_eq!(frames[1].kind, FrameKind::Exception("throttlingException".into()));
        assert!(f.finish().unwrap().is_none());
    }

    #[test]
    fn a_frame_split_byte_by_byte_is_the_same_frame() {
        let bytes = event_frame("contentBlockDelta", br#"{"contentBlockIndex":0,"delta":{"text":"h\u00e9"}}"#);
        let mut f = framer();
        let mut frames = Vec::new();
        for b in &bytes {
            f.push(std::slice::from_ref(b));
            frames.extend(all(&mut f).unwrap());
        }
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].kind, FrameKind::Event("contentBlockDelta".into()));
    }

    #[test]
    fn a_flipped_bit_fails_the_checksum() {
        let mut bytes = event_frame("messageStop", br#"{"stopReason":"end_turn"}"#);
        let at = bytes.len() - 8;
        bytes[at] ^= 1;
        let mut f = framer();
        f.push(&bytes);
        let err = f.next_frame().unwrap_err();
        assert!(err.to_string().contains("corrupt event stream"), "{err}");
    }

    #[test]
    fn a_stream_cut_inside_a_frame_is_an_error_at_the_end() {
        let bytes = event_frame("messageStop", br#"{"stopReason":"end_turn"}"#);
        let mut f = framer();
        f.push(&bytes[..bytes.len() - 3]);
        assert!(all(&mut f).unwrap().is_empty());
        assert!(f.finish().is_err());
        // Even a cut inside the prelude is noticed.
        let mut f = framer();
        f.push(&bytes[..5]);
        assert!(all(&mut f).unwrap().is_empty());
        assert!(f.finish().is_err());
    }

    #[test]
    fn an_absurd_length_is_refused_before_buffering() {
        let mut f = framer();
        f.push(&u32::MAX.to_be_bytes());
        f.push(&[0; 8]);
        assert!(f.next_frame().is_err());
    }
}
