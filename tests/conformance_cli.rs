//! `switchyard conformance` end to end, as processes on loopback: live runs against the
//! gateway (OpenAI format and `/v1/messages`), a mock upstream told to misbehave (each fault
//! must fail the check that catches it, and only by failing, never by crashing), recording
//! a case from the mock upstream and replaying it, and the replay's reports.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");
const KEY: &str = "sk-conformance-cli-tests";

/// A child process, killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or_else(|e| panic!("{e}"))
}

fn wait_for(port: u16) {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(20), "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("switchyard-cli-{name}-{:016x}", fastrand::u64(..)));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    dir
}

/// A gateway process with the mock's models (each with a context window, for the
/// oversize-prompt scenario).
fn gateway() -> (Process, u16) {
    let dir = temp_dir("gateway");
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        "model_list:
  - model_name: tools
    litellm_params: {model: mock/tools}
    model_info: {max_input_tokens: 8000}
  - model_name: embed
    litellm_params: {model: mock/embed}
",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let port = free_port();
    let child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .args(["--port", &port.to_string()])
        .env("SWITCHYARD_MASTER_KEY", KEY)
        .env("SWITCHYARD_DATABASE_URL", format!("sqlite://{}", dir.join("db.sqlite").display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let process = Process(child);
    wait_for(port);
    (process, port)
}

fn mock_upstream(misbehave: Option<&str>) -> (Process, u16) {
    let port = free_port();
    let mut command = Command::new(BIN);
    command.args(["mock-upstream", "--port", &port.to_string()]);
    if let Some(fault) = misbehave {
        command.args(["--misbehave", fault]);
    }
    let child = command.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap_or_else(|e| panic!("{e}"));
    let process = Process(child);
    wait_for(port);
    (process, port)
}

fn switchyard(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("GATEWAY_KEY", KEY)
        .env("RECORD_KEY", "sk-record-secret-0123456789")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn json_report(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not a JSON report ({e}): {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn case<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["cases"]
        .as_array()
        .and_then(|cases| cases.iter().find(|c| c["id"] == id))
        .unwrap_or_else(|| panic!("no case {id} in {report}"))
}

fn failed_checks(case: &Value) -> Vec<String> {
    case["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["passed"] == false)
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect()
}

fn passed_checks(case: &Value) -> Vec<String> {
    case["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["passed"] == true)
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect()
}

fn no_failures(report: &Value) {
    let failed: Vec<(String, Vec<String>)> = report["cases"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["verdict"] == "failed")
        .map(|c| (c["id"].as_str().unwrap_or_default().to_string(), failed_checks(c)))
        .collect();
    assert!(failed.is_empty(), "failures: {failed:?}\n{report}");
}

#[test]
fn a_live_run_against_the_gateway_in_openai_format_passes_every_check() {
    let (_gateway, port) = gateway();
    let base = format!("http://127.0.0.1:{port}/v1");
    let output = switchyard(&[
        "conformance",
        "run",
        "--provider",
        "openai_compat",
        "--base-url",
        &base,
        "--api-key-env",
        "GATEWAY_KEY",
        "--model",
        "tools",
        "--embedding-model",
        "embed",
        "--oversize-tokens",
        "20000",
        "--format",
        "json",
    ]);
    let report = json_report(&output);
    no_failures(&report);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(report["summary"]["passed"].as_u64().is_some_and(|n| n >= 20), "{}", report["summary"]);
    let streamed = case(&report, "openai_compat/stream_tools_usage");
    for check in ["call", "wire_schema", "wire_stream", "openai_schema", "stream_chunks", "tool_calls", "agreement"] {
        assert!(passed_checks(streamed).contains(&check.to_string()), "{check} in {streamed}");
    }
    for scenario in ["error/bad_key", "error/unknown_model", "error/oversize_prompt"] {
        let checks = passed_checks(case(&report, scenario));
        assert_eq!(checks, ["error_status", "error_kind", "error_envelope"], "{scenario}");
    }
    assert_eq!(case(&report, "openai_compat/embeddings_float")["verdict"], "passed");
}

#[test]
fn a_live_run_against_the_gateways_messages_route_passes_every_check() {
    let (_gateway, port) = gateway();
    let base = format!("http://127.0.0.1:{port}");
    let output = switchyard(&[
        "conformance",
        "run",
        "--provider",
        "anthropic",
        "--base-url",
        &base,
        "--api-key-env",
        "GATEWAY_KEY",
        "--model",
        "tools",
        "--oversize-tokens",
        "20000",
        "--format",
        "json",
    ]);
    let report = json_report(&output);
    no_failures(&report);
    let streamed = case(&report, "anthropic/stream_tools_usage");
    for check in ["wire_schema", "wire_stream", "stream_chunks", "tool_calls", "agreement"] {
        assert!(passed_checks(streamed).contains(&check.to_string()), "{check} in {streamed}");
    }
    assert_eq!(case(&report, "error/bad_key")["verdict"], "passed");
    assert_eq!(case(&report, "anthropic/plain_text")["verdict"], "passed");
}

/// A fault, and per case the checks it must fail.
type Expectation = (&'static str, &'static [(&'static str, &'static [&'static str])]);

#[test]
fn each_misbehaviour_of_an_upstream_fails_the_check_that_catches_it() {
    let run = |port: u16, cases: &str| {
        let base = format!("http://127.0.0.1:{port}/v1");
        let output = switchyard(&[
            "conformance",
            "run",
            "--provider",
            "openai_compat",
            "--base-url",
            &base,
            "--model",
            "tools",
            "--case",
            cases,
            "--format",
            "json",
        ]);
        (json_report(&output), output.status.success())
    };
    let subset = "openai_compat/*t*";
    let (_clean, port) = mock_upstream(None);
    let (report, ok) = run(port, subset);
    no_failures(&report);
    assert!(ok);

    // (fault, [(case, the checks that must fail: exactly these)])
    let expectations: &[Expectation] = &[
        (
            "wrong-finish-reason",
            &[
                ("openai_compat/plain_text", &["wire_schema", "openai_schema"]),
                ("openai_compat/stream_text", &["wire_schema", "openai_schema"]),
            ],
        ),
        (
            "broken-stream",
            &[("openai_compat/stream_text", &["call", "wire_stream"]), ("openai_compat/plain_text", &[])],
        ),
        (
            "bad-tool-arguments",
            &[
                ("openai_compat/tools_auto", &["tool_calls"]),
                ("openai_compat/stream_tools_usage", &["stream_chunks", "tool_calls"]),
            ],
        ),
        (
            "missing-usage",
            &[("openai_compat/plain_text", &["usage"]), ("openai_compat/stream_tools_usage", &["stream_chunks"])],
        ),
    ];
    for (fault, cases) in expectations {
        let (_mock, port) = mock_upstream(Some(fault));
        let (report, ok) = run(port, subset);
        assert!(!ok, "{fault}: the run must exit non-zero");
        for (id, expected) in *cases {
            let found = case(&report, id);
            let failed = failed_checks(found);
            assert_eq!(failed, *expected, "{fault}: {id}: {found}");
            if !expected.is_empty() {
                assert_eq!(found["verdict"], "failed", "{fault}: {id}");
            }
        }
    }
}

#[test]
fn a_recorded_case_replays_green_and_keeps_no_secret() {
    let root = temp_dir("record");
    std::fs::create_dir_all(root.join("inputs")).unwrap_or_else(|e| panic!("{e}"));
    let inputs = Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance/inputs");
    for input in ["tools_auto", "stream_tools_usage"] {
        std::fs::copy(inputs.join(format!("{input}.json")), root.join("inputs").join(format!("{input}.json")))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let (_mock, port) = mock_upstream(None);
    let base = format!("http://127.0.0.1:{port}/v1");
    let root_arg = root.display().to_string();
    let record = |name: &str, input: &str, force: bool| {
        let mut args = vec![
            "conformance",
            "record",
            "--provider",
            "openai_compat",
            "--base-url",
            &base,
            "--model",
            "tools",
            "--api-key-env",
            "RECORD_KEY",
            "--case",
            name,
            "--input",
            input,
            "--root",
            &root_arg,
        ];
        if force {
            args.push("--force");
        }
        switchyard(&args)
    };
    let first = record("mock_tools", "tools_auto", false);
    assert!(
        first.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&first.stdout),
        String::from_utf8_lossy(&first.stderr)
    );
    let dir = root.join("openai/mock_tools");
    for file in ["case.toml", "request.json", "response.json", "response.meta.json", "output.snap"] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(!text.contains("sk-record-secret"), "{file} keeps the key");
        assert!(!text.to_ascii_lowercase().contains("authorization"), "{file} keeps an auth header");
    }
    let case_toml = std::fs::read_to_string(dir.join("case.toml")).unwrap_or_default();
    assert!(case_toml.contains("source = \"recorded 20"), "{case_toml}");
    assert!(case_toml.contains("model = \"openai/tools\""), "{case_toml}");

    let again = record("mock_tools", "tools_auto", false);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"), "{}", String::from_utf8_lossy(&again.stderr));
    assert!(record("mock_tools", "tools_auto", true).status.success());

    let streamed = record("mock_stream_tools", "stream_tools_usage", false);
    assert!(streamed.status.success(), "{}", String::from_utf8_lossy(&streamed.stderr));
    assert!(root.join("openai/mock_stream_tools/response.sse").exists());

    let replay = switchyard(&["conformance", "replay", "--root", &root_arg, "--format", "json"]);
    let report = json_report(&replay);
    assert!(replay.status.success(), "{report}");
    for id in ["openai/mock_tools", "openai/mock_stream_tools"] {
        let found = case(&report, id);
        assert_eq!(found["verdict"], "passed", "{found}");
        assert_eq!(passed_checks(found), ["request", "outcome", "snapshot"], "{id}");
    }
}

#[test]
fn replay_reports_as_junit_and_fails_on_a_broken_case() {
    let output = switchyard(&["conformance", "replay", "--provider", "groq", "--format", "junit"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let xml = String::from_utf8_lossy(&output.stdout);
    let cases = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance/groq"))
        .map(|d| d.filter_map(Result::ok).filter(|e| e.path().join("case.toml").exists()).count())
        .unwrap_or(0);
    assert!(cases > 0);
    assert_eq!(xml.matches("<testcase ").count(), cases, "{xml}");
    assert!(xml.contains("failures=\"0\""), "{xml}");

    // A copy of a case whose snapshot says something else fails its snapshot check.
    let root = temp_dir("broken");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance");
    std::fs::create_dir_all(root.join("openai/plain_text")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(root.join("inputs")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(source.join("inputs/plain_text.json"), root.join("inputs/plain_text.json"))
        .unwrap_or_else(|e| panic!("{e}"));
    for entry in std::fs::read_dir(source.join("openai/plain_text")).into_iter().flatten().flatten() {
        std::fs::copy(entry.path(), root.join("openai/plain_text").join(entry.file_name()))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let snap = root.join("openai/plain_text/output.snap");
    let text = std::fs::read_to_string(&snap).unwrap_or_default().replace("\"stop\"", "\"length\"");
    std::fs::write(&snap, text).unwrap_or_else(|e| panic!("{e}"));
    let output = switchyard(&["conformance", "replay", "--root", &root.display().to_string(), "--format", "json"]);
    assert!(!output.status.success());
    let report = json_report(&output);
    assert_eq!(failed_checks(case(&report, "openai/plain_text")), ["snapshot"]);
}
