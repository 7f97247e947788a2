//! Replays every case under `conformance/` through wiremock, one test per case
//! (`cargo nextest run --test conformance -- openai/tools_auto`).
//!
//! Each case checks the request the adapter sent against `request.json`, the outcome against
//! the case's expectation, a stream against its non-stream twin, and the OpenAI-shaped output
//! against the insta snapshot `output.snap` in the case folder.

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use libtest_mimic::{Arguments, Failed, Trial};
use switchyard::conformance::suite::twin_problems;
use switchyard::conformance::{Case, Outcome, discover, replay};

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance");
    let cases = match discover(&root) {
        Ok(cases) => cases,
        Err(err) => {
            eprintln!("cannot load the conformance cases: {err}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => Arc::new(rt),
        Err(err) => {
            eprintln!("cannot start a runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let by_id: Arc<HashMap<String, Case>> = Arc::new(cases.iter().map(|c| (c.id(), c.clone())).collect());
    let mut trials: Vec<Trial> = cases
        .into_iter()
        .map(|case| {
            let (runtime, by_id) = (runtime.clone(), by_id.clone());
            Trial::test(case.id(), move || run_case(&runtime, &case, &by_id))
        })
        .collect();
    let counted = by_id.clone();
    trials.push(Trial::test("suite/has_every_provider_of_the_core", move || {
        for provider in ["openai", "azure", "groq", "mistral", "deepseek"] {
            if !counted.keys().any(|id| id.starts_with(&format!("{provider}/"))) {
                return Err(format!("no cases for {provider}").into());
            }
        }
        Ok(())
    }));
    let natives = by_id.clone();
    trials.push(Trial::test("suite/every_native_provider_has_cases", move || {
        // Read from the provider descriptors: a provider added there without cases fails here.
        let missing: Vec<&str> = switchyard::catalog::NATIVE
            .iter()
            .map(|d| d.kind.id())
            .filter(|id| *id != "mock" && !natives.keys().any(|case| case.starts_with(&format!("{id}/"))))
            .collect();
        if missing.is_empty() { Ok(()) } else { Err(format!("no cases for {}", missing.join(", ")).into()) }
    }));
    let (claims_root, claimed) = (root.clone(), by_id.clone());
    trials.push(Trial::test("suite/capabilities_match_the_cases", move || check_capabilities(&claims_root, &claimed)));
    let tables_root = root.clone();
    trials.push(Trial::test("suite/unsupported_parameter_tables_match_capabilities", move || {
        check_parameter_tables(&tables_root)
    }));
    let readme_root = root.clone();
    trials.push(Trial::test("suite/readme_matrix_matches_capabilities", move || check_readme_matrix(&readme_root)));
    libtest_mimic::run(&args, trials).exit_code()
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Claims {
    supported: Vec<String>,
    #[serde(default)]
    unsupported: std::collections::BTreeMap<String, String>,
}

const CAPABILITIES_HEADER: &str = "\
# Provider x capability. A capability is the name of an input in `inputs/` (or `models`, or
# a parameter like `logit_bias`). Every claim here is backed by a conformance case, and every
# case agrees with the claims: `tests/conformance.rs` checks both ways. Generated from the
# cases (`UPDATE_CAPABILITIES=1 cargo test --test conformance -- suite/`); edit the cases,
# not this file by hand.
#
#   supported   = capabilities a passing case shows working through this provider
#   unsupported = capability -> the error kind returned before any request is sent
#                 (with `drop_params` a parameter is dropped instead)
";

/// `capabilities.toml` as the cases make it: providers in the order Switchyard lists them.
fn capabilities_from(cases: &HashMap<String, Case>) -> String {
    use std::collections::{BTreeMap, BTreeSet};
    let mut out = String::from(CAPABILITIES_HEADER);
    for kind in switchyard::ProviderKind::all() {
        let of: Vec<&Case> = cases.values().filter(|c| c.provider == kind.id()).collect();
        if of.is_empty() {
            continue;
        }
        let supported: BTreeSet<&str> = of.iter().filter(|c| c.shows_support()).map(|c| c.capability()).collect();
        let unsupported: BTreeMap<&str, &str> = of
            .iter()
            .filter_map(|c| {
                let e = c.spec.expect.as_ref()?;
                (e.unsupported && e.no_request).then(|| (c.capability(), e.error.as_str()))
            })
            .collect();
        out.push_str(&format!("\n[{}]\nsupported = [\n", kind.id()));
        let mut line = String::from(" ");
        for capability in supported {
            let item = format!(" \"{capability}\",");
            if line.len() + item.len() > 100 {
                out.push_str(&line);
                out.push('\n');
                line = String::from(" ");
            }
            line.push_str(&item);
        }
        if line.len() > 1 {
            out.push_str(&line);
            out.push('\n');
        }
        out.push_str("]\n");
        if !unsupported.is_empty() {
            out.push_str(&format!("\n[{}.unsupported]\n", kind.id()));
            for (capability, kind) in unsupported {
                out.push_str(&format!("{capability} = \"{kind}\"\n"));
            }
        }
    }
    out
}

/// `capabilities.toml` says only what the cases show, and the cases show nothing it denies.
/// Every parameter a provider's cases show refused (`capabilities.toml`) is in its adapter's
/// declared table, and every parameter the table declares is refused where a case tries it.
fn check_parameter_tables(root: &Path) -> Result<(), Failed> {
    use switchyard::provider::{anthropic, bedrock, cohere, gemini, params::PARAMS};
    let text = std::fs::read_to_string(root.join("capabilities.toml")).map_err(|e| e.to_string())?;
    let claims: std::collections::BTreeMap<String, Claims> = toml::from_str(&text).map_err(|e| e.to_string())?;
    let tables = [
        ("anthropic", anthropic::UNSUPPORTED_PARAMS),
        ("gemini", gemini::UNSUPPORTED_PARAMS),
        ("bedrock", bedrock::UNSUPPORTED_PARAMS),
        ("cohere", cohere::UNSUPPORTED_PARAMS),
    ];
    let mut problems = Vec::new();
    for (provider, table) in tables {
        let Some(claim) = claims.get(provider) else {
            problems.push(format!("{provider}: no entry in capabilities.toml"));
            continue;
        };
        for refused in claim.unsupported.keys().filter(|c| PARAMS.contains(&c.as_str())) {
            if !table.contains(&refused.as_str()) {
                problems
                    .push(format!("{provider}: a case shows `{refused}` refused, but its UNSUPPORTED_PARAMS lacks it"));
            }
        }
        for declared in table {
            if claim.supported.iter().any(|s| s == declared) && !claim.unsupported.contains_key(*declared) {
                problems.push(format!("{provider}: declares `{declared}` unsupported, but a case shows it working"));
            }
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(problems.join("\n").into()) }
}

fn check_capabilities(root: &Path, cases: &HashMap<String, Case>) -> Result<(), Failed> {
    if std::env::var_os("UPDATE_CAPABILITIES").is_some() {
        std::fs::write(root.join("capabilities.toml"), capabilities_from(cases)).map_err(|e| e.to_string())?;
    }
    let text = std::fs::read_to_string(root.join("capabilities.toml")).map_err(|e| e.to_string())?;
    let claims: std::collections::BTreeMap<String, Claims> = toml::from_str(&text).map_err(|e| e.to_string())?;
    let mut problems = Vec::new();
    for (provider, claim) in &claims {
        let of_provider: Vec<&Case> = cases.values().filter(|c| &c.provider == provider).collect();
        for capability in &claim.supported {
            if !of_provider.iter().any(|c| c.capability() == capability && c.shows_support()) {
                problems.push(format!("{provider}: `{capability}` is claimed supported but no passing case shows it"));
            }
        }
        for (capability, kind) in &claim.unsupported {
            let shown = of_provider.iter().any(|c| {
                c.capability() == capability && c.spec.expect.as_ref().is_some_and(|e| e.no_request && &e.error == kind)
            });
            if !shown {
                problems
                    .push(format!("{provider}: `{capability}` is claimed unsupported ({kind}) but no case shows it"));
            }
        }
    }
    for case in cases.values() {
        let claim = claims.get(&case.provider);
        if case.shows_support() && !claim.is_some_and(|c| c.supported.iter().any(|s| s == case.capability())) {
            problems.push(format!(
                "{}: shows `{}` working, but capabilities.toml does not claim it",
                case.id(),
                case.capability()
            ));
        }
        if case.spec.expect.as_ref().is_some_and(|e| e.unsupported)
            && !claim.is_some_and(|c| c.unsupported.contains_key(case.capability()))
        {
            problems.push(format!(
                "{}: shows `{}` unsupported, but capabilities.toml does not say so",
                case.id(),
                case.capability()
            ));
        }
    }
    problems.sort();
    if problems.is_empty() { Ok(()) } else { Err(problems.join("\n").into()) }
}

/// The provider x capability table in docs/providers.md: (column, capabilities any of which show it).
const MATRIX: &[(&str, &[&str])] = &[
    ("chat", &["plain_text"]),
    ("system", &["system_message"]),
    ("stream", &["stream_text"]),
    ("tools", &["tools_auto"]),
    ("tool choice", &["tools_required"]),
    ("streamed tools", &["stream_tools_usage"]),
    ("images", &["image_url", "image_base64"]),
    ("JSON schema", &["json_schema"]),
    ("reasoning", &["reasoning_low", "reasoning"]),
    ("embeddings", &["embeddings_float", "embeddings_single"]),
    ("models", &["models"]),
];

/// The matrix from `capabilities.toml`: yes for a capability a case shows working, no for
/// one a case shows refused, blank where no case says.
fn readme_matrix(claims: &std::collections::BTreeMap<String, Claims>, order: &[String]) -> String {
    let mut out = String::from("| provider |");
    for (column, _) in MATRIX {
        out.push_str(&format!(" {column} |"));
    }
    out.push_str("\n| --- |");
    out.push_str(&" :-: |".repeat(MATRIX.len()));
    for provider in order {
        let Some(claim) = claims.get(provider) else { continue };
        out.push_str(&format!("\n| `{provider}` |"));
        for (_, capabilities) in MATRIX {
            let cell = if capabilities.iter().any(|c| claim.supported.iter().any(|s| s == c)) {
                "yes"
            } else if capabilities.iter().any(|c| claim.unsupported.contains_key(*c)) {
                "no"
            } else {
                ""
            };
            out.push_str(&format!(" {cell} |"));
        }
    }
    out
}

/// docs/providers.md's table says what `capabilities.toml` says (`UPDATE_README=1` rewrites it).
fn check_readme_matrix(root: &Path) -> Result<(), Failed> {
    let text = std::fs::read_to_string(root.join("capabilities.toml")).map_err(|e| e.to_string())?;
    let claims: std::collections::BTreeMap<String, Claims> = toml::from_str(&text).map_err(|e| e.to_string())?;
    // Providers in the order the file lists them.
    let order: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix('[')?.strip_suffix(']').filter(|n| !n.contains('.')).map(str::to_string))
        .collect();
    let table = readme_matrix(&claims, &order);
    let readme_path = root.join("../docs/providers.md");
    let readme = std::fs::read_to_string(&readme_path).map_err(|e| e.to_string())?;
    let (start, end) = ("<!-- capabilities:start -->", "<!-- capabilities:end -->");
    let a = readme.find(start).map(|i| i + start.len());
    let b = a.and_then(|a| readme[a..].find(end).map(|i| a + i));
    let (Some(a), Some(b)) = (a, b) else {
        return Err("docs/providers.md has no capabilities:start/end block".into());
    };
    if readme[a..b].trim_matches('\n') == table {
        return Ok(());
    }
    if std::env::var_os("UPDATE_README").is_some() {
        let updated = format!("{}\n{table}\n{}", &readme[..a], &readme[b..]);
        std::fs::write(&readme_path, updated).map_err(|e| e.to_string())?;
        return Ok(());
    }
    Err(format!("docs/providers.md's capability table is stale; run with UPDATE_README=1. Expected:\n{table}").into())
}

fn run_case(runtime: &tokio::runtime::Runtime, case: &Case, by_id: &HashMap<String, Case>) -> Result<(), Failed> {
    let result = runtime.block_on(replay(case)).map_err(|e| e.to_string())?;
    if !result.problems.is_empty() {
        return Err(format!("{}:\n  {}", case.id(), result.problems.join("\n  ")).into());
    }
    if let Some(twin) = &case.spec.twin {
        let twin_case =
            by_id.get(&format!("{}/{twin}", case.provider)).ok_or_else(|| format!("no twin case {twin}"))?;
        let twin_result = runtime.block_on(replay(twin_case)).map_err(|e| e.to_string())?;
        let (Outcome::Stream { assembled, .. }, Outcome::Chat(whole)) = (&result.outcome, &twin_result.outcome) else {
            return Err(format!("{}: twin {twin} must be a successful chat case", case.id()).into());
        };
        let diff = twin_problems(assembled, whole);
        if !diff.is_empty() {
            return Err(format!("the stream does not assemble to its twin {twin}:\n  {}", diff.join("\n  ")).into());
        }
    }
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(&case.dir);
    settings.set_prepend_module_to_snapshot(false);
    settings.set_description(case.spec.description.clone());
    settings.set_omit_expression(true);
    settings.bind(|| {
        insta::assert_json_snapshot!("output", result.output(), {
            ".id" => "[id]",
            ".created" => "[created]",
            ".chunks[].id" => "[id]",
            ".chunks[].created" => "[created]",
            ".assembled.id" => "[id]",
            ".assembled.created" => "[created]",
        });
    });
    Ok(())
}
