//! The `switchyard` command as a shell user runs it: against the built-in mock provider,
//! with its output piped into programs that stop reading early.

use std::io::Read;
use std::process::{Command, Stdio};

fn switchyard() -> Command {
    Command::new(env!("CARGO_BIN_EXE_switchyard"))
}

/// `switchyard ... | head -n 1` must not panic when `head` goes away: the reader closing the
/// pipe ends the command quietly and successfully, as it does for `ls` or `cat`.
#[test]
fn closed_stdout_ends_quietly() {
    let drift_args = [
        "spec",
        "drift",
        "--spec",
        concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openai.yaml"),
        "--upstream",
        concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openai.yaml"),
    ];
    let cases: [&[&str]; 4] =
        [&["providers"], &["chat", "hello"], &["chat", "--stream", "hello", "there"], &drift_args];
    for args in cases {
        let mut child = switchyard()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        // Close the read end before the command writes anything: its first write fails.
        drop(child.stdout.take());
        let mut stderr = String::new();
        child.stderr.take().expect("stderr is piped").read_to_string(&mut stderr).expect("stderr reads");
        let status = child.wait().expect("the command ends");
        assert!(status.success(), "{args:?} failed with {status} on a closed pipe:\n{stderr}");
        assert!(!stderr.contains("panicked"), "{args:?} panicked on a closed pipe:\n{stderr}");
    }
}

#[test]
fn chat_against_the_mock_prints_the_answer() {
    let output = switchyard().args(["chat", "Hello", "from", "the", "shell"]).output().expect("the command runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("Hello from the shell"), "the echo model repeats the prompt, got {stdout:?}");
}

#[test]
fn errors_are_reported_without_a_panic() {
    let output = switchyard().args(["chat", "--model", "nosuchprovider/x", "hi"]).output().expect("the command runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
