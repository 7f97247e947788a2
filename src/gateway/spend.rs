//! The spend log writer: one background task that writes rows in batches (a row and those
//! that follow it within the flush interval, 250 ms by default, up to 1024 rows), and drains
//! what is queued before the gateway exits.
//!
//! The log is for reading, not for enforcement (budgets are settled in the limit counters
//! as each call ends), so a row may wait a moment for company: one transaction per batch
//! costs the same as one per row, and at low rates a transaction per row was most of the
//! gateway's CPU per request (the database's worker thread woken several times for each).
//! LiteLLM batches its spend updates for 60 s by default.
//!
//! What this costs: a SIGTERM loses nothing (the queue is drained), but a SIGKILL or a
//! crash loses the rows still queued, at most those of the last flush interval
//! (`general_settings.spend_flush_ms`, 0 for no gathering at all) and the calls in flight.
//! In durable mode (`general_settings.durable_spend: true`) an answer is not complete, the
//! whole body or a stream's `[DONE]`, until its row is written: a SIGKILL then loses only
//! calls whose answers had not completed.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::store::{KeyRecord, SpendRow, Store, now_ms};
use crate::hooks::{CallEvent, EventKind};

const BATCH: usize = 1024;

/// How long rows gather after the first of a batch, by default.
pub const DEFAULT_FLUSH: Duration = Duration::from_millis(250);

/// How long an answer waits for its row in durable mode before it is sent anyway (the
/// database is away: the row is retried and, failing that, logged as lost).
const DURABLE_WAIT: Duration = Duration::from_secs(5);

/// What the writer is given.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "rows are nearly every message; boxing them would allocate once more per call"
)]
enum Message {
    /// A call's row, and who waits for it to be written.
    Row(SpendRow, Option<tokio::sync::oneshot::Sender<()>>),
    /// What a call's guardrails decided, known after its row (post-call and stream checks).
    Guardrails { call_id: String, guardrails: String },
}

/// Queues spend rows for the writer. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SpendSender(mpsc::UnboundedSender<Message>);

impl SpendSender {
    /// Queues a row; never blocks the call it describes.
    pub fn send(&self, row: SpendRow) {
        if let Err(err) = self.0.send(Message::Row(row, None))
            && let Message::Row(row, _) = err.0
        {
            tracing::error!(call_id = %row.call_id, "the spend writer has stopped; a spend row is lost");
        }
    }

    /// Queues a row and returns what resolves once it is written (or given up on).
    pub fn send_durable(&self, row: SpendRow) -> Written {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if let Err(err) = self.0.send(Message::Row(row, Some(tx)))
            && let Message::Row(row, _) = err.0
        {
            tracing::error!(call_id = %row.call_id, "the spend writer has stopped; a spend row is lost");
        }
        Written(rx)
    }

    /// Queues what a call's guardrails decided, for its row (queued before).
    pub fn guardrails(&self, call_id: String, guardrails: String) {
        if self.0.send(Message::Guardrails { call_id: call_id.clone(), guardrails }).is_err() {
            tracing::error!(%call_id, "the spend writer has stopped; guardrail decisions are lost");
        }
    }
}

/// Resolves once a row sent with [`SpendSender::send_durable`] is written.
#[derive(Debug)]
pub struct Written(tokio::sync::oneshot::Receiver<()>);

impl Written {
    /// Waits for the row (at most a few seconds: see the module's notes).
    pub async fn wait(self) {
        if tokio::time::timeout(DURABLE_WAIT, self.0).await.is_err() {
            tracing::warn!("a spend row was not written in time; the answer is sent without waiting longer");
        }
    }
}

/// The writer task.
#[derive(Debug)]
pub struct SpendWriter {
    task: JoinHandle<u64>,
    /// Cuts a gathering short (at shutdown).
    flush_now: std::sync::Arc<tokio::sync::Notify>,
}

