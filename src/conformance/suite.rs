//! The recorded cases as a checked suite: each case replayed through wiremock with every
//! check `tests/conformance.rs` makes (the request sent, the outcome, a stream against its
//! twin, the output against `output.snap`), as a [`CaseReport`]. `switchyard conformance
//! replay` runs it; the test harness shares its twin comparison and redactions.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use serde_json::Value;

use super::compare::json_diff;
use super::report::{CaseReport, Check, Verdict};
use super::{Case, Outcome, replay, semantic_answer};
use crate::error::{Error, Result};

/// Fields that change on every answer, replaced before snapshots are compared: JSON
/// pointers with `*` for any array index.
pub const REDACTED: &[&str] =
    &["/id", "/created", "/chunks/*/id", "/chunks/*/created", "/assembled/id", "/assembled/created"];

/// `output` with ids and timestamps replaced as in the snapshots (`[id]`, `[created]`).
pub fn redact(mut output: Value) -> Value {
    for pointer in REDACTED {
        let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
        redact_at(&mut output, &parts);
    }
    output
}

fn redact_at(value: &mut Value, parts: &[&str]) {
    let Some((first, rest)) = parts.split_first() else { return };
    match (*first, value) {
        ("*", Value::Array(items)) => items.iter_mut().for_each(|item| redact_at(item, rest)),
        (key, Value::Object(object)) => {
            if let Some(inner) = object.get_mut(key) {
                if rest.is_empty() {
                    *inner = Value::String(format!("[{key}]"));
                } else {
                    redact_at(inner, rest);
                }
            }
        }
        _ => {}
    }
}

/// How a stream's assembled answer differs from its twin's whole answer (empty: they agree):
/// text, refusal, reasoning, tool calls and finish reason per choice, and usage when the
/// stream reported it.
pub fn twin_problems(assembled: &crate::ChatResponse, whole: &crate::ChatResponse) -> Vec<String> {
    let (mut expected, mut got) = (semantic_answer(whole), semantic_answer(assembled));
    if assembled.usage.is_none() {
        // A stream reports usage only when asked (or by the provider's habit); when it did
        // not, there is nothing to compare.
        for answer in [&mut expected, &mut got] {
            if let Some(object) = answer.as_object_mut() {
                object.remove("usage");
            }
        }
    }
    json_diff(&expected, &got)
}

/// The JSON a snapshot file holds (`output.snap`: insta's header, then the value).
pub fn read_snapshot(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
    let body =
        text.strip_prefix("---\n").and_then(|rest| rest.split_once("\n---\n")).map_or(text.as_str(), |(_, body)| body);
    serde_json::from_str(body).map_err(|e| Error::Config(format!("{}: not a JSON snapshot: {e}", path.display())))
}

/// A snapshot file as insta writes it, for a case recorded by `switchyard conformance record`.
pub fn snapshot_text(description: &str, output: &Value) -> String {
    let description = description.replace('\n', " ");
    let body = serde_json::to_string_pretty(output).unwrap_or_default();
    format!("---\nsource: tests/conformance.rs\ndescription: {description}\n---\n{body}\n")
}

/// Replays `case` and makes every check (`by_id` finds its twin).
pub async fn check_case(case: &Case, by_id: &HashMap<String, Case>) -> CaseReport {
    let started = Instant::now();
    let mut checks = Vec::new();
    let result = match replay(case).await {
        Ok(result) => result,
        Err(err) => {
            checks.push(Check::fail("replay", err.to_string()));
            return CaseReport::new(
                case.id(),
                &case.provider,
                case.capability(),
                checks,
                started.elapsed().as_secs_f64(),
            );
        }
    };
    if case.request.is_some() {
        checks.push(Check::from_problems(
            "request",
            "the request sent upstream is the recorded one",
            &result.request_problems,
        ));
    }
    let expected = match &case.spec.expect {
        Some(e) => format!("fails as expected ({})", e.error),
        None => "succeeds".to_string(),
    };
    checks.push(Check::from_problems("outcome", &expected, &result.outcome_problems));
    if let Some(twin) = &case.spec.twin {
        checks.push(match by_id.get(&format!("{}/{twin}", case.provider)) {
            None => Check::fail("twin", format!("no twin case {twin}")),
            Some(twin_case) => match (&result.outcome, replay(twin_case).await.map(|r| r.outcome)) {
                (Outcome::Stream { assembled, .. }, Ok(Outcome::Chat(whole))) => Check::from_problems(
                    "twin",
                    &format!("assembles to the answer of {twin}"),
                    &twin_problems(assembled, &whole),
                ),
                _ => Check::fail("twin", format!("{twin} must be a successful chat case, and this one a stream")),
            },
        });
    }
    let snapshot = case.dir.join("output.snap");
    checks.push(match read_snapshot(&snapshot) {
        Ok(recorded) => {
            let problems = json_diff(&recorded, &redact(result.output()));
            Check::from_problems("snapshot", "the output is the snapshot's", &problems)
        }
        Err(err) => Check::fail("snapshot", err.to_string()),
    });
    let mut report =
        CaseReport::new(case.id(), &case.provider, case.capability(), checks, started.elapsed().as_secs_f64());
    if report.verdict == Verdict::Passed
        && let Some(expect) = case.spec.expect.as_ref().filter(|e| e.unsupported)
    {
        report.verdict = Verdict::Unsupported;
        report.error_kind = Some(expect.error.clone());
    }
    report
}

/// Whether `id` (`provider/case`) matches `pattern`: `*` any run of characters, `?` one.
pub fn glob_match(pattern: &str, id: &str) -> bool {
    fn go(p: &[char], s: &[char]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some(('*', rest)) => (0..=s.len()).any(|i| go(rest, &s[i..])),
            Some(('?', rest)) => !s.is_empty() && go(rest, &s[1..]),
            Some((c, rest)) => s.first() == Some(c) && go(rest, &s[1..]),
        }
    }
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), id.chars().collect());
    go(&p, &s)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn redaction_and_globs() {
        let out = redact(json!({"id": "a", "created": 1, "chunks": [{"id": "b", "x": 1}], "model": "m"}));
        assert_eq!(
            out,
            json!({"id": "[id]", "created": "[created]", "chunks": [{"id": "[id]", "x": 1}], "model": "m"})
        );
        assert!(glob_match("openai/*", "openai/tools_auto"));
        assert!(glob_match("*stream*", "anthropic/stream_text"));
        assert!(!glob_match("openai/tools_?", "openai/tools_auto"));
        assert!(glob_match("openai/tools_????", "openai/tools_auto"));
    }

    #[test]
    fn snapshot_files_round_trip() {
        let dir = std::env::temp_dir().join(format!("switchyard-snap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok();
        let path = dir.join("output.snap");
        let value = json!({"b": [1, {"c": null}], "a": "x"});
        std::fs::write(&path, snapshot_text("A case.", &value)).ok();
        assert_eq!(read_snapshot(&path).ok(), Some(value));
    }
}
