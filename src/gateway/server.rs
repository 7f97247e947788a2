//! Serving connections: each accepted connection is served by hyper with deadlines of its
//! own, counted against a cap, and closed at the shutdown deadline.
//!
//! - **Header timeout** ([`ServerLimits::header_timeout`], default 30 s): a request's head
//!   must arrive within it, and it runs from the end of the previous answer too, so it is
//!   also the keep-alive idle timeout. A connection that sends nothing, or half a header
//!   (slowloris), is closed when it passes.
//! - **Body timeout** ([`ServerLimits::body_timeout`]): see `gateway::intake`.
//! - **Connection cap** ([`ServerLimits::max_connections`]): past it, a new connection is
//!   answered `503` with OpenAI's envelope and closed, rather than left to starve the file
//!   descriptors every open connection and upstream call needs.
//! - **Shutdown deadline** ([`ServerLimits::shutdown_timeout`], default 20 s): after the
//!   signal, idle connections close at once and requests in flight may finish until the
//!   deadline; what is still open then is dropped (its calls end as cancelled, with their
//!   spend rows, which are drained before the process exits).
//!
//! hyper answers some malformed requests itself (400 for a request that is not HTTP, 431
//! for headers past its buffer, 414 for a URL too long), with empty bodies; [`Conn`]
//! rewrites exactly those answers into OpenAI's envelope as they are written.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

/// How connections are served.
#[derive(Clone, Debug)]
pub struct ServerLimits {
    /// A request's head must arrive within this (also the keep-alive idle timeout).
    pub header_timeout: Duration,
    /// A request's body must arrive within this, and no piece of it may take longer than
    /// [`ServerLimits::body_idle`].
    pub body_timeout: Duration,
    /// The longest pause between two pieces of a request's body.
    pub body_idle: Duration,
    /// Open connections past which new ones are refused with a 503.
    pub max_connections: usize,
    /// How long requests in flight may finish after the shutdown signal.
    pub shutdown_timeout: Duration,
    /// Bytes of request bodies being received at once, over all connections, past which a
    /// request is refused with a 503 (so slow uploads cannot hold the memory).
    pub max_receiving: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(120),
            body_idle: Duration::from_secs(30),
            max_connections: default_max_connections(),
            shutdown_timeout: Duration::from_secs(20),
            max_receiving: 1 << 30,
        }
    }
}

/// Half the process's limit on open files (`ulimit -n`, from `/proc/self/limits`; 1024 where
/// it cannot be read), from 64 to 65,536: every client connection may need an upstream
/// connection, the store and Redis need theirs.
pub fn default_max_connections() -> usize {
    let soft = std::fs::read_to_string("/proc/self/limits").ok().and_then(|limits| {
        let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
        line.split_whitespace().nth(3)?.parse::<usize>().ok()
    });
    (soft.unwrap_or(1024) / 2).clamp(64, 65_536)
}

/// A connection accepted by the acceptor, for a worker to serve.
pub(super) type Accepted = (std::net::TcpStream, SocketAddr);

