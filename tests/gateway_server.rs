//! The gateway's connections over real sockets: header, body and idle deadlines, the
//! connection cap, envelopes for requests hyper refuses itself, refusals before a body is
//! read, and the shutdown deadline.

use std::time::Duration;

use serde_json::Value;
use switchyard::gateway::{Config, Gateway, serve_on_workers};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MASTER: &str = "sk-master-for-server-tests";

/// The longest any answer may take here: the gateway's deadlines are 1 s.
const BOUND: Duration = Duration::from_secs(15);

struct Running {
    addr: std::net::SocketAddr,
    database: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<switchyard::Result<()>>,
}

async fn start(general: &str) -> Running {
    let config = format!(
        "model_list:\n  - model_name: echo\n    litellm_params: {{model: mock/echo}}\n  - model_name: slow\n    litellm_params: {{model: mock/slow-10000}}\ngeneral_settings: {{client_header_timeout: 1, client_body_timeout: 1, graceful_shutdown_timeout: 1, max_request_size_mb: 1{general}}}\n"
    );
    let config = Config::parse(&config).unwrap_or_else(|e| panic!("{e}"));
    let path = std::env::temp_dir().join(format!("switchyard-server-{:016x}.db", fastrand::u64(..)));
    let database = format!("sqlite://{}", path.display());
    let url = database.clone();
    let env = move |name: &str| match name {
        "SWITCHYARD_MASTER_KEY" => Some(MASTER.to_string()),
        "SWITCHYARD_DATABASE_URL" => Some(url.clone()),
        _ => None,
    };
    let gateway = Gateway::from_config(&config, &env).await.unwrap_or_else(|e| panic!("{e}"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(serve_on_workers(gateway, listener, 2, async move {
        let _ = stopped.await;
    }));
    Running { addr, database, stop: Some(stop), served }
}

/// Sends `bytes` and reads until the connection closes (or [`BOUND`] passes: a failure).
async fn exchange(addr: std::net::SocketAddr, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap_or_else(|e| panic!("{e}"));
    stream.write_all(bytes).await.unwrap_or_else(|e| panic!("{e}"));
    read_to_close(&mut stream).await
}

async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let read = tokio::time::timeout(BOUND, stream.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "the connection was not closed within {BOUND:?}: {}", String::from_utf8_lossy(&out));
    String::from_utf8_lossy(&out).into_owned()
}

/// The status and the envelope's `error.code` of a raw HTTP answer.
fn status_and_code(answer: &str) -> (u16, String) {
    let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let json: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("not an envelope ({e}): {answer}"));
    (status, json["error"]["code"].as_str().unwrap_or_default().to_string())
}

fn post(path: &str, headers: &str, body: &str) -> Vec<u8> {
    format!("POST {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {MASTER}\r\n{headers}content-length: {}\r\n\r\n{body}", body.len())
        .into_bytes()
}

