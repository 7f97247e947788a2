//! The bookkeeping of one routed call, and the one hook event that ends it, whichever way it
//! ends.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use super::deployment::Live;
use super::{Attempt, CallContext, CallReport, Inner};
use crate::error::Error;
use crate::hooks::{CallEvent, EventKind};
use crate::pricing::Receipt;
use crate::spec::openai::CompletionUsage;

/// The bookkeeping of one call. Its hook event is sent once, by [`Call::end`], or by its
/// drop guard when the call is dropped before it ended (the caller went away): no path
/// ends a call without its event, so the gateway's spend row and budget settlement never
/// depend on the call running to its end.
pub(crate) struct Call {
    inner: Arc<Inner>,
    pub id: String,
    pub group: String,
    pub stream: bool,
    pub started: Instant,
    pub started_at: SystemTime,
    pub attempts: Vec<Attempt>,
    pub fallbacks: Vec<String>,
    pub context: Option<CallContext>,
    /// The deployment of the attempt in flight, or of the answer once there is one.
    pub current: Option<Arc<Live>>,
    /// The answer's usage, once known.
    pub usage: Option<CompletionUsage>,
    /// The prompt's tokens: exact once counted, else its bytes / 4.
    pub prompt_tokens: u64,
    /// Bytes of answer passed on (for streams), to estimate what a cut stream produced.
    pub output_bytes: u64,
    ended: bool,
}

impl Call {
    pub(super) fn new(inner: &Arc<Inner>, group: &str, stream: bool, context: Option<CallContext>) -> Self {
        let started_at = SystemTime::now();
        Self {
            inner: inner.clone(),
            id: call_id(started_at),
            group: group.to_string(),
            stream,
            started: Instant::now(),
            started_at,
            attempts: Vec::new(),
            fallbacks: Vec::new(),
            context,
            current: None,
            usage: None,
            prompt_tokens: 0,
            output_bytes: 0,
            ended: false,
        }
    }

    /// Ends the call: its one hook event.
    pub fn end(&mut self, kind: EventKind, report: &CallReport, usage: Option<CompletionUsage>, error: Option<&Error>) {
        self.ended = true;
        let event = self.event(kind, report, usage, error);
        self.inner.hooks.emit(event);
    }

    /// Ends the call as a failure its caller chose, with `reason` as the event's error.
    pub fn end_stopped(&mut self, report: &CallReport, usage: Option<CompletionUsage>, reason: &str) {
        self.ended = true;
        let mut event = self.event(EventKind::Failure, report, usage, None);
        event.error = Some(reason.to_string());
        self.inner.hooks.emit(event);
    }

    /// Ends a call that was dropped before it ended, reporting what is known: the
    /// deployment in flight, and its usage (reported, or estimated from the prompt and what
    /// was streamed), priced.
    pub fn cancel(&mut self, mut report: CallReport) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        let (usage, estimated) = match (&self.usage, &self.current) {
            (Some(usage), _) => (Some(usage.clone()), false),
            (None, Some(_)) => (Some(estimated_usage(self.prompt_tokens, self.output_bytes.div_ceil(4))), true),
            (None, None) => (None, false),
        };
        if let Some(live) = &self.current {
            report.receipt = self.inner.receipt(live, usage.as_ref());
        }
        let mut event = self.event(EventKind::Cancelled, &report, usage, None);
        event.usage_estimated = estimated;
        event.error = Some(if self.stream && report.time_to_first_token.is_some() {
            "the caller dropped the stream before its end".into()
        } else {
            "the caller went away before the answer".into()
        });
        self.inner.hooks.emit(event);
    }

    pub fn report(&self, live: Option<&Live>, receipt: Option<Receipt>, cache_hit: bool) -> CallReport {
        CallReport {
            call_id: self.id.clone(),
            group: self.group.clone(),
            deployment: live.map(|l| l.id.clone()),
            provider: live.map(|l| l.kind),
            model: live.map(|l| l.model.clone()),
            api_base: live.and_then(|l| l.api_base.clone()),
            attempts: self.attempts.clone(),
            fallbacks: self.fallbacks.clone(),
            receipt,
            cache_hit,
            latency: self.started.elapsed(),
            time_to_first_token: None,
        }
    }

    pub fn event(
        &self,
        kind: EventKind,
        report: &CallReport,
        usage: Option<CompletionUsage>,
        error: Option<&Error>,
    ) -> CallEvent {
        let last = self.attempts.last();
        CallEvent {
            kind,
            call_id: self.id.clone(),
            group: self.group.clone(),
            deployment: report.deployment.clone().or_else(|| last.map(|a| a.deployment.clone())),
            provider: report.provider.or_else(|| last.map(|a| a.provider)),
            model: report.model.clone(),
            stream: self.stream,
            started_at: self.started_at,
            latency: self.started.elapsed(),
            time_to_first_token: report.time_to_first_token,
            usage,
            usage_estimated: false,
            receipt: report.receipt.clone(),
            cache_hit: report.cache_hit,
            attempts: self.attempts.len(),
            fallbacks: self.fallbacks.clone(),
            error_kind: error.map(Error::kind),
            error: error.map(ToString::to_string),
            context: self.context.clone(),
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if !self.ended {
            let report = self.report(self.current.as_deref(), None, false);
            self.cancel(report);
        }
    }
}

/// Usage of `prompt` and `completion` tokens.
fn estimated_usage(prompt: u64, completion: u64) -> CompletionUsage {
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    CompletionUsage {
        completion_tokens: count(completion),
        completion_tokens_details: None,
        prompt_tokens: count(prompt),
        prompt_tokens_details: None,
        total_tokens: count(prompt.saturating_add(completion)),
        extra: serde_json::Map::new(),
    }
}

/// A call id: `call-` then the start time in milliseconds (12 hex digits) and 64 random bits.
/// Time first, so ids sort by time and the spend log's primary-key index grows at its end
/// rather than at random places (a random id costs a B-tree page split here and there on
/// every insert, in SQLite and PostgreSQL alike).
pub(crate) fn call_id(at: SystemTime) -> String {
    let ms = at.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let mut id = String::with_capacity(33);
    id.push_str("call-");
    crate::provider::ids::push_hex(&mut id, u64::try_from(ms).unwrap_or(u64::MAX), 12);
    crate::provider::ids::push_hex(&mut id, fastrand::u64(..), 16);
    id
}
