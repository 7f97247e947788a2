//! Settlement: how every routed call in the gateway ends. The router tells each call's owner,
//! its [`Admission`], of the call's one event (whichever way the call ended, its drop guard
//! included); the admission hands it to the [`Settler`], which records the metrics, writes the
//! spend row, and records what the call cost for the admission's holds (its budget and tpm),
//! settled when the admission is dropped ([`Admission::finish`]). Everything is typed: the
//! router carries the admission as a [`CallOwner`](crate::hooks::CallOwner), and the handler
//! keeps its own typed reference for the stream's metering and the durable wait.

use std::sync::Arc;

use super::admission::Admission;
use super::metrics::Metrics;
use super::spend::{SpendSender, spend_row};
use crate::hooks::{CallEvent, EventKind, Hooks};

/// Where a call's end goes: the metrics and the spend log.
#[derive(Debug)]
pub(super) struct Settler {
    sender: SpendSender,
    metrics: Arc<Metrics>,
    /// Whether a successful call's answer waits for its spend row ([`Admission::written`]).
    durable: bool,
}

impl Settler {
    pub(super) fn new(sender: SpendSender, metrics: Arc<Metrics>, durable: bool) -> Arc<Self> {
        Arc::new(Self { sender, metrics, durable })
    }

    /// Ends a call: its metrics, its spend row, and the outcome its admission settles with.
    /// In durable mode the row's [`Written`](super::spend::Written) goes to the admission,
    /// for the answer to wait on.
    pub(super) fn settle(&self, event: &CallEvent, admission: Option<&Admission>) {
        self.metrics.observe(event);
        let key = admission.and_then(|a| a.key.as_deref());
        let mut row = spend_row(event, key);
        if let Some(admission) = admission {
            let used = event.usage.as_ref().and_then(|u| u64::try_from(u.total_tokens).ok()).unwrap_or(0);
            admission.finish(row.cost_pico, used);
            if let Some(reason) = admission.cut_reason() {
                row.status = "failure".into();
                row.error_kind = Some(reason.into());
            }
            if self.durable && matches!(event.kind, EventKind::Success | EventKind::StreamEnd) {
                admission.written(self.sender.send_durable(row));
                return;
            }
        }
        self.sender.send(row);
    }
}

/// The router's hook for calls that reach it with no admission as their owner: the gateway
/// always passes one, so this is a safety net that still counts and logs such a call.
pub(super) fn hooks(settler: Arc<Settler>) -> Hooks {
    Hooks::new().on_event(move |event: &CallEvent| {
        if event.context.is_none() {
            settler.settle(event, None);
        }
        Ok(())
    })
}
