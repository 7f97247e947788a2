//! What a conformance run found, per case and per check, and its renderings: a terminal
//! table, JSON, JUnit XML (for CI systems), and a capability report per provider.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Value, json};

/// One check of one case.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Check {
    /// What was checked (`wire_schema`, `tool_calls`, ...).
    pub name: String,
    /// Whether it held.
    pub passed: bool,
    /// What was found: the violations when it failed, a short note when it passed.
    pub detail: String,
}

impl Check {
    /// A check that held.
    pub fn pass(name: &str, detail: impl Into<String>) -> Self {
        Self { name: name.into(), passed: true, detail: detail.into() }
    }

    /// A check that failed.
    pub fn fail(name: &str, detail: impl Into<String>) -> Self {
        Self { name: name.into(), passed: false, detail: detail.into() }
    }

    /// Passes when `problems` is empty, else fails listing them.
    pub fn from_problems(name: &str, ok: &str, problems: &[String]) -> Self {
        if problems.is_empty() {
            Self::pass(name, ok)
        } else {
            const SHOWN: usize = 8;
            let mut detail = problems.iter().take(SHOWN).cloned().collect::<Vec<_>>().join("; ");
            if problems.len() > SHOWN {
                let _ = write!(detail, "; and {} more", problems.len() - SHOWN);
            }
            Self::fail(name, detail)
        }
    }
}

/// How a case ended.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every check held.
    Passed,
    /// A check failed.
    Failed,
    /// The provider refused the input as something it does not support (the error kind is
    /// in `error_kind`); a finding for the capability report, not a failure.
    Unsupported,
    /// Not run (the note says why).
    Skipped,
}

impl Verdict {
    fn label(self) -> &'static str {
        match self {
            Self::Passed => "pass",
            Self::Failed => "FAIL",
            Self::Unsupported => "unsupported",
            Self::Skipped => "skipped",
        }
    }
}

/// One case's result.
#[derive(Clone, Debug, Serialize)]
pub struct CaseReport {
    /// `provider/case`.
    pub id: String,
    /// The provider.
    pub provider: String,
    /// The capability the case exercises.
    pub capability: String,
    /// How it ended.
    pub verdict: Verdict,
    /// For an unsupported input, the error kind it was refused with.
    pub error_kind: Option<String>,
    /// Why it was skipped, or anything else worth saying.
    pub note: Option<String>,
    /// Every check made.
    pub checks: Vec<Check>,
    /// How long it took.
    pub seconds: f64,
}

impl CaseReport {
    /// A result from its checks: failed when any failed.
    pub fn new(id: String, provider: &str, capability: &str, checks: Vec<Check>, seconds: f64) -> Self {
        let verdict = if checks.iter().all(|c| c.passed) { Verdict::Passed } else { Verdict::Failed };
        Self {
            id,
            provider: provider.to_string(),
            capability: capability.to_string(),
            verdict,
            error_kind: None,
            note: None,
            checks,
            seconds,
        }
    }

    /// A case not run.
    pub fn skipped(id: String, provider: &str, capability: &str, why: impl Into<String>) -> Self {
        let mut out = Self::new(id, provider, capability, Vec::new(), 0.0);
        out.verdict = Verdict::Skipped;
        out.note = Some(why.into());
        out
    }

    /// The failed checks.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| !c.passed)
    }
}

/// A whole run.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// `replay` or `live`.
    pub mode: String,
    /// What was run against (recorded cases, or a base URL).
    pub target: String,
    /// Every case, in id order.
    pub cases: Vec<CaseReport>,
}

impl Report {
    /// Cases that failed.
    pub fn failed(&self) -> usize {
        self.cases.iter().filter(|c| c.verdict == Verdict::Failed).count()
    }

    fn count(&self, verdict: Verdict) -> usize {
        self.cases.iter().filter(|c| c.verdict == verdict).count()
    }

    /// One line of totals.
    pub fn summary(&self) -> String {
        format!(
            "{} cases: {} passed, {} failed, {} unsupported, {} skipped",
            self.cases.len(),
            self.count(Verdict::Passed),
            self.count(Verdict::Failed),
            self.count(Verdict::Unsupported),
            self.count(Verdict::Skipped)
        )
    }

