//! SSE framing: no input panics, and the events are the same however the bytes are split.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard::transport::sse::{SseEvent, SseFramer};

fn events(pieces: &[&[u8]]) -> Vec<SseEvent> {
    let mut framer = SseFramer::new();
    let mut out = Vec::new();
    for piece in pieces {
        framer.push(piece);
        out.extend(std::iter::from_fn(|| framer.next_event()));
    }
    out.extend(framer.finish());
    out
}

fuzz_target!(|data: &[u8]| {
    let (cuts, bytes) = switchyard_fuzz::split_head(data);
    let whole = events(&[bytes]);
    let split = events(&switchyard_fuzz::pieces(bytes, cuts));
    assert_eq!(whole, split, "the split changed the events");
});