/// Defect: connections that sent nothing, half a header, or sat idle after an answer
/// stayed open (1,000 slowloris connections all open after 45 s).
#[tokio::test]
async fn silent_half_sent_and_idle_connections_are_closed_at_the_header_timeout() {
    let gateway = start("").await;
    // Nothing at all.
    assert_eq!(exchange(gateway.addr, b"").await, "");
    // Half a header, then nothing.
    assert_eq!(exchange(gateway.addr, b"GET /health/liveness HTTP/1.1\r\nHost").await, "");
    // An answer, then an idle keep-alive.
    let answer = exchange(gateway.addr, b"GET /health/liveness HTTP/1.1\r\nhost: x\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// Defect: 300 idle connections made the gateway unresponsive under a 256 fd limit; past
/// the cap a new connection is now told so and closed.
#[tokio::test]
async fn past_the_connection_cap_a_new_connection_gets_a_503_envelope() {
    let gateway = start(", max_connections: 3").await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(gateway.addr).await.unwrap_or_else(|e| panic!("{e}")));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let answer = exchange(gateway.addr, b"GET /health/liveness HTTP/1.1\r\nhost: x\r\n\r\n").await;
    assert_eq!(status_and_code(&answer), (503, "too_many_connections".into()), "{answer}");
    drop(held);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let answer = exchange(gateway.addr, b"GET /health/liveness HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "the cap frees as connections close: {answer}");
}

/// Defect: the 400 and 431 hyper answers itself had empty bodies.
#[tokio::test]
async fn requests_hyper_refuses_get_an_envelope() {
    let gateway = start("").await;
    let cases: [(Vec<u8>, u16, &str); 4] = [
        (b"\x00\x01 not http\r\n\r\n".to_vec(), 400, "invalid_http"),
        // Past the gateway's own header limit (64 KiB), well inside hyper's buffer.
        (
            format!("GET /health/liveness HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n", "a".repeat(100_000)).into_bytes(),
            431,
            "headers_too_large",
        ),
        (
            format!("GET /health/liveness HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n", "a".repeat(500_000)).into_bytes(),
            431,
            "headers_too_large",
        ),
        (format!("GET /{} HTTP/1.1\r\nhost: x\r\n\r\n", "a".repeat(70_000)).into_bytes(), 414, "url_too_long"),
    ];
    for (request, status, code) in cases {
        let answer = exchange(gateway.addr, &request).await;
        assert_eq!(status_and_code(&answer), (status, code.to_string()), "{answer}");
    }
}

/// Defects: a declared `Content-Length` over the limit was not refused before the bytes
/// arrived; admin routes over the limit answered 413 in plain text; any `Content-Type` was
/// accepted; 20 stalled uploads pinned 627 MB.
#[tokio::test]
async fn bodies_are_refused_early_in_an_envelope_and_must_arrive_in_time() {
    let gateway = start("").await;
    for path in ["/v1/chat/completions", "/key/generate"] {
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {MASTER}\r\ncontent-type: application/json\r\ncontent-length: 99999999999\r\n\r\n"
        );
        // Only the head is sent: the answer comes without the body.
        let answer = exchange(gateway.addr, head.as_bytes()).await;
        assert_eq!(status_and_code(&answer), (413, "request_too_large".into()), "{path}: {answer}");
    }
    let answer = exchange(gateway.addr, &post("/v1/chat/completions", "content-type: text/html\r\n", "{}")).await;
    assert_eq!(status_and_code(&answer), (415, "unsupported_media_type".into()), "{answer}");
    // Anthropic's route answers in Anthropic's envelope.
    let answer = exchange(gateway.addr, &post("/v1/messages", "content-type: text/xml\r\n", "{}")).await;
    assert!(answer.contains("\"type\":\"error\"") && answer.starts_with("HTTP/1.1 415"), "{answer}");
    // Half a body, then nothing: 408 at the body deadline.
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {MASTER}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"model\""
    );
    let answer = exchange(gateway.addr, head.as_bytes()).await;
    assert_eq!(status_and_code(&answer), (408, "request_timeout".into()), "{answer}");
}

/// Defect: SIGTERM never completed while one half-sent request was open. Now what is
/// still open at the shutdown deadline is closed, and the calls it held end with spend rows.
#[tokio::test]
async fn a_shutdown_completes_at_its_deadline_whatever_is_open() {
    let mut gateway = start("").await;
    let mut half = TcpStream::connect(gateway.addr).await.unwrap_or_else(|e| panic!("{e}"));
    half.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{")
        .await
        .unwrap_or_default();
    let mut slow = TcpStream::connect(gateway.addr).await.unwrap_or_else(|e| panic!("{e}"));
    let body = r#"{"model": "slow", "messages": [{"role": "user", "content": "hi"}]}"#;
    slow.write_all(&post("/v1/chat/completions", "content-type: application/json\r\n", body)).await.unwrap_or_default();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = gateway.stop.take().map(|stop| stop.send(()));
    let served = tokio::time::timeout(BOUND, &mut gateway.served).await;
    assert!(served.is_ok(), "the gateway did not stop within {BOUND:?}");
    // The slow call was dropped at the deadline, not answered.
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), slow.read_to_end(&mut out)).await;
    assert!(!String::from_utf8_lossy(&out).contains("200 OK"));
    // ...and it has its spend row, written before the gateway returned.
    let store = switchyard::gateway::store::Store::connect(&gateway.database).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(store.spend_count().await.unwrap_or_default(), 1);
}

