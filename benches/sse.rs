//! SSE framing throughput (MB/s): a realistic OpenAI stream, fed as the network delivers it.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
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

criterion_group!(benches, bench);
criterion_main!(benches);