/// Serves the connections handed to this event loop until `stop` turns true, then lets
/// requests in flight finish until the shutdown deadline and drops what is left.
pub(super) async fn serve_connections(
    mut incoming: mpsc::UnboundedReceiver<Accepted>,
    app: axum::Router,
    limits: Arc<ServerLimits>,
    open: Arc<AtomicUsize>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tasks = tokio::task::JoinSet::new();
    let watch = stop.clone();
    loop {
        tokio::select! {
            accepted = incoming.recv() => {
                let Some(accepted) = accepted else { break };
                take(accepted, &mut tasks, &app, &limits, &open, &watch);
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            _ = stop.wait_for(|stop| *stop) => break,
        }
    }
    // Connections accepted before the signal and not yet taken are served like the others
    // (their requests may already be on the wire).
    while let Ok(accepted) = incoming.try_recv() {
        take(accepted, &mut tasks, &app, &limits, &open, &watch);
    }
    let finished =
        tokio::time::timeout(limits.shutdown_timeout, async { while tasks.join_next().await.is_some() {} }).await;
    if finished.is_err() {
        tracing::warn!(
            connections = tasks.len(),
            deadline = ?limits.shutdown_timeout,
            "connections still open at the shutdown deadline are closed"
        );
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
}

/// Takes an accepted connection onto this loop: registered with its reactor (the acceptor
/// deregistered it) and served in `tasks`; one that cannot be registered is given back to the
/// connection count.
fn take(
    (stream, peer): Accepted,
    tasks: &mut tokio::task::JoinSet<()>,
    app: &axum::Router,
    limits: &Arc<ServerLimits>,
    open: &Arc<AtomicUsize>,
    stop: &watch::Receiver<bool>,
) {
    match TcpStream::from_std(stream) {
        Ok(stream) => {
            let conn = Conn { stream, open: open.clone(), rewrite: None };
            tasks.spawn(connection(conn, app.clone(), limits.clone(), stop.clone()));
        }
        Err(err) => {
            open.fetch_sub(1, Ordering::Relaxed);
            tracing::warn!(error = %err, %peer, "cannot take a connection onto a worker");
        }
    }
}

/// Serves one connection (HTTP/1.1 or HTTP/2) until it ends or a shutdown closes it.
async fn connection(conn: Conn, app: axum::Router, limits: Arc<ServerLimits>, mut stop: watch::Receiver<bool>) {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use tower::ServiceExt as _;
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10));
    // Nothing may be sent for a while before the first request either: hyper's header
    // timer starts only once it reads (it first waits for bytes to tell HTTP/1.1 from
    // HTTP/2), so a connection that sends nothing is closed here (at a shutdown, once the
    // grace for requests already on their way has passed).
    let mut stopping = stop.clone();
    let ready = tokio::select! {
        ready = tokio::time::timeout(limits.header_timeout, conn.stream.readable()) => Some(matches!(ready, Ok(Ok(())))),
        _ = stopping.wait_for(|stop| *stop) => None,
    };
    let ready = match ready {
        Some(ready) => ready,
        None => matches!(tokio::time::timeout(SHUTDOWN_GRACE, conn.stream.readable()).await, Ok(Ok(()))),
    };
    if !ready {
        return;
    }
    let service = hyper_util::service::TowerToHyperService::new(
        app.map_request(|request: http::Request<hyper::body::Incoming>| request.map(axum::body::Body::new)),
    );
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(conn), service);
    let mut conn = std::pin::pin!(conn);
    // At a shutdown, the connection is asked to close (after the request in progress, at
    // once when idle) only after a short grace: a request whose bytes are already on their
    // way, but not yet read, is then in progress and finishes, instead of being cut.
    let mut close_at: Option<tokio::time::Instant> = None;
    let mut closing = false;
    // Made once, not at every turn of the loop (the loop turns at every write).
    let stopped = async move {
        let _ = stop.wait_for(|stop| *stop).await;
    };
    let mut stopped = std::pin::pin!(stopped);
    loop {
        tokio::select! {
            served = conn.as_mut() => {
                if let Err(err) = served {
                    tracing::trace!(error = %err, "connection ended with an error");
                }
                return;
            }
            () = stopped.as_mut(), if close_at.is_none() => {
                close_at = Some(tokio::time::Instant::now() + SHUTDOWN_GRACE);
            }
            () = tokio::time::sleep_until(close_at.unwrap_or_else(tokio::time::Instant::now)), if close_at.is_some() && !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// How long a connection may still start a request after the shutdown signal: long enough
/// for one already on the wire to be read.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(250);

/// Connections refused at the cap that are still being told so.
static REFUSING: AtomicUsize = AtomicUsize::new(0);

/// Answers a connection past the cap with a 503 and closes it. The answer is written once,
/// without waiting; what the client sent is read and dropped for up to a second (closing
/// with unread data would reset the connection before the answer is read), for at most 64
/// refused connections at once: past that, a connection is closed at once.
pub(super) fn refuse(stream: TcpStream) {
    static ANSWER: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let answer = ANSWER.get_or_init(|| {
        let failure = super::ApiFailure::new(
            crate::error::ErrorKind::Overloaded,
            "the gateway is at its limit of open connections; retry shortly",
        )
        .code("too_many_connections");
        let body = failure.body().to_string();
        let head = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        [head.into_bytes(), body.into_bytes()].concat()
    });
    if REFUSING.fetch_add(1, Ordering::Relaxed) >= 64 {
        REFUSING.fetch_sub(1, Ordering::Relaxed);
        return;
    }
    tokio::spawn(async move {
        let _ = stream.try_write(answer);
        let linger = async {
            let mut sink = [0u8; 4096];
            let mut read = 0usize;
            while read < 64 << 10 && stream.readable().await.is_ok() {
                match stream.try_read(&mut sink) {
                    Ok(0) => break,
                    Ok(n) => read += n,
                    Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => break,
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), linger).await;
        REFUSING.fetch_sub(1, Ordering::Relaxed);
    });
}

/// hyper's own answers to requests it cannot parse, and what they become.
const REWRITES: [(&[u8], &str, &str); 3] = [
    (b"HTTP/1.1 400 Bad Request\r\n", "the request is not valid HTTP/1.1", "invalid_http"),
    (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
        "the request's headers are too large (or too many)",
        "headers_too_large",
    ),
    (b"HTTP/1.1 414 URI Too Long\r\n", "the request's URL is too long", "url_too_long"),
];

/// A served connection: counts itself out of its worker's open connections when it closes,
/// and gives hyper's empty automatic error answers an envelope.
pub(super) struct Conn {
    stream: TcpStream,
    open: Arc<AtomicUsize>,
    /// An envelope answer being written in place of hyper's, and how much of it is out.
    rewrite: Option<(Vec<u8>, usize)>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Conn {
    /// The envelope answer for one of hyper's automatic answers, if `head` is one. Our own
    /// error answers always have a body, so an empty 400, 414 or 431 can only be hyper's.
    fn envelope_for(head: &[u8]) -> Option<Vec<u8>> {
        let (status_line, message, code) = REWRITES.iter().find(|(line, _, _)| head.starts_with(line))?;
        let empty = memchr::memmem::find(head, b"\r\ncontent-length: 0\r\n").is_some();
        if !empty || !head.ends_with(b"\r\n\r\n") {
            return None;
        }
        let body = format!(
            r#"{{"error": {{"message": "{message}", "type": "invalid_request_error", "param": null, "code": "{code}"}}}}"#
        );
        let mut answer = status_line.to_vec();
        answer.extend_from_slice(
            format!("content-type: application/json\r\nconnection: close\r\ncontent-length: {}\r\n\r\n", body.len())
                .as_bytes(),
        );
        answer.extend_from_slice(body.as_bytes());
        Some(answer)
    }

    /// Writes what is left of a rewritten answer; ready when all of it is out.
    fn drain_rewrite(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while let Some((answer, written)) = self.rewrite.as_mut() {
            if *written >= answer.len() {
                self.rewrite = None;
                break;
            }
            match Pin::new(&mut self.stream).poll_write(cx, &answer[*written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => *written += n,
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for Conn {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        if self.rewrite.is_none()
            && let Some(answer) = Self::envelope_for(buf)
        {
            self.rewrite = Some((answer, 0));
        }
        if self.rewrite.is_some() {
            // hyper's answer counts as written once ours is.
            return self.drain_rewrite(cx).map_ok(|()| buf.len());
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        if let Some(first) = bufs.iter().find(|b| !b.is_empty())
            && self.rewrite.is_none()
            && let Some(answer) = Self::envelope_for(first)
        {
            self.rewrite = Some((answer, 0));
        }
        if self.rewrite.is_some() {
            let total = bufs.iter().map(|b| b.len()).sum();
            return self.drain_rewrite(cx).map_ok(|()| total);
        }
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        std::task::ready!(self.drain_rewrite(cx))?;
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        std::task::ready!(self.drain_rewrite(cx))?;
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::Conn;

    #[test]
    fn only_hypers_empty_automatic_answers_are_rewritten() {
        let hyper_431 = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Tue, 01 Dec 2026 10:00:00 GMT\r\n\r\n";
        let answer = Conn::envelope_for(hyper_431).unwrap_or_default();
        let text = String::from_utf8(answer).unwrap_or_default();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or_default();
        assert!(head.starts_with("HTTP/1.1 431 ") && head.contains("content-type: application/json"), "{head}");
        let json: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        assert_eq!(json["error"]["code"], "headers_too_large");
        assert!(head.contains(&format!("content-length: {}", body.len())));
        // Our own 400s carry a body: left alone.
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 80\r\n\r\n";
        assert!(Conn::envelope_for(ours).is_none());
        assert!(Conn::envelope_for(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
    }
}
