//! The gateway as a process, as an operator runs it: what it logs, how it refuses a bad
//! config, and what survives SIGTERM and SIGKILL.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const MASTER: &str = "sk-master-for-process-tests";

fn switchyard() -> Command {
    Command::new(env!("CARGO_BIN_EXE_switchyard"))
}

fn temp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("switchyard-process-{name}-{:016x}", fastrand::u64(..)))
}

/// Starts `switchyard serve` with `config` and `args`, waits until it listens, and returns it
/// with its port.
fn serve(config: &str, args: &[&str], database: &std::path::Path) -> (Child, u16) {
    serve_with(config, args, database, &[])
}

/// [`serve`] with more environment variables.
fn serve_with(config: &str, args: &[&str], database: &std::path::Path, env: &[(&str, &str)]) -> (Child, u16) {
    let path = temp("config.yaml");
    std::fs::write(&path, config).unwrap_or_else(|e| panic!("{e}"));
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0);
    let mut child = switchyard()
        .args(args)
        .args(["serve", "--config"])
        .arg(&path)
        .args(["--port", &port.to_string()])
        .env("SWITCHYARD_MASTER_KEY", MASTER)
        .env("SWITCHYARD_DATABASE_URL", format!("sqlite://{}", database.display()))
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    for _ in 0..300 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (child, port);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the gateway did not listen on {port}");
}

/// One raw HTTP/1.1 exchange with `connection: close`.
fn http(port: u16, request: &str) -> String {
    use std::io::Write as _;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| panic!("{e}"));
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    stream.write_all(request.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let mut out = String::new();
    let _ = stream.read_to_string(&mut out);
    out
}

fn stop(mut child: Child) -> String {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    let _ = child.wait();
    stderr
}

/// Defect: `GET /key/info?key=sk-...` and any `?api_key=` wrote the secret into the
/// request log at `-vv`.
#[test]
fn secrets_in_query_strings_never_reach_the_log() {
    let database = temp("log.db");
    let (child, port) =
        serve("model_list:\n  - model_name: echo\n    litellm_params: {model: mock/echo}\n", &["-vv"], &database);
    for path in [
        "/key/info?key=sk-query-secret-1234567",
        "/v1/models?api_key=sk-query-secret-1234567",
        "/spend/logs?token=sk-query-secret-1234567",
    ] {
        let answer = http(
            port,
            &format!("GET {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {MASTER}\r\nconnection: close\r\n\r\n"),
        );
        assert!(answer.starts_with("HTTP/1.1 "), "{answer}");
    }
    let log = stop(child);
    assert!(log.contains("/key/info"), "the requests are logged at -vv: {log:.2000}");
    assert!(!log.contains("sk-query-secret-1234567"), "a secret reached the log");
    assert!(!log.contains(MASTER), "the master key reached the log");
}

/// Defect: `1e300` for `cooldown_time`, `timeout` or `cache_params.ttl` crashed start-up
/// (exit 101) instead of an error naming the field.
#[test]
fn an_out_of_range_config_value_is_an_error_naming_the_field_not_a_crash() {
    for (yaml, field) in [
        ("router_settings: {cooldown_time: 1e300}", "router_settings.cooldown_time"),
        ("router_settings: {timeout: 1e300}", "router_settings.timeout"),
        ("litellm_settings: {cache: true, cache_params: {ttl: 1e300}}", "litellm_settings.cache_params.ttl"),
        ("general_settings: {max_request_size_mb: 17592186044416}", "general_settings.max_request_size_mb"),
    ] {
        let path = temp("bad.yaml");
        std::fs::write(
            &path,
            format!("model_list:\n  - model_name: echo\n    litellm_params: {{model: mock/echo}}\n{yaml}\n"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let output = switchyard()
            .args(["serve", "--port", "0", "--config"])
            .arg(&path)
            .env("SWITCHYARD_MASTER_KEY", MASTER)
            .env("SWITCHYARD_DATABASE_URL", format!("sqlite://{}", temp("bad.db").display()))
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{yaml}: {stderr}");
        assert!(stderr.contains(field) && !stderr.contains("panicked"), "{yaml}: {stderr}");
    }
}

fn spend_rows(database: &std::path::Path) -> i64 {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));
    runtime.block_on(async {
        let url = format!("sqlite://{}", database.display());
        let store = switchyard::gateway::store::Store::connect(&url).await.unwrap_or_else(|e| panic!("{e}"));
        store.spend_count().await.unwrap_or_else(|e| panic!("{e}"))
    })
}