    /// The terminal table: one row per case, then each failure's checks, then the totals.
    pub fn table(&self) -> String {
        let width = self.cases.iter().map(|c| c.id.len()).max().unwrap_or(4).max(4);
        let mut out = format!("{:width$}  {:11}  {:>6}  checks\n", "case", "result", "secs");
        for case in &self.cases {
            let passed = case.checks.iter().filter(|c| c.passed).count();
            let mut what = format!("{passed}/{}", case.checks.len());
            match case.verdict {
                Verdict::Failed => {
                    let names: Vec<&str> = case.failures().map(|c| c.name.as_str()).collect();
                    let _ = write!(what, " failed: {}", names.join(", "));
                }
                Verdict::Unsupported => {
                    let _ = write!(what, " ({})", case.error_kind.as_deref().unwrap_or("refused"));
                }
                Verdict::Skipped => what = case.note.clone().unwrap_or_default(),
                Verdict::Passed => {}
            }
            let _ = writeln!(out, "{:width$}  {:11}  {:>6.2}  {what}", case.id, case.verdict.label(), case.seconds);
        }
        for case in self.cases.iter().filter(|c| c.verdict == Verdict::Failed) {
            let _ = writeln!(out, "\n{}:", case.id);
            for check in case.failures() {
                let _ = writeln!(out, "  {}: {}", check.name, check.detail);
            }
        }
        let _ = writeln!(out, "\n{}", self.summary());
        out
    }

    /// Per provider: the capabilities that passed, those refused (with the error kind) and
    /// those that failed a check.
    pub fn capabilities(&self) -> BTreeMap<String, Capabilities> {
        let mut out: BTreeMap<String, Capabilities> = BTreeMap::new();
        for case in &self.cases {
            let entry = out.entry(case.provider.clone()).or_default();
            match case.verdict {
                Verdict::Passed => {
                    entry.supported.insert(case.capability.clone());
                }
                Verdict::Unsupported => {
                    entry
                        .unsupported
                        .insert(case.capability.clone(), case.error_kind.clone().unwrap_or_else(|| "refused".into()));
                }
                Verdict::Failed => {
                    entry.failing.insert(case.capability.clone());
                }
                Verdict::Skipped => {}
            }
        }
        for entry in out.values_mut() {
            // A capability that failed in one case is not claimed supported by another.
            let failing = entry.failing.clone();
            entry.supported.retain(|c| !failing.contains(c));
        }
        out
    }

    /// The capability report as text.
    pub fn capabilities_text(&self) -> String {
        let mut out = String::new();
        for (provider, caps) in self.capabilities() {
            let _ = writeln!(out, "{provider}:");
            let _ = writeln!(out, "  supported: {}", join(&caps.supported));
            if !caps.unsupported.is_empty() {
                let listed: Vec<String> = caps.unsupported.iter().map(|(c, k)| format!("{c} ({k})")).collect();
                let _ = writeln!(out, "  unsupported: {}", listed.join(", "));
            }
            if !caps.failing.is_empty() {
                let _ = writeln!(out, "  failing: {}", join(&caps.failing));
            }
        }
        out
    }

    /// The report as JSON: the cases with their checks, totals and the capability report.
    pub fn json(&self) -> Value {
        json!({
            "mode": self.mode,
            "target": self.target,
            "summary": {
                "cases": self.cases.len(),
                "passed": self.count(Verdict::Passed),
                "failed": self.count(Verdict::Failed),
                "unsupported": self.count(Verdict::Unsupported),
                "skipped": self.count(Verdict::Skipped),
            },
            "cases": self.cases,
            "capabilities": self.capabilities(),
        })
    }

