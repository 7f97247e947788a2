//! Stream framing throughput (MB/s): a realistic OpenAI SSE stream and a Bedrock binary
//! event stream, fed as the network delivers them.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use switchyard::provider::{Framer, ProviderKind};
use switchyard::transport::eventstream::{EventStreamFramer, event_frame};
use switchyard::transport::sse::SseFramer;

fn stream_body() -> Vec<u8> {
    let mut body = String::new();
    for i in 0..500 {
        body.push_str(&format!(
            "data: {{\"id\":\"chatcmpl-CQ6zC3bIf7gKqC7rO2lT6eAz0hWs4\",\"object\":\"chat.completion.chunk\",\"created\":1763812346,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_560af6e559\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\" word{i} \\u00e9\"}},\"logprobs\":null,\"finish_reason\":null}}],\"obfuscation\":\"Zk3\"}}\n\n"
        ));
    }
    body.push_str("data: [DONE]\n\n");
    body.into_bytes()
}

fn frame_all(body: &[u8], piece: usize) -> usize {
    let mut framer = SseFramer::new();
    let mut events = 0;
    for chunk in body.chunks(piece) {
        framer.push(chunk);
        while let Some(event) = framer.next_event() {
            black_box(&event);
            events += 1;
        }
    }
    events + usize::from(framer.finish().is_some())
}

fn bench(c: &mut Criterion) {
    let body = stream_body();
    let mut group = c.benchmark_group("sse_framing");
    group.throughput(Throughput::Bytes(body.len() as u64));
    for piece in [64, 1024, 16 * 1024] {
        group.bench_function(format!("pieces_of_{piece}_bytes"), |b| b.iter(|| frame_all(black_box(&body), piece)));
    }
    group.finish();
}

/// A ConverseStream answer of 500 text deltas, as AWS frames it.
fn event_stream_body() -> Vec<u8> {
    let mut body = event_frame("messageStart", br#"{"p":"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL","role":"assistant"}"#);
    for i in 0..500 {
        let payload = format!(
            r#"{{"contentBlockIndex":0,"delta":{{"text":" word{i} \u00e9"}},"p":"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXY"}}"#
        );
        body.extend(event_frame("contentBlockDelta", payload.as_bytes()));
    }
    body.extend(event_frame("messageStop", br#"{"p":"abcdefghijklmnopq","stopReason":"end_turn"}"#));
    body
}

fn event_frames(body: &[u8], piece: usize) -> usize {
    let mut framer = EventStreamFramer::new(ProviderKind::Bedrock);
    let mut frames = 0;
    for chunk in body.chunks(piece) {
        framer.push(chunk);
        while let Ok(Some(frame)) = framer.next_frame() {
            black_box(&frame);
            frames += 1;
        }
    }
    frames
}

fn bench_event_stream(c: &mut Criterion) {
    let body = event_stream_body();
    assert_eq!(event_frames(&body, 1024), 502, "the bench body must frame completely");
    let mut group = c.benchmark_group("event_stream_framing");
    group.throughput(Throughput::Bytes(body.len() as u64));
    for piece in [64, 1024, 16 * 1024] {
        group.bench_function(format!("pieces_of_{piece}_bytes"), |b| b.iter(|| event_frames(black_box(&body), piece)));
    }
    group.finish();
}

criterion_group!(benches, bench, bench_event_stream);
criterion_main!(benches);