/// A client that reads a stream slowly holds back the upstream (backpressure end to end):
/// the gateway buffers no more than the sockets do, however long the stream.
#[tokio::test]
async fn a_slow_reader_holds_the_upstream_back_and_memory_stays_bounded() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    // An upstream whose stream never ends, counting what it has produced.
    let produced = Arc::new(AtomicUsize::new(0));
    let counter = produced.clone();
    let upstream = axum::Router::new().fallback(move || {
        let counter = counter.clone();
        async move {
            let event = format!(
                "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{}\"}},\"finish_reason\":null}}]}}\n\n",
                "x".repeat(4000)
            );
            let body = futures_util::stream::repeat_with(move || {
                counter.fetch_add(event.len(), Ordering::Relaxed);
                Ok::<_, std::convert::Infallible>(axum::body::Bytes::from(event.clone()))
            });
            ([("content-type", "text/event-stream")], axum::body::Body::from_stream(body))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
    let upstream_addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(async move { axum::serve(listener, upstream).await });

    let config = format!(
        "model_list:\n  - model_name: endless\n    litellm_params: {{model: openai/m, api_base: 'http://{upstream_addr}/v1', api_key: sk-up}}\n"
    );
    let config = Config::parse(&config).unwrap_or_else(|e| panic!("{e}"));
    let path = std::env::temp_dir().join(format!("switchyard-slow-{:016x}.db", fastrand::u64(..)));
    let database = format!("sqlite://{}", path.display());
    let env = move |name: &str| match name {
        "SWITCHYARD_MASTER_KEY" => Some(MASTER.to_string()),
        "SWITCHYARD_DATABASE_URL" => Some(database.clone()),
        _ => None,
    };
    let gateway = Gateway::from_config(&config, &env).await.unwrap_or_else(|e| panic!("{e}"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(serve_on_workers(gateway, listener, 1, std::future::pending()));

    let mut client = TcpStream::connect(addr).await.unwrap_or_else(|e| panic!("{e}"));
    let body = r#"{"model": "endless", "stream": true, "messages": [{"role": "user", "content": "go"}]}"#;
    client
        .write_all(&post("/v1/chat/completions", "content-type: application/json\r\n", body))
        .await
        .unwrap_or_default();
    let mut read = 0usize;
    let mut buf = [0u8; 1024];
    for _ in 0..100 {
        read += client.read(&mut buf).await.unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let upstream_sent = produced.load(Ordering::Relaxed);
    assert!(read > 0, "the stream started");
    // Loopback socket buffers hold a few megabytes each way; without backpressure the
    // upstream would have produced gigabytes in these two seconds.
    assert!(upstream_sent < 48 << 20, "the upstream produced {upstream_sent} bytes for a reader of {read}");
    drop(client);
    // The client gone, the upstream stream is dropped too: it stops producing.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = produced.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(produced.load(Ordering::Relaxed), after, "the upstream stream ended with the client");
}

/// A body that comes in several pieces, some with the head and some after pauses, arrives
/// whole: what intake takes at once and what it waits for are joined in order.
#[tokio::test]
async fn a_body_sent_in_pieces_arrives_whole() {
    let gateway = start("").await;
    let body = r#"{"model":"echo","messages":[{"role":"user","content":"pieces arrive in order"}]}"#;
    let (early, rest) = body.split_at(20);
    let (middle, late) = rest.split_at(25);
    for chunked in [false, true] {
        let mut stream = TcpStream::connect(gateway.addr).await.unwrap_or_else(|e| panic!("{e}"));
        let framing = if chunked {
            "transfer-encoding: chunked\r\n".to_string()
        } else {
            format!("content-length: {}\r\n", body.len())
        };
        let piece = |text: &str| if chunked { format!("{:x}\r\n{text}\r\n", text.len()) } else { text.to_string() };
        let head = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {MASTER}\r\ncontent-type: application/json\r\nconnection: close\r\n{framing}\r\n{}",
            piece(early)
        );
        stream.write_all(head.as_bytes()).await.unwrap_or_else(|e| panic!("{e}"));
        for text in [middle, late] {
            tokio::time::sleep(Duration::from_millis(150)).await;
            stream.write_all(piece(text).as_bytes()).await.unwrap_or_else(|e| panic!("{e}"));
        }
        if chunked {
            stream.write_all(b"0\r\n\r\n").await.unwrap_or_else(|e| panic!("{e}"));
        }
        let answer = read_to_close(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "chunked={chunked}: {answer}");
        assert!(answer.contains("pieces arrive in order"), "chunked={chunked}: {answer}");
    }
}