fn answered_calls(port: u16, calls: usize) {
    let body = r#"{"model": "echo", "messages": [{"role": "user", "content": "hi"}]}"#;
    for _ in 0..calls {
        let answer = http(
            port,
            &format!(
                "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {MASTER}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            ),
        );
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
}

/// A SIGKILL loses the rows of the flush window (here a long one, so the loss shows);
/// in durable mode it loses none of the answered calls.
#[test]
fn sigkill_loses_only_the_flush_window_and_nothing_in_durable_mode() {
    let models = "model_list:\n  - model_name: echo\n    litellm_params: {model: mock/echo}\n";
    for durable in [false, true] {
        let database = temp("kill.db");
        let config = format!("{models}general_settings: {{spend_flush_ms: 5000, durable_spend: {durable}}}\n");
        let (mut child, port) = serve(&config, &[], &database);
        answered_calls(port, 5);
        let _ = child.kill();
        let _ = child.wait();
        let rows = spend_rows(&database);
        if durable {
            assert_eq!(rows, 5, "durable mode: every answered call has its row");
        } else {
            assert!(rows < 5, "the rows of the last 5 s were still gathering: {rows}");
        }
    }
}

/// SIGTERM drains: every answered call has its row, whatever the window.
#[test]
fn sigterm_loses_no_spend_row() {
    let database = temp("term.db");
    let config = "model_list:\n  - model_name: echo\n    litellm_params: {model: mock/echo}\ngeneral_settings: {spend_flush_ms: 5000}\n";
    let (child, port) = serve(config, &[], &database);
    answered_calls(port, 5);
    let _ = stop(child);
    assert_eq!(spend_rows(&database), 5);
}

/// A gateway whose environment names an HTTP proxy reaches its upstream through it (here a
/// host that does not resolve, so only the proxy can answer), as curl and the SDKs do.
#[test]
fn an_upstream_is_reached_through_the_proxy_the_environment_names() {
    use std::io::{BufRead as _, Write as _};
    let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap_or_else(|e| panic!("{e}")));
    proxy.set_nonblocking(true).unwrap_or_else(|e| panic!("{e}"));
    let seen = std::thread::spawn(move || {
        // Bounded: a gateway that ignored the proxy would never connect.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let stream = loop {
            match proxy.accept() {
                Ok((stream, _)) => break stream,
                Err(_) if std::time::Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => return vec![format!("no connection to the proxy: {e}")],
            }
        };
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let mut reader = std::io::BufReader::new(stream);
        let (mut head, mut length) = (Vec::new(), 0usize);
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap_or(0);
            }
            head.push(line.trim_end().to_string());
        }
        let mut body = vec![0; length];
        let _ = reader.read_exact(&mut body);
        let answer = r#"{"id":"c1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"via the proxy"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":3,"total_tokens":4}}"#;
        let mut stream = reader.into_inner();
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
            answer.len()
        );
        head
    });
    let config = "model_list:\n  - model_name: echo\n    litellm_params: {model: openai/gpt-4o-mini, api_base: 'http://upstream.invalid/v1', api_key: sk-upstream}\n";
    let database = temp("proxy.db");
    let (child, port) = serve_with(config, &[], &database, &[("HTTP_PROXY", &proxy_url), ("NO_PROXY", "")]);
    let body = r#"{"model": "echo", "messages": [{"role": "user", "content": "hi"}]}"#;
    let answer = http(
        port,
        &format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {MASTER}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    stop(child);
    let head = seen.join().unwrap_or_else(|_| panic!("the proxy thread failed"));
    assert!(answer.starts_with("HTTP/1.1 200") && answer.contains("via the proxy"), "{answer}");
    assert_eq!(
        head.first().map(String::as_str),
        Some("POST http://upstream.invalid/v1/chat/completions HTTP/1.1"),
        "{head:?}"
    );
    assert!(head.iter().any(|h| h.eq_ignore_ascii_case("authorization: Bearer sk-upstream")), "{head:?}");
}
