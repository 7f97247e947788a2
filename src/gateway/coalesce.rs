//! Events that are ready together leave together: a stream body adapter that joins the
//! events its inner stream yields without waiting into one body frame, so a burst of
//! chunks (an upstream that sends many at once, as fast providers and an instant mock do)
//! becomes one write to the client instead of one write per event.
//!
//! Nothing waits for the network: an event is joined only to events that are already in the
//! gateway. The upstream body hands over one chunk at a time (hyper's body channel holds a
//! single chunk, refilled by the connection task), so before it writes what it has, the
//! adapter lets the other tasks run a few turns ([`TURNS`]) and takes whatever they
//! produced. For a stream whose chunks come apart in time (tokens arriving every few
//! milliseconds) those turns find nothing, and each event is written as soon as it was,
//! a few scheduler turns (microseconds) later.

use std::pin::Pin;

use axum::body::Bytes;
use bytes::BytesMut;
use futures_core::Stream;
use futures_util::{FutureExt as _, StreamExt as _};

/// The most bytes joined into one frame.
const MAX_FRAME: usize = 64 * 1024;

/// How many turns the other tasks get, with no new event, before what was taken is
/// written. The upstream body needs two (measured: hyper's connection task decodes the
/// next chunk on its second turn after one is taken, whether the gateway is idle or
/// busy); one more is margin. A stream whose next chunk is not on its way pays these
/// turns once per event, a few microseconds.
const TURNS: u32 = 3;

/// See the module documentation. An error ends the stream; what was taken before it goes
/// first.
pub(crate) fn coalesce<S, E>(inner: S) -> impl Stream<Item = Result<Bytes, E>>
where
    S: Stream<Item = Result<Bytes, E>>,
{
    let state = State { inner: Box::pin(inner), held: None, ended: false };
    futures_util::stream::unfold(state, |mut state| async move {
        if let Some(err) = state.held.take() {
            return Some((Err(err), state));
        }
        if state.ended {
            return None;
        }
        let mut batch = match state.inner.next().await? {
            Ok(event) => Batch::One(event),
            Err(err) => {
                state.ended = true;
                return Some((Err(err), state));
            }
        };
        let mut turns = 0;
        while batch.len() < MAX_FRAME {
            // Only what is ready now: a pending poll here leaves no waker behind that
            // matters, since the next event is awaited (with this task's waker) above.
            match state.inner.next().now_or_never() {
                Some(Some(Ok(event))) => {
                    batch.push(event);
                    turns = 0;
                }
                Some(Some(Err(err))) => {
                    state.held = Some(err);
                    state.ended = true;
                    break;
                }
                Some(None) => {
                    state.ended = true;
                    break;
                }
                None if turns == TURNS => break,
                None => {
                    // The task feeding the inner stream (the upstream connection) gets its
                    // turn: a yielding task runs again only after the worker's other work.
                    tokio::task::yield_now().await;
                    turns += 1;
                }
            }
        }
        Some((Ok(batch.take()), state))
    })
}

struct State<S, E> {
    inner: Pin<Box<S>>,
    /// An error that came after events already taken: passed on after them.
    held: Option<E>,
    ended: bool,
}

enum Batch {
    /// One event, passed on as it came (no copy).
    One(Bytes),
    Joined(BytesMut),
}

impl Batch {
    fn len(&self) -> usize {
        match self {
            Batch::One(bytes) => bytes.len(),
            Batch::Joined(bytes) => bytes.len(),
        }
    }

    fn push(&mut self, event: Bytes) {
        match self {
            Batch::One(first) => {
                let mut joined = BytesMut::with_capacity((first.len() + event.len()) * 4);
                joined.extend_from_slice(first);
                joined.extend_from_slice(&event);
                *self = Batch::Joined(joined);
            }
            Batch::Joined(joined) => joined.extend_from_slice(&event),
        }
    }

    fn take(self) -> Bytes {
        match self {
            Batch::One(bytes) => bytes,
            Batch::Joined(bytes) => bytes.freeze(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::time::Duration;

    use super::*;

    /// A stream fed by another task through a one-slot channel, as hyper hands over an
    /// upstream body: each event needs a turn of the producer.
    fn fed(events: Vec<(&'static str, Duration)>) -> impl Stream<Item = Result<Bytes, Infallible>> {
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1);
        tokio::spawn(async move {
            for (event, pause) in events {
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
                if tx.send(Bytes::from_static(event.as_bytes())).await.is_err() {
                    return;
                }
            }
        });
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (Ok(b), rx)) })
    }

    async fn frames(stream: impl Stream<Item = Result<Bytes, Infallible>>) -> Vec<String> {
        coalesce(stream).map(|f| String::from_utf8(f.unwrap().to_vec()).unwrap()).collect().await
    }

    #[tokio::test]
    async fn a_burst_fed_one_at_a_time_leaves_as_one_frame() {
        let burst = (0..20).map(|_| ("e;", Duration::ZERO)).collect();
        assert_eq!(frames(fed(burst)).await, vec!["e;".repeat(20)]);
    }

    #[tokio::test]
    async fn events_apart_in_time_are_not_held_back() {
        let events = vec![("a;", Duration::ZERO), ("b;", Duration::from_millis(30)), ("c;", Duration::from_millis(30))];
        assert_eq!(frames(fed(events)).await, vec!["a;", "b;", "c;"]);
    }

    #[tokio::test]
    async fn bursts_are_joined_apart_and_in_order() {
        let events = vec![
            ("a;", Duration::ZERO),
            ("b;", Duration::ZERO),
            ("c;", Duration::from_millis(30)),
            ("d;", Duration::ZERO),
            ("e;", Duration::ZERO),
        ];
        assert_eq!(frames(fed(events)).await, vec!["a;b;", "c;d;e;"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nothing_is_lost_or_reordered_on_a_threaded_runtime() {
        let events: Vec<(&'static str, Duration)> =
            (0..500).map(|i| (["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"][i % 10], Duration::ZERO)).collect();
        let expected: String = (0..500).map(|i| char::from(b'0' + (i % 10) as u8)).collect();
        assert_eq!(frames(fed(events)).await.concat(), expected);
    }

    #[tokio::test]
    async fn a_frame_stops_growing_at_the_limit() {
        let big: &'static str = Box::leak("x".repeat(40 * 1024).into_boxed_str());
        let got = frames(fed(vec![(big, Duration::ZERO); 3])).await;
        assert_eq!(got.iter().map(String::len).collect::<Vec<_>>(), vec![80 * 1024, 40 * 1024]);
    }

    #[tokio::test]
    async fn an_error_comes_after_what_was_taken_before_it() {
        let inner = futures_util::stream::iter(vec![Ok(Bytes::from_static(b"a;")), Err("broken")]);
        let got: Vec<Result<Bytes, &str>> = coalesce(inner).collect().await;
        assert_eq!(got, vec![Ok(Bytes::from_static(b"a;")), Err("broken")]);
    }
}
