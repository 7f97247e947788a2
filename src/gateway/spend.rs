//! The spend log writer: one background task that writes rows in batches (what queued while
//! the previous batch was written, up to 1024 rows, at most one batch per 20 ms), and drains
//! what is queued before the gateway exits.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::store::{SpendRow, Store};

const BATCH: usize = 1024;

/// The least time between two batches.
const GATHER: Duration = Duration::from_millis(20);

/// Queues spend rows for the writer. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SpendSender(mpsc::UnboundedSender<SpendRow>);

impl SpendSender {
    /// Queues a row; never blocks the call it describes.
    pub fn send(&self, row: SpendRow) {
        if let Err(err) = self.0.send(row) {
            tracing::error!(call_id = %err.0.call_id, "the spend writer has stopped; a spend row is lost");
        }
    }
}

/// The writer task.
#[derive(Debug)]
pub struct SpendWriter {
    task: JoinHandle<u64>,
}

impl SpendWriter {
    /// Starts the writer on `store`.
    pub fn start(store: Store) -> (SpendSender, Self) {
        let (tx, mut rx) = mpsc::unbounded_channel::<SpendRow>();
        let task = tokio::spawn(async move {
            let mut written = 0u64;
            let mut batch = Vec::with_capacity(BATCH);
            // Whatever queued while the last batch was written is the next batch: under
            // load rows group themselves, and an idle gateway writes each row at once.
            while rx.recv_many(&mut batch, BATCH).await > 0 {
                let started = tokio::time::Instant::now();
                written += write(&store, &mut batch).await;
                // Under load, let rows gather for a moment rather than commit a transaction
                // per handful of rows; an idle gateway still writes its first row at once.
                tokio::time::sleep_until(started + GATHER).await;
            }
            written
        });
        (SpendSender(tx), Self { task })
    }

    /// Waits until every queued row is written (call after the last sender is dropped).
    pub async fn drain(self) -> u64 {
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
