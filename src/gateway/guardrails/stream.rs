//! Guardrails on a stream as it passes (`post_call` / `during_call` on streams).
//!
//! Text is held back by up to [`HOLD`] bytes per choice, so that what a pattern matches
//! across two chunks is seen whole before any of it is sent: a blocking guardrail ends the
//! stream with a typed error before the match reaches the client, a masking one replaces it,
//! and the pre-call placeholders the model echoes are turned back into their originals. The
//! rest passes at once; a stream with no such guardrail is passed through untouched. What is
//! held back is sent with the chunk that finishes its choice. Webhooks that check answers are
//! asked once, at the stream's end (what was sent cannot be taken back: a block then ends the
//! stream with an error event). Tool-call argument fragments are not rewritten.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{Action, ApiFailure, Check, Guardrail, Masking, Placeholders, Record, Session, mask, violation};
use crate::router::RoutedStream;
use crate::spec::ext::Nullable;
use crate::{ChatChunk, ChatRequest};

/// Bytes of text held back per choice.
pub const HOLD: usize = 128;

/// The longest placeholder (`[CREDIT_CARD_999]`) and then some.
const PLACEHOLDER_MAX: usize = 24;

/// Per guardrail: what it found and the time it took, during the stream.
#[derive(Default)]
struct Tally {
    findings: usize,
    spent: Duration,
}

/// A routed stream with the session's answer guardrails applied.
pub struct GuardedStream {
    /// Taken (and dropped, which ends the routed call) when the stream ends.
    inner: Option<RoutedStream>,
    report: crate::router::CallReport,
    session: Option<Box<Session>>,
    /// Whether the session works on the answer; if not, chunks pass untouched.
    guarded: bool,
    request: Option<Box<ChatRequest>>,
    /// The session's pattern guardrails that check answers, and its answer webhooks: found
    /// once, not per chunk.
    detectors: Vec<Arc<Guardrail>>,
    webhooks: Vec<Arc<Guardrail>>,
    pending: BTreeMap<i64, String>,
    tail: BTreeMap<i64, String>,
    /// Everything sent, per choice, for the webhooks asked at the end.
    whole: BTreeMap<i64, String>,
    /// What each of `detectors` found, and its time, in the same order.
    tallies: Vec<Tally>,
    template: Option<ChatChunk>,
    done: bool,
    on_done: Option<Box<dyn FnOnce(Vec<Record>) + Send>>,
}

impl std::fmt::Debug for GuardedStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedStream").field("guarded", &self.session.is_some()).finish_non_exhaustive()
    }
}

impl GuardedStream {
    /// `inner` as it is, or guarded by `session` when it has work on answers. `on_done` gets
    /// every decision of the call (pre-call ones included) once the stream has ended.
    pub fn new(
        inner: RoutedStream,
        session: Option<Session>,
        request: ChatRequest,
        on_done: Option<Box<dyn FnOnce(Vec<Record>) + Send>>,
    ) -> Self {
        let guarded = session.as_ref().is_some_and(Session::works_on_answers);
        let answer_checks = |wanted: fn(&Check) -> bool| -> Vec<Arc<Guardrail>> {
            let active = session.iter().filter(|_| guarded).flat_map(|s| s.active.iter());
            active.filter(|g| g.post && wanted(&g.check)).cloned().collect()
        };
        let detectors = answer_checks(|c| matches!(c, Check::Patterns(_)));
        let webhooks = answer_checks(|c| matches!(c, Check::Webhook(_)));
        let tallies = std::iter::repeat_with(Tally::default).take(detectors.len()).collect();
        let session = session.map(Box::new);
        let request = guarded.then(|| Box::new(request));
        Self {
            report: inner.report().clone(),
            inner: Some(inner),
            session,
            guarded,
            request,
            detectors,
            webhooks,
            pending: BTreeMap::new(),
            tail: BTreeMap::new(),
            whole: BTreeMap::new(),
            tallies,
            template: None,
            done: false,
            on_done,
        }
    }

    /// The routed stream's report as it was when the stream started (call id, deployment, ...).
    pub fn report(&self) -> &crate::router::CallReport {
        &self.report
    }

    async fn next_inner(&mut self) -> Option<crate::Result<ChatChunk>> {
        match self.inner.as_mut() {
            Some(inner) => inner.next_chunk().await,
            None => None,
        }
    }

