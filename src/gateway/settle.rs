//! Settlement: how every routed call in the gateway ends. The router tells each call's owner,
//! its admission (`gateway::admission::Admission`), of the call's one event (whichever way the
//! call ended, its drop guard included); the admission hands it to the [`Settler`], which
//! records the metrics and writes the spend row, and keeps what the call cost for its holds
//! (its budget and tpm), settled when the admission is dropped. Everything is typed: the
//! router carries the admission as a [`CallOwner`](crate::hooks::CallOwner), and the handler
//! keeps its own typed reference for the stream's metering and the durable wait.

use std::sync::Arc;

use super::metrics::Metrics;
use super::spend::{SpendSender, Written, spend_row};
use super::store::KeyRecord;
use crate::hooks::{CallEvent, EventKind, Hooks};

/// Where a call's end goes: the metrics and the spend log.
#[derive(Debug)]
pub(super) struct Settler {
    sender: SpendSender,
    metrics: Arc<Metrics>,
    /// Whether a successful call's answer waits for its spend row.
    durable: bool,
}

impl Settler {
    pub(super) fn new(sender: SpendSender, metrics: Arc<Metrics>, durable: bool) -> Arc<Self> {
        Arc::new(Self { sender, metrics, durable })
    }

    /// Ends a call: its metrics and its spend row, under `key` (none for the master key),
    /// marked failed when the gateway `cut` it short. Returns the call's cost, and in durable
    /// mode (for a call with an owner to wait) the row's [`Written`].
    pub(super) fn settle(
        &self,
        event: &CallEvent,
        key: Option<&KeyRecord>,
        cut: Option<&'static str>,
        owned: bool,
    ) -> (i64, Option<Written>) {
        self.metrics.observe(event);
        let mut row = spend_row(event, key);
        let cost = row.cost_pico;
        if let Some(reason) = cut {
            row.status = "failure".into();
            row.error_kind = Some(reason.into());
        }
        if owned && self.durable && matches!(event.kind, EventKind::Success | EventKind::StreamEnd) {
            return (cost, Some(self.sender.send_durable(row)));
        }
        self.sender.send(row);
        (cost, None)
    }
}

/// The router's hook for calls that reach it with no admission as their owner: the gateway
/// always passes one, so this is a safety net that still counts and logs such a call.
pub(super) fn hooks(settler: Arc<Settler>) -> Hooks {
    Hooks::new().on_event(move |event: &CallEvent| {
        if event.context.is_none() {
            settler.settle(event, None, None, false);
        }
        Ok(())
    })
}
