//! What every framing of a byte stream provides: SSE ([`super::sse`]) and AWS event streams
//! ([`super::eventstream`]) behind one trait, so a stream's decoder and its deadlines do not
//! care which.

use super::sse::{SseEvent, SseFramer};
use crate::error::Result;

/// Splits a byte stream into frames, however the bytes are split.
pub trait Framer: Send + 'static {
    /// One frame.
    type Frame;

    /// Feeds more bytes.
    fn push(&mut self, bytes: &[u8]);

    /// The next complete frame, if there is one.
    fn next_frame(&mut self) -> Result<Option<Self::Frame>>;

    /// The stream ended: the last frame, if one was left without its terminator.
    fn finish(&mut self) -> Result<Option<Self::Frame>>;

    /// Bytes held for the frame in progress (checked against the event-size limit).
    fn buffered(&self) -> usize;

    /// How many complete units (SSE lines, comments included; event-stream frames) have
    /// been read: the stream's idle deadline runs from the last one, so a server that drips
    /// a byte at a time without finishing a line does not keep a stream open.
    fn progress(&self) -> u64;
}

impl Framer for SseFramer {
    type Frame = SseEvent;

    fn push(&mut self, bytes: &[u8]) {
        SseFramer::push(self, bytes);
    }

    fn next_frame(&mut self) -> Result<Option<SseEvent>> {
        Ok(self.next_event())
    }

    fn finish(&mut self) -> Result<Option<SseEvent>> {
        Ok(SseFramer::finish(self))
    }

    fn buffered(&self) -> usize {
        SseFramer::buffered(self)
    }

    fn progress(&self) -> u64 {
        self.lines()
    }
}