    /// The next chunk to send, or the failure that ends the stream.
    pub async fn next_chunk(&mut self) -> Option<Result<ChatChunk, ApiFailure>> {
        if self.done {
            return None;
        }
        if !self.guarded {
            let next = self.next_inner().await;
            if next.is_none() || matches!(next, Some(Err(_))) {
                self.finish();
            }
            return next.map(|r| r.map_err(|e| ApiFailure::from(&e)));
        }
        loop {
            match self.next_inner().await {
                Some(Ok(mut chunk)) => {
                    if let Err(failure) = self.guard(&mut chunk) {
                        self.stop(&failure.message);
                        return Some(Err(*failure));
                    }
                    if !is_empty(&chunk) {
                        return Some(Ok(chunk));
                    }
                }
                Some(Err(err)) => {
                    self.finish();
                    return Some(Err(ApiFailure::from(&err)));
                }
                None => {
                    let flushed = self.flush();
                    let verdict = self.ask_webhooks().await;
                    if let Err(failure) = &verdict {
                        self.stop(&failure.message);
                    }
                    self.finish();
                    return match (verdict, flushed) {
                        (Err(failure), _) => Some(Err(failure)),
                        (Ok(()), Some(chunk)) => Some(Ok(chunk)),
                        (Ok(()), None) => None,
                    };
                }
            }
        }
    }

    /// Applies the guardrails to one chunk's text, holding back what might still match.
    fn guard(&mut self, chunk: &mut ChatChunk) -> Result<(), Box<ApiFailure>> {
        let Some(session) = self.session.as_mut() else { return Ok(()) };
        let detectors = &self.detectors;
        for choice in &mut chunk.choices {
            let index = choice.index;
            let pending = self.pending.entry(index).or_default();
            if let Nullable::Value(text) = &choice.delta.content {
                pending.push_str(text);
            }
            if pending.is_empty() && choice.finish_reason.is_none() {
                continue;
            }
            let tail = self.tail.entry(index).or_default();
            // Blocking guardrails see what was sent last with what is new.
            let mut window: Option<String> = None;
            for (guardrail, tally) in
                detectors.iter().zip(self.tallies.iter_mut()).filter(|(g, _)| g.action == Action::Block)
            {
                let Check::Patterns(detector) = &guardrail.check else { continue };
                let started = Instant::now();
                let window = window.get_or_insert_with(|| format!("{tail}{pending}"));
                let hits: Vec<_> = if detector.matches(window) {
                    detector.find(window).into_iter().filter(|f| f.end > tail.len()).collect()
                } else {
                    Vec::new()
                };
                tally.spent += started.elapsed();
                if !hits.is_empty() {
                    tally.findings += hits.len();
                    session.record(guardrail, "during_call", "blocked", hits.len(), since(tally.spent));
                    return Err(Box::new(violation(
                        &guardrail.name,
                        &format!("the answer contains {}", super::found(&hits)),
                    )));
                }
            }
            // Send all but the last HOLD bytes, never cutting a match or a placeholder.
            let mut cut = if choice.finish_reason.is_some() {
                pending.len()
            } else {
                floor(pending, pending.len().saturating_sub(HOLD))
            };
            for guardrail in detectors.iter().filter(|g| g.action != Action::Block) {
                let Check::Patterns(detector) = &guardrail.check else { continue };
                if detector.matches(pending) {
                    for f in detector.find(pending) {
                        if f.start < cut && cut < f.end {
                            cut = f.start;
                        }
                    }
                }
            }
            if !session.placeholders.pairs.is_empty()
                && let Some(open) = pending[floor(pending, cut.saturating_sub(PLACEHOLDER_MAX))..cut].rfind('[')
            {
                let start = floor(pending, cut.saturating_sub(PLACEHOLDER_MAX)) + open;
                if !pending[start..cut].contains(']') {
                    cut = start;
                }
            }
            let rest = pending.split_off(cut);
            let segment = std::mem::replace(pending, rest);
            let sent = transform(&segment, detectors, &mut self.tallies, &session.placeholders);
            // What was sent, for the next window.
            tail.push_str(&segment);
            if tail.len() > HOLD {
                let keep = floor(tail, tail.len() - HOLD);
                tail.drain(..keep);
            }
            if !self.webhooks.is_empty() {
                self.whole.entry(index).or_default().push_str(&sent);
            }
            choice.delta.content = if sent.is_empty() { Nullable::Absent } else { Nullable::Value(sent) };
        }
        if self.template.is_none() {
            self.template = Some(chunk.clone());
        }
        Ok(())
    }

    /// What is still held back, in one last chunk.
    fn flush(&mut self) -> Option<ChatChunk> {
        let session = self.session.as_ref()?;
        let mut template = self.template.clone()?;
        let mut choices = Vec::new();
        for (index, pending) in std::mem::take(&mut self.pending) {
            if pending.is_empty() {
                continue;
            }
            let sent = transform(&pending, &self.detectors, &mut self.tallies, &session.placeholders);
            let mut choice = template.choices.first().cloned()?;
            choice.index = index;
            choice.finish_reason = None;
            choice.delta = Default::default();
            choice.delta.content = Nullable::Value(sent);
            choices.push(choice);
        }
        if choices.is_empty() {
            return None;
        }
        template.choices = choices;
        template.usage = Nullable::Absent;
        Some(template)
    }