    /// The report as JUnit XML: one test suite per provider, one test case per case; a failed
    /// case carries its failed checks, skipped and unsupported cases are `skipped` with why.
    pub fn junit(&self) -> String {
        let mut by_provider: BTreeMap<&str, Vec<&CaseReport>> = BTreeMap::new();
        for case in &self.cases {
            by_provider.entry(case.provider.as_str()).or_default().push(case);
        }
        let total_time: f64 = self.cases.iter().map(|c| c.seconds).sum();
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<testsuites name=\"switchyard conformance {}\" tests=\"{}\" failures=\"{}\" time=\"{total_time:.3}\">",
            xml(&self.mode),
            self.cases.len(),
            self.failed()
        );
        for (provider, cases) in by_provider {
            let failures = cases.iter().filter(|c| c.verdict == Verdict::Failed).count();
            let skipped = cases.iter().filter(|c| matches!(c.verdict, Verdict::Skipped | Verdict::Unsupported)).count();
            let time: f64 = cases.iter().map(|c| c.seconds).sum();
            let _ = writeln!(
                out,
                "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\" time=\"{time:.3}\">",
                xml(provider),
                cases.len()
            );
            for case in cases {
                let name = case.id.split_once('/').map_or(case.id.as_str(), |(_, n)| n);
                let _ = write!(
                    out,
                    "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                    xml(provider),
                    xml(name),
                    case.seconds
                );
                match case.verdict {
                    Verdict::Passed => out.push_str("/>\n"),
                    Verdict::Failed => {
                        out.push_str(">\n");
                        let names: Vec<&str> = case.failures().map(|c| c.name.as_str()).collect();
                        let detail: Vec<String> =
                            case.failures().map(|c| format!("{}: {}", c.name, c.detail)).collect();
                        let _ = writeln!(
                            out,
                            "      <failure message=\"failed: {}\">{}</failure>",
                            xml(&names.join(", ")),
                            xml(&detail.join("\n"))
                        );
                        out.push_str("    </testcase>\n");
                    }
                    Verdict::Skipped | Verdict::Unsupported => {
                        let why = match case.verdict {
                            Verdict::Unsupported => {
                                format!("unsupported ({})", case.error_kind.as_deref().unwrap_or("refused"))
                            }
                            _ => case.note.clone().unwrap_or_default(),
                        };
                        let _ = write!(out, ">\n      <skipped message=\"{}\"/>\n    </testcase>\n", xml(&why));
                    }
                }
            }
            out.push_str("  </testsuite>\n");
        }
        out.push_str("</testsuites>\n");
        out
    }
}

/// What a provider showed.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Capabilities {
    /// Capabilities whose cases passed.
    pub supported: BTreeSet<String>,
    /// Capabilities refused, with the error kind.
    pub unsupported: BTreeMap<String, String>,
    /// Capabilities with a failing case.
    pub failing: BTreeSet<String>,
}

fn join(items: &BTreeSet<String>) -> String {
    if items.is_empty() { "(none)".into() } else { items.iter().cloned().collect::<Vec<_>>().join(", ") }
}

/// Text escaped for XML attributes and content; characters XML 1.0 cannot carry at all
/// (most control characters) are dropped.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        let mut refused = CaseReport::new("groq/logprobs".into(), "groq", "logprobs", vec![], 0.01);
        refused.verdict = Verdict::Unsupported;
        refused.error_kind = Some("invalid_request".into());
        Report {
            mode: "live".into(),
            target: "http://127.0.0.1:1/v1".into(),
            cases: vec![
                CaseReport::new(
                    "groq/plain_text".into(),
                    "groq",
                    "plain_text",
                    vec![Check::pass("wire_schema", "ok")],
                    0.5,
                ),
                CaseReport::new(
                    "groq/tools_auto".into(),
                    "groq",
                    "tools_auto",
                    vec![
                        Check::pass("wire_schema", "ok"),
                        Check::fail("tool_calls", "arguments are not JSON: <{\"a\"&>"),
                    ],
                    0.25,
                ),
                refused,
                CaseReport::skipped("groq/embeddings_float".into(), "groq", "embeddings_float", "no --embedding-model"),
            ],
        }
    }

    #[test]
    fn table_lists_every_case_and_the_failed_checks() {
        let table = report().table();
        assert!(table.contains("groq/tools_auto"), "{table}");
        assert!(table.contains("FAIL"), "{table}");
        assert!(table.contains("tool_calls: arguments are not JSON"), "{table}");
        assert!(table.contains("4 cases: 1 passed, 1 failed, 1 unsupported, 1 skipped"), "{table}");
    }

    #[test]
    fn capabilities_and_json() {
        let report = report();
        let caps = &report.capabilities()["groq"];
        assert!(caps.supported.contains("plain_text"));
        assert!(caps.failing.contains("tools_auto"));
        assert_eq!(caps.unsupported["logprobs"], "invalid_request");
        let json = report.json();
        assert_eq!(json["summary"]["failed"], 1);
        assert_eq!(json["cases"][1]["checks"][1]["passed"], false);
    }

    #[test]
    fn junit_is_escaped_and_counts_failures() {
        let xml = report().junit();
        assert!(xml.starts_with("<?xml"), "{xml}");
        assert!(xml.contains("tests=\"4\" failures=\"1\""), "{xml}");
        assert!(xml.contains("&lt;{&quot;a&quot;&amp;&gt;"), "{xml}");
        assert!(xml.contains("<skipped message=\"unsupported (invalid_request)\"/>"), "{xml}");
        assert!(xml.contains("<skipped message=\"no --embedding-model\"/>"), "{xml}");
        assert_eq!(xml.matches("<testcase").count(), 4);
        assert_eq!(xml.matches("</testsuite>").count(), 1);
    }
}
