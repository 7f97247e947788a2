//! The guardrails' cost on the hot path: the PII detector over a 4 KB prompt (nothing to
//! find, and three things to mask), a whole pre-call stage with PII masking, and what a
//! guardrail that is configured but not on for the request costs next to none configured.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use switchyard::gateway::guardrails::detect::Detector;
use switchyard::gateway::guardrails::{GuardrailEntry, Guardrails, Records, Requested};
use switchyard::{ChatMessage, ChatRequest};

/// About 4 KB of ordinary prose (numbers, dates, versions, but no PII).
fn clean_prompt() -> String {
    let sentence = "On 2024-05-06 the team shipped version 1.2.3 to 400 users in 12 regions; \
                    latency fell by 35 percent and the error budget for Q3 is still at 99.9. ";
    sentence.repeat(4096 / sentence.len() + 1)[..4096].to_string()
}

fn dirty_prompt() -> String {
    let mut text = clean_prompt();
    text.truncate(4096 - 110);
    text.push_str(" Mail jane.doe@example.com, card 4111 1111 1111 1111, key sk-proj-abcdefghijklmnopqrstuvwx0123.");
    text
}

fn entries(yaml: &str) -> Vec<GuardrailEntry> {
    serde_norway::from_str(yaml).unwrap_or_else(|e| panic!("{e}"))
}

fn bench_detector(c: &mut Criterion) {
    let pii = Detector::pii(&[]).unwrap_or_else(|e| panic!("{e}"));
    let (clean, dirty) = (clean_prompt(), dirty_prompt());
    assert!(!pii.matches(&clean));
    assert_eq!(pii.find(&dirty).len(), 3);
    let mut group = c.benchmark_group("pii_4kb");
    group.throughput(criterion::Throughput::Bytes(4096));
    group.bench_function("scan, nothing found", |b| b.iter(|| black_box(pii.matches(black_box(&clean)))));
    group.bench_function("find, three found", |b| b.iter(|| black_box(pii.find(black_box(&dirty)))));
    group.finish();
}

fn bench_pre_call(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap_or_else(|e| panic!("{e}"));
    let none = Guardrails::default();
    let configured_off = Guardrails::compile(
        &entries("- guardrail_name: pii\n  litellm_params: {guardrail: pii, action: mask}\n"),
        &|_| None,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let on = Guardrails::compile(
        &entries("- guardrail_name: pii\n  litellm_params: {guardrail: pii, action: mask, default_on: true}\n"),
        &|_| None,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let request =
        |text: String| ChatRequest::new("echo", vec![ChatMessage::system("Be brief."), ChatMessage::user(text)]);
    let (clean, dirty) = (request(clean_prompt()), request(dirty_prompt()));
    let mut group = c.benchmark_group("pre_call_4kb");
    for (name, guardrails, prompt) in [
        ("no guardrails configured", &none, &clean),
        ("pii configured, not on", &configured_off, &clean),
        ("pii on, nothing found", &on, &clean),
        ("pii on, three masked", &on, &dirty),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || prompt.clone(),
                |mut req| {
                    runtime.block_on(async {
                        let mut session = guardrails
                            .session(None, true, &Requested::default(), Records::default())
                            .unwrap_or_else(|e| panic!("{e:?}"));
                        if !session.is_empty() {
                            session.pre_call(&mut req, "echo", None).await.unwrap_or_else(|e| panic!("{e:?}"));
                        }
                        black_box(req)
                    })
                },
                criterion::BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench_detector, bench_pre_call);
criterion_main!(benches);
