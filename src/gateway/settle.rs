//! Settlement: the hook that ends every routed call in the gateway. The router sends each
//! call's one event (whichever way the call ended, its drop guard included); this records
//! the metrics, writes the spend row, and settles the call's admission (its budget and tpm
//! holds) with what the call cost.

use std::sync::Arc;

use super::admission::Admission;
use super::metrics::Metrics;
use super::spend::{SpendSender, spend_row};
use crate::hooks::{CallEvent, EventKind, Hooks};

/// The hook that ends every routed call in the gateway: its metrics, its spend row, and the
/// outcome its admission settles with when it is dropped ([`Admission::finish`]). In durable
/// mode the row's [`Written`] goes to the admission, for the answer to wait on.
pub(super) fn hooks(sender: SpendSender, metrics: Arc<Metrics>, durable: bool) -> Hooks {
    Hooks::new().on_event(move |event: &CallEvent| {
        metrics.observe(event);
        let admission = event.context.as_ref().and_then(|c| c.downcast_ref::<Admission>());
        let key = admission.and_then(|a| a.key.as_deref());
        let mut row = spend_row(event, key);
        if let Some(admission) = admission {
            let used = event.usage.as_ref().and_then(|u| u64::try_from(u.total_tokens).ok()).unwrap_or(0);
            admission.finish(row.cost_pico, used);
            if let Some(reason) = admission.cut_reason() {
                row.status = "failure".into();
                row.error_kind = Some(reason.into());
            }
            if durable && matches!(event.kind, EventKind::Success | EventKind::StreamEnd) {
                admission.written(sender.send_durable(row));
                return Ok(());
            }
        }
        sender.send(row);
        Ok(())
    })
}