impl SpendWriter {
    /// Starts the writer on `store`; rows gather for `flush` after the first of a batch.
    pub fn start(store: Store, flush: Duration) -> (SpendSender, Self) {
        let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
        let flush_now = std::sync::Arc::new(tokio::sync::Notify::new());
        let cut_short = flush_now.clone();
        let task = tokio::spawn(async move {
            let mut written = 0u64;
            let mut messages = Vec::with_capacity(BATCH);
            let mut batch = Vec::with_capacity(BATCH);
            let mut acks = Vec::new();
            let mut updates = Vec::new();
            while rx.recv_many(&mut messages, BATCH).await > 0 {
                // What comes within `flush` of the first row is written with it. The writer
                // sleeps through the gathering rather than waking for each row: the
                // gateway's workers are threads of their own, and a wake per row was a
                // wake of this thread per request. Then it takes what has queued, BATCH
                // rows at a time. (At shutdown the senders are gone and the drain cuts the
                // gathering short.) A row someone waits for is not kept waiting.
                let waited_for = messages.iter().any(|m| matches!(m, Message::Row(_, Some(_))));
                if messages.len() < BATCH && !flush.is_zero() && !waited_for {
                    tokio::select! {
                        () = tokio::time::sleep(flush) => {}
                        () = cut_short.notified() => {}
                    }
                }
                loop {
                    while messages.len() < BATCH {
                        match rx.try_recv() {
                            Ok(message) => messages.push(message),
                            Err(_) => break,
                        }
                    }
                    let full = messages.len() == BATCH;
                    for message in messages.drain(..) {
                        match message {
                            Message::Row(row, ack) => {
                                batch.push(row);
                                acks.extend(ack);
                            }
                            Message::Guardrails { call_id, guardrails } => updates.push((call_id, guardrails)),
                        }
                    }
                    written += write(&store, &mut batch).await;
                    for ack in acks.drain(..) {
                        let _ = ack.send(());
                    }
                    // Rows first: an update's row came before it, in this batch or an earlier one.
                    if !updates.is_empty() {
                        if let Err(err) = store.set_spend_guardrails(&updates).await {
                            tracing::warn!(calls = updates.len(), error = %err, "cannot record guardrail decisions in the spend log");
                        }
                        updates.clear();
                    }
                    if !full {
                        break;
                    }
                }
            }
            written
        });
        (SpendSender(tx), Self { task, flush_now })
    }

    /// Writes what is queued at once and waits until it is written (call after the last
    /// sender is dropped).
    pub async fn drain(self) -> u64 {
        self.flush_now.notify_one();
        self.task.await.unwrap_or(0)
    }
}

/// Writes a batch, retrying a failed write a few times before logging the rows as lost.
async fn write(store: &Store, batch: &mut Vec<SpendRow>) -> u64 {
    let n = batch.len() as u64;
    for attempt in 0..5u32 {
        match store.write_spend(batch).await {
            Ok(()) => {
                batch.clear();
                return n;
            }
            Err(err) => {
                tracing::warn!(rows = n, attempt, error = %err, "cannot write spend rows; retrying");
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt + 1))).await;
            }
        }
    }
    tracing::error!(rows = n, calls = ?batch.iter().map(|r| r.call_id.as_str()).collect::<Vec<_>>(), "spend rows lost after retries");
    batch.clear();
    0
}

/// The spend row of a call, from its hook event.
pub(super) fn spend_row(event: &CallEvent, key: Option<&KeyRecord>) -> SpendRow {
    let usage = event.usage.as_ref();
    let count = |n: Option<i64>| n.unwrap_or(0);
    let micros = |d: Duration| i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
    SpendRow {
        call_id: event.call_id.clone(),
        key_id: key.map(|k| k.id.clone()),
        team_id: key.and_then(|k| k.team_id.clone()),
        model: event.group.clone(),
        deployment: event.deployment.clone(),
        provider: event.provider.map(|p| p.to_string()),
        prompt_tokens: count(usage.map(|u| u.prompt_tokens)),
        completion_tokens: count(usage.map(|u| u.completion_tokens)),
        cached_tokens: count(usage.and_then(|u| u.prompt_tokens_details.as_ref()).and_then(|d| d.cached_tokens)),
        cache_write_tokens: count(
            usage.and_then(|u| u.prompt_tokens_details.as_ref()).and_then(|d| d.cache_write_tokens),
        ),
        reasoning_tokens: count(
            usage.and_then(|u| u.completion_tokens_details.as_ref()).and_then(|d| d.reasoning_tokens),
        ),
        cost_pico: event.receipt.as_ref().map_or(0, |r| i64::try_from(r.total.0).unwrap_or(i64::MAX)),
        status: match event.kind {
            EventKind::Success | EventKind::StreamEnd => "success",
            EventKind::Failure => "failure",
            EventKind::Cancelled => "cancelled",
        }
        .to_string(),
        error_kind: event.error_kind.map(|k| k.name().to_string()),
        latency_us: micros(event.latency),
        ttft_us: event.time_to_first_token.map(micros),
        cache_hit: event.cache_hit,
        created_at: now_ms(),
        guardrails: None,
    }
}
