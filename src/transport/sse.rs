//! Server-sent events framing, as the HTML standard defines it, for every SSE provider.
//!
//! Bytes go in as they arrive; events come out. Lines end in LF, CR or CRLF (a CRLF split
//! across two reads is one line ending); `data:` lines of one event are joined with `\n`;
//! lines starting with `:` are comments; a single space after the colon is dropped; an event
//! is dispatched at a blank line, and only if it has data. Lines are cut on bytes and decoded
//! only once complete, so a multi-byte UTF-8 character split across reads is never damaged.
//! A UTF-8 BOM at the start is skipped. Unlike the standard, [`SseFramer::finish`] also
//! yields a last event whose blank line never came, since some servers end that way.

use bytes::{Bytes, BytesMut};

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseEvent {
    event: Bytes,
    data: Bytes,
    id: Option<Bytes>,
}

impl SseEvent {
    /// An event with a type (empty for none) and data.
    pub fn new(event: &str, data: impl Into<Bytes>) -> Self {
        Self { event: Bytes::copy_from_slice(event.as_bytes()), data: data.into(), id: None }
    }

    /// The `event:` type, or `""` when the event had none (the default type, `message`).
    pub fn event(&self) -> &str {
        std::str::from_utf8(&self.event).unwrap_or("")
    }

    /// The data, `data:` lines joined with `\n`.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The data as text (invalid UTF-8 is replaced).
    pub fn data_str(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.data)
    }

    /// The `id:` field, if the event had one.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref().and_then(|id| std::str::from_utf8(id).ok())
    }

    /// Whether the data is OpenAI's end marker, `[DONE]`.
    pub fn is_done_marker(&self) -> bool {
        self.data.as_ref() == b"[DONE]"
    }
}

/// Incremental SSE parser.
#[derive(Debug, Default)]
pub struct SseFramer {
    buf: BytesMut,
    /// Where scanning for the next line end resumes (everything before it has no line end).
    scanned: usize,
    /// The last byte consumed was a CR, so a LF at the start of the next read is its pair.
    after_cr: bool,
    /// The stream's first bytes have been checked for a BOM.
    started: bool,
    event: Option<Bytes>,
    data: Option<BytesMut>,
    /// Single-line data kept as a slice of the input, avoiding a copy in the common case.
    data_line: Option<Bytes>,
    id: Option<Bytes>,
    /// Complete lines read.
    lines: u64,
}