    /// The webhooks that check answers, on the whole stream.
    async fn ask_webhooks(&mut self) -> Result<(), ApiFailure> {
        let Some(session) = self.session.as_ref() else { return Ok(()) };
        for guardrail in &self.webhooks {
            let Check::Webhook(hook) = &guardrail.check else { continue };
            let started = Instant::now();
            let content: Vec<&String> = self.whole.values().collect();
            let payload = json!({
                "guardrail": guardrail.name, "mode": "during_call", "model": self.request.as_ref().map(|r| &r.model), "key_id": null,
                "messages": self.request.as_ref().map(|r| &r.messages), "response": {"content": content},
            });
            match hook.ask(&payload).await {
                Ok(verdict) => {
                    let refused = ("the service refused the answer", "the service refused the answer");
                    // A mask: what was sent cannot be replaced.
                    if session.allow_or_block(guardrail, "during_call", verdict, refused, started)?.is_some() {
                        session.record(guardrail, "during_call", "logged", 1, started);
                    }
                }
                Err(why) => session.no_verdict(guardrail, hook, "during_call", &why, started)?,
            }
        }
        Ok(())
    }

    /// Records the stream's decisions and hands every decision of the call on.
    /// Ends the routed call as a failure the gateway chose (a guardrail's block).
    fn stop(&mut self, reason: &str) {
        if let Some(inner) = self.inner.take() {
            inner.stop(reason);
        }
    }

    fn finish(&mut self) {
        self.done = true;
        // The routed call ends first (a stream cut short writes its spend row as it is
        // dropped), so that the decisions follow its row.
        drop(self.inner.take());
        if let Some(session) = self.session.as_ref().filter(|_| self.guarded) {
            let recorded: Vec<String> =
                session.records().into_iter().filter(|r| r.mode == "during_call").map(|r| r.guardrail).collect();
            for (guardrail, tally) in self.detectors.iter().zip(&self.tallies) {
                if recorded.contains(&guardrail.name) {
                    continue;
                }
                let decision = match (tally.findings, guardrail.action) {
                    (0, _) => "passed",
                    (_, Action::Mask) => "masked",
                    (_, _) => "logged",
                };
                session.record(guardrail, "during_call", decision, tally.findings, since(tally.spent));
            }
        }
        if let Some(on_done) = self.on_done.take() {
            on_done(self.session.as_ref().map(|s| s.records()).unwrap_or_default());
        }
    }
}

impl Drop for GuardedStream {
    fn drop(&mut self) {
        // A client that goes away still leaves the decisions made so far.
        if !self.done {
            self.finish();
        }
    }
}

/// A segment about to be sent: masked by the masking guardrails (counted, with the logging
/// ones), then with the pre-call placeholders restored.
fn transform(
    segment: &str,
    detectors: &[Arc<Guardrail>],
    tallies: &mut [Tally],
    placeholders: &Placeholders,
) -> String {
    let mut text = segment.to_string();
    for (guardrail, tally) in detectors.iter().zip(tallies.iter_mut()).filter(|(g, _)| g.action != Action::Block) {
        let Check::Patterns(detector) = &guardrail.check else { continue };
        let started = Instant::now();
        if detector.matches(&text) {
            let found = detector.find(&text);
            tally.findings += found.len();
            if guardrail.action == Action::Mask {
                let masking = if guardrail.kind == "pii" { Masking::Labelled } else { Masking::Redacted };
                text = mask(&text, &found, &mut { masking });
            }
        }
        tally.spent += started.elapsed();
    }
    placeholders.restore(&text).unwrap_or(text)
}

/// An instant `spent` ago, so that a record shows the time a guardrail spent on the stream.
fn since(spent: Duration) -> Instant {
    Instant::now().checked_sub(spent).unwrap_or_else(Instant::now)
}

/// The largest char boundary of `text` at or below `at`.
fn floor(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// A chunk left with nothing to say once its held-back text is taken out.
fn is_empty(chunk: &ChatChunk) -> bool {
    chunk.usage.is_none()
        && chunk.choices.iter().all(|c| {
            c.finish_reason.is_none()
                && matches!(c.delta.content, Nullable::Absent)
                && c.delta.role.is_none()
                && c.delta.tool_calls.is_none()
                && matches!(c.delta.reasoning_content, Nullable::Absent)
                && matches!(c.delta.refusal, Nullable::Absent | Nullable::Null)
        })
        && !chunk.choices.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_stays_on_char_boundaries() {
        let text = "aé€b";
        assert_eq!(floor(text, 2), 1);
        assert_eq!(floor(text, 3), 3);
        assert_eq!(floor(text, 99), text.len());
    }
}
