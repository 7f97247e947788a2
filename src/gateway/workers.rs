//! Serving on several event loops, one per core: each worker thread runs its own
//! single-threaded runtime, and one acceptor hands every new connection to the worker with
//! the fewest open connections (as actix-web and nginx do, rather than one work-stealing
//! runtime for all).
//!
//! Why: with tokio's work-stealing runtime, a worker that finds work wakes a sleeping
//! sibling to look for more, and at low load that is two futex calls and a context switch
//! or more for every request (strace on the gateway at concurrency 1: four futex calls per
//! request with two workers, none with one). A connection here stays on the loop it was
//! given and each worker opens upstream connections of its own
//! ([`crate::transport::set_lane`]), so a request is handled start to finish on one thread
//! with no hand-offs; what the workers share (the router's state, limits, caches, metrics,
//! the spend queue) is shared through `Arc`s as before. The cost: a connection cannot move to an idle core, so a few
//! very busy connections can load one core more than another; connections are spread by
//! count when they open.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{mpsc, watch};

use super::server::{Accepted, refuse, serve_connections};
use super::{Gateway, app};
use crate::error::{Error, Result};

/// How many event loops `switchyard serve` runs by default: one per core.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// The worker for the next connection: the one with the fewest open, the earliest after
/// `last` on a tie (so equal workers take turns).
fn pick(open: &[usize], last: usize) -> usize {
    let n = open.len();
    (1..=n).map(|step| (last + step) % n).min_by_key(|&i| open[i]).unwrap_or(0)
}

/// One worker: its inbox and its count of open connections.
struct Lane {
    inbox: mpsc::UnboundedSender<Accepted>,
    open: Arc<AtomicUsize>,
}

/// Serves `gateway` on `listener` with `workers` event loops until `shutdown` resolves,
/// then finishes the requests in flight on every worker (until the shutdown deadline),
/// settles what calls reserved and drains the spend log.
///
/// Worker 0 is the caller's runtime (which also runs the acceptor and the gateway's
/// background tasks: the spend writer, the store's pool); the others are threads of their
/// own, each with a single-threaded runtime.
pub async fn serve_on_workers(
    gateway: Gateway,
    listener: tokio::net::TcpListener,
    workers: usize,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let started = std::time::Instant::now();
    let workers = workers.max(1);
    let local = listener.local_addr().map_err(|e| Error::Config(format!("listener: {e}")))?;
    let writer = gateway.writer.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
    let (limits, server) = (gateway.limits.clone(), Arc::new(gateway.server.clone()));
    let gateway = Arc::new(gateway);
    tracing::info!(addr = %local, workers, groups = ?gateway.router.groups(), ready_in = ?started.elapsed(), "gateway listening");
    let (stop, stopped) = watch::channel(false);
    let mut lanes = Vec::with_capacity(workers);
    let mut threads = Vec::with_capacity(workers - 1);
    let mut here = None;
    for index in 0..workers {
        let (inbox, connections) = mpsc::unbounded_channel();
        let open = Arc::new(AtomicUsize::new(0));
        lanes.push(Lane { inbox, open: open.clone() });
        let serving = serve_connections(connections, app(gateway.clone()), server.clone(), open, stopped.clone());
        if index == 0 {
            here = Some(tokio::spawn(serving));
            continue;
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Config(format!("cannot start worker {index}'s runtime: {e}")))?;
        let thread = std::thread::Builder::new()
            .name(format!("switchyard-worker-{index}"))
            .spawn(move || {
                // Upstream connections of this worker's own, driven on its loop.
                crate::transport::set_lane(index);
                runtime.block_on(serving);
            })
            .map_err(|e| Error::Config(format!("cannot start worker {index}: {e}")))?;
        threads.push(thread);
    }
    drop(stopped);
    accept(listener, &lanes, server.max_connections, shutdown).await;
    let _ = stop.send(true);
    drop(lanes);
    let mut failure = None;
    if let Some(here) = here
        && let Err(err) = here.await
    {
        failure = Some(format!("worker 0 stopped: {err}"));
    }
    // The other workers finish on their own threads; wait for them without blocking this one.
    let joined = tokio::task::spawn_blocking(move || {
        threads
            .into_iter()
            .enumerate()
            .find_map(|(i, thread)| thread.join().err().map(|_| format!("worker {} panicked", i + 1)))
    })
    .await
    .unwrap_or_else(|err| Some(format!("cannot wait for the workers: {err}")));
    failure = failure.or(joined);
    // Every connection has ended and the apps (with the hooks holding the spend queue) are
    // dropped: what calls reserved is settled and what is queued is written before we return.
    drop(gateway);
    limits.drain().await;
    if let Some(writer) = writer {
        let rows = writer.drain().await;
        tracing::info!(rows, "spend log drained");
    }
    failure.map_or(Ok(()), |f| Err(Error::Config(f)))
}

/// Accepts connections until `shutdown`, handing each to a worker, or refusing it past
/// `max_connections` open.
async fn accept(
    mut listener: tokio::net::TcpListener,
    lanes: &[Lane],
    max_connections: usize,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let mut shutdown = std::pin::pin!(shutdown);
    let mut last = lanes.len() - 1;
    let mut open = vec![0; lanes.len()];
    loop {
        // axum's own accept: it retries on a connection's error and waits out EMFILE.
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => return,
            accepted = axum::serve::Listener::accept(&mut listener) => accepted,
        };
        super::set_no_delay(&stream);
        for (count, lane) in open.iter_mut().zip(lanes) {
            *count = lane.open.load(Ordering::Relaxed);
        }
        if open.iter().sum::<usize>() >= max_connections {
            tracing::warn!(%peer, max_connections, "at the connection cap: a new connection is refused");
            refuse(stream);
            continue;
        }
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(err) => {
                tracing::warn!(error = %err, %peer, "cannot hand a connection to a worker");
                continue;
            }
        };
        last = pick(&open, last);
        let lane = &lanes[last];
        lane.open.fetch_add(1, Ordering::Relaxed);
        if lane.inbox.send((stream, peer)).is_err() {
            lane.open.fetch_sub(1, Ordering::Relaxed);
            tracing::error!(worker = last, %peer, "a worker has stopped; a connection is dropped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::pick;

    #[test]
    fn the_next_connection_goes_to_the_least_loaded_worker_taking_turns_on_ties() {
        assert_eq!(pick(&[3, 1, 2], 0), 1);
        assert_eq!(pick(&[0, 0], 1), 0);
        assert_eq!(pick(&[0, 0], 0), 1);
        assert_eq!(pick(&[0, 0, 0], 2), 0);
        assert_eq!(pick(&[5], 0), 0);
        assert_eq!(pick(&[2, 2, 1, 1], 2), 3);
    }
}