impl SseFramer {
    /// A new framer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes as they arrived.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        if !self.started && (self.buf.len() >= 3 || !BOM.starts_with(&self.buf)) {
            self.started = true;
            if self.buf.starts_with(BOM) {
                let _ = self.buf.split_to(BOM.len());
                self.scanned = 0;
            }
        }
    }

    /// Complete lines read so far (comments and blank lines included).
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Bytes held for the event in progress: its unfinished line and its data so far.
    pub fn buffered(&self) -> usize {
        self.buf.len()
            + self.data.as_ref().map_or(0, BytesMut::len)
            + self.data_line.as_ref().map_or(0, Bytes::len)
            + self.event.as_ref().map_or(0, Bytes::len)
    }

    /// The next complete event, if the bytes so far hold one.
    pub fn next_event(&mut self) -> Option<SseEvent> {
        loop {
            if self.after_cr && !self.buf.is_empty() {
                if self.buf[0] == b'\n' {
                    let _ = self.buf.split_to(1);
                }
                self.after_cr = false;
            }
            let Some(found) = memchr::memchr2(b'\n', b'\r', &self.buf[self.scanned..]) else {
                self.scanned = self.buf.len();
                return None;
            };
            let end = self.scanned + found;
            let ending = self.buf[end];
            let line = self.buf.split_to(end).freeze();
            let _ = self.buf.split_to(1);
            self.scanned = 0;
            if ending == b'\r' {
                // The LF of a CRLF may be in this buffer or the next read.
                if self.buf.first() == Some(&b'\n') {
                    let _ = self.buf.split_to(1);
                } else if self.buf.is_empty() {
                    self.after_cr = true;
                }
            }
            if let Some(event) = self.line(line) {
                return Some(event);
            }
        }
    }

    /// The stream ended: a last event left without its blank line, if any.
    pub fn finish(&mut self) -> Option<SseEvent> {
        if !self.buf.is_empty() {
            let line = self.buf.split().freeze();
            if let Some(event) = self.line(line) {
                return Some(event);
            }
        }
        self.dispatch()
    }

    fn line(&mut self, line: Bytes) -> Option<SseEvent> {
        self.lines += 1;
        if line.is_empty() {
            return self.dispatch();
        }
        if line[0] == b':' {
            return None;
        }
        let (field, value) = match memchr::memchr(b':', &line) {
            Some(colon) => {
                let skip = if line.get(colon + 1) == Some(&b' ') { 2 } else { 1 };
                (line.slice(..colon), line.slice(colon + skip..))
            }
            None => (line.clone(), Bytes::new()),
        };
        match field.as_ref() {
            b"data" => self.add_data(value),
            b"event" => self.event = Some(value),
            b"id" if !value.contains(&0) => self.id = Some(value),
            _ => {}
        }
        None
    }

    fn add_data(&mut self, value: Bytes) {
        if let Some(data) = &mut self.data {
            data.extend_from_slice(b"\n");
            data.extend_from_slice(&value);
        } else if let Some(first) = self.data_line.take() {
            let mut data = BytesMut::with_capacity(first.len() + value.len() + 1);
            data.extend_from_slice(&first);
            data.extend_from_slice(b"\n");
            data.extend_from_slice(&value);
            self.data = Some(data);
        } else {
            self.data_line = Some(value);
        }
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = self.event.take().unwrap_or_default();
        let data = match (self.data.take(), self.data_line.take()) {
            (Some(joined), _) => joined.freeze(),
            (None, Some(line)) => line,
            (None, None) => return None,
        };
        Some(SseEvent { event, data, id: self.id.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8]) -> Vec<SseEvent> {
        let mut framer = SseFramer::new();
        framer.push(input);
        let mut out = Vec::new();
        while let Some(event) = framer.next_event() {
            out.push(event);
        }
        out.extend(framer.finish());
        out
    }

    #[test]
    fn joins_multi_line_data_and_reads_event_names() {
        let events = all(b"event: delta\ndata: one\ndata:two\n\n");
        assert_eq!(events, vec![SseEvent::new("delta", "one\ntwo")]);
    }

    #[test]
    fn skips_comments_and_events_without_data() {
        let events = all(b": keep-alive\n\nevent: ping\n\ndata: x\n\n");
        assert_eq!(events, vec![SseEvent::new("", "x")]);
    }

    #[test]
    fn accepts_crlf_cr_and_lf_line_endings() {
        let events = all(b"data: a\r\n\r\ndata: b\r\rdata: c\n\n");
        let data: Vec<_> = events.iter().map(|e| e.data_str().into_owned()).collect();
        assert_eq!(data, ["a", "b", "c"]);
    }

    #[test]
    fn crlf_split_across_reads_is_one_line_ending() {
        let mut framer = SseFramer::new();
        framer.push(b"data: a\r");
        assert_eq!(framer.next_event(), None);
        framer.push(b"\n\r\ndata: b\n\n");
        assert_eq!(framer.next_event(), Some(SseEvent::new("", "a")));
        assert_eq!(framer.next_event(), Some(SseEvent::new("", "b")));
    }

    #[test]
    fn keeps_only_one_leading_space_and_takes_field_without_colon() {
        let events = all(b"data:  two spaces\n\ndata\n\n");
        assert_eq!(events, vec![SseEvent::new("", " two spaces"), SseEvent::new("", "")]);
    }

    #[test]
    fn strips_bom_and_flushes_unterminated_last_event() {
        let events = all(b"\xEF\xBB\xBFdata: [DONE]");
        assert_eq!(events.len(), 1);
        assert!(events[0].is_done_marker());
    }

    #[test]
    fn multi_byte_utf8_split_inside_a_character() {
        let text = "data: {\"c\":\"h\u{e9}llo \u{1F600}\"}\n\n".as_bytes();
        let mut framer = SseFramer::new();
        let mut got = Vec::new();
        for byte in text {
            framer.push(std::slice::from_ref(byte));
            got.extend(std::iter::from_fn(|| framer.next_event()));
        }
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].data_str(), "{\"c\":\"h\u{e9}llo \u{1F600}\"}");
    }

    #[test]
    fn keeps_the_last_event_id() {
        let events = all(b"id: 7\ndata: a\n\ndata: b\n\n");
        assert_eq!(events[0].id(), Some("7"));
        assert_eq!(events[1].id(), Some("7"));
    }
}
