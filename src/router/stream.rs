//! [`RoutedStream`]: a routed chat stream that, when it ends, prices the call, settles the
//! deployment's token count, stores the answer in the cache and tells the hooks.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;

use super::call::Call;
use super::deployment::InFlight;
use super::{CallReport, Inner, Routed};
use crate::cache::ResponseCache;
use crate::error::{Error, Result};
use crate::hooks::EventKind;
use crate::provider::chat_stream::{ChatStream, ChunkAccumulator};
use crate::spec::openai::CompletionUsage;
use crate::{ChatChunk, ChatResponse};

enum Source {
    Live(ChatStream),
    Replay(VecDeque<ChatChunk>),
}

/// Where a finished stream's answer goes in the cache.
type Store = (ResponseCache, String, Option<Duration>);

/// The chunks of a routed stream, and its [`CallReport`].
///
/// Every chunk is passed on as it comes. When the stream ends, [`RoutedStream::report`]
/// carries the receipt and the hooks get a [`EventKind::StreamEnd`] event (or
/// [`EventKind::Failure`] for an error mid-stream, or a stream dropped before its end).
pub struct RoutedStream {
    inner: Arc<Inner>,
    call: Call,
    report: CallReport,
    source: Source,
    first: Option<ChatChunk>,
    in_flight: Option<InFlight>,
    precharged: u64,
    usage: Option<CompletionUsage>,
    store: Option<(Store, ChunkAccumulator)>,
    finished: bool,
}

impl fmt::Debug for RoutedStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoutedStream")
            .field("report", &self.report)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl RoutedStream {
    #[expect(clippy::too_many_arguments, reason = "one internal constructor that takes over a placed call")]
    pub(crate) fn live(
        inner: Arc<Inner>,
        call: Call,
        report: CallReport,
        stream: ChatStream,
        first: Option<ChatChunk>,
        in_flight: InFlight,
        precharged: u64,
        store: Option<Store>,
    ) -> Self {
        Self {
            inner,
            call,
            report,
            source: Source::Live(stream),
            first,
            in_flight: Some(in_flight),
            precharged,
            usage: None,
            store: store.map(|s| (s, ChunkAccumulator::new())),
            finished: false,
        }
    }

    pub(crate) fn replay(
        inner: Arc<Inner>,
        call: Call,
        report: CallReport,
        chunks: Vec<ChatChunk>,
        usage: Option<CompletionUsage>,
    ) -> Self {
        Self {
            inner,
            call,
            report,
            source: Source::Replay(chunks.into()),
            first: None,
            in_flight: None,
            precharged: 0,
            usage,
            store: None,
            finished: false,
        }
    }

    /// How the call was served; the receipt is there once the stream has ended.
    pub fn report(&self) -> &CallReport {
        &self.report
    }

    /// The next chunk; `None` at the end.
    pub async fn next_chunk(&mut self) -> Option<Result<ChatChunk>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    /// Ends the call here as a failure the caller chose (a guardrail's block, say), with
    /// `reason` as the event's error; what was streamed is charged as it would be at the end.
    pub fn stop(mut self, reason: &str) {
        self.finish(Ending::Stopped(reason));
    }

    /// Reads the whole stream into one answer, with the final report.
    pub async fn collect_response(mut self) -> Result<Routed<ChatResponse>> {
        let mut acc = ChunkAccumulator::new();
        while let Some(chunk) = self.next_chunk().await {
            acc.push(&chunk?);
        }
        Ok(Routed { response: acc.finish(), report: self.report.clone() })
    }

    fn observe(&mut self, chunk: &ChatChunk) {
        if let Some(usage) = chunk.usage.as_ref() {
            self.usage = Some(usage.clone());
        }
        self.call.output_bytes = self.call.output_bytes.saturating_add(output_bytes(chunk));
        if let Some((_, acc)) = &mut self.store {
            acc.push(chunk);
        }
    }

    /// Ends the call once: receipt, token settlement, cache, hooks.
    fn finish(&mut self, ending: Ending<'_>) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let live = self.in_flight.take().map(|f| f.0.clone());
        self.report.latency = self.call.started.elapsed();
        if let Some(live) = live {
            self.report.receipt = self.inner.receipt(&live, self.usage.as_ref());
            let (inner, usage, precharged) = (self.inner.clone(), self.usage.clone(), self.precharged);
            let store = if matches!(ending, Ending::Clean) { self.store.take() } else { None };
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    inner.settle(&live, precharged, usage.as_ref()).await;
                    if let Some(((cache, key, ttl), acc)) = store
                        && let Err(err) = cache.put(&key, &acc.finish(), ttl).await
                    {
                        tracing::warn!(error = %err, "cannot store a streamed answer in the cache");
                    }
                });
            }
        }
        match ending {
            Ending::Clean => self.call.end(EventKind::StreamEnd, &self.report, self.usage.clone(), None),
            Ending::Failed(err) => self.call.end(EventKind::Failure, &self.report, self.usage.clone(), Some(err)),
            Ending::Stopped(reason) => {
                self.call.end_stopped(&self.report, self.usage.clone(), reason);
            }
            Ending::Dropped => {
                // What the caller saw is charged: the reported usage, else an estimate.
                self.call.usage.clone_from(&self.usage);
                let report = self.report.clone();
                self.call.cancel(report);
            }
        }
    }
}

/// Bytes of answer in a chunk: text, reasoning, refusals and tool-call arguments.
pub(crate) fn output_bytes(chunk: &ChatChunk) -> u64 {
    let mut bytes = 0usize;
    for choice in &chunk.choices {
        let delta = &choice.delta;
        bytes += delta.content.as_deref().map_or(0, str::len);
        bytes += delta.refusal.as_deref().map_or(0, str::len);
        bytes += delta.reasoning_content.as_deref().map_or(0, str::len);
        for call in delta.tool_calls.iter().flatten() {
            bytes += call.function.as_ref().and_then(|f| f.arguments.as_deref()).map_or(0, str::len);
        }
    }
    bytes as u64
}

/// How a stream ended.
enum Ending<'e> {
    Clean,
    Failed(&'e Error),
    Stopped(&'e str),
    Dropped,
}

impl Stream for RoutedStream {
    type Item = Result<ChatChunk>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(chunk) = this.first.take() {
            this.observe(&chunk);
            return Poll::Ready(Some(Ok(chunk)));
        }
        if this.finished {
            return Poll::Ready(None);
        }
        let next = match &mut this.source {
            Source::Replay(chunks) => Poll::Ready(chunks.pop_front().map(Ok)),
            Source::Live(stream) => Pin::new(stream).poll_next(cx),
        };
        match next {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                this.observe(&chunk);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(err))) => {
                let err = match &this.in_flight {
                    Some(live) => err.redact(&live.0.secrets),
                    None => err,
                };
                this.finish(Ending::Failed(&err));
                Poll::Ready(Some(Err(err)))
            }
            Poll::Ready(None) => {
                this.finish(Ending::Clean);
                Poll::Ready(None)
            }
        }
    }
}

impl Drop for RoutedStream {
    fn drop(&mut self) {
        self.finish(Ending::Dropped);
    }
}
