//! The guardrail scanners (PII, keyword and regex lists, prompt injection): no text panics
//! them, and every finding is a span of the text on character boundaries.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use switchyard::gateway::guardrails::detect::Detector;

static DETECTORS: OnceLock<Vec<Detector>> = OnceLock::new();

fn detectors() -> Vec<Detector> {
    let lists = Detector::lists(&["zeus".into(), "secret project".into()], &[r"\bACME-\d{4}\b".into()]);
    [Detector::pii(&[]), lists, Detector::injection()].into_iter().filter_map(Result::ok).collect()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for detector in DETECTORS.get_or_init(detectors) {
        let matched = detector.matches(text);
        let found = detector.find(text);
        for finding in &found {
            assert!(finding.start <= finding.end && finding.end <= text.len());
            assert!(text.is_char_boundary(finding.start) && text.is_char_boundary(finding.end));
        }
        assert!(matched || found.is_empty(), "found without a match");
    }
});
