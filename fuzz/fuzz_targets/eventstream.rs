//! AWS event-stream framing: no input panics, and the frames are the same however the
//! bytes are split.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::ProviderKind;
use switchyard::provider::Framer;
use switchyard::transport::eventstream::{EventFrame, EventStreamFramer};

fn frames(pieces: &[&[u8]]) -> (Vec<EventFrame>, Option<String>) {
    let mut framer = EventStreamFramer::new(ProviderKind::Bedrock);
    let mut out = Vec::new();
    for piece in pieces {
        framer.push(piece);
        loop {
            match framer.next_frame() {
                Ok(Some(frame)) => out.push(frame),
                Ok(None) => break,
                Err(err) => return (out, Some(err.to_string())),
            }
        }
    }
    match framer.finish() {
        Ok(last) => out.extend(last),
        Err(err) => return (out, Some(err.to_string())),
    }
    (out, None)
}

fuzz_target!(|data: &[u8]| {
    let (cuts, bytes) = switchyard_fuzz::split_head(data);
    let whole = frames(&[bytes]);
    let split = frames(&switchyard_fuzz::pieces(bytes, cuts));
    // A corrupt stream may be found corrupt at another place; good frames agree.
    if whole.1.is_none() && split.1.is_none() {
        assert_eq!(whole.0, split.0, "the split changed the frames");
    }
});
