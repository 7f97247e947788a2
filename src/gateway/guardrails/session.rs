//! One request's guardrails ([`Session`]): which run, what they decide on the prompt
//! (`pre_call`) and on the answer (`post_call`), the masking and the placeholders a mask puts
//! in a prompt, and the records of every decision.

use std::fmt::Write as _;
use std::sync::{Arc, PoisonError};
use std::time::Instant;

use serde_json::{Value, json};

use super::super::ApiFailure;
use super::*;
use crate::error::ErrorKind;
use crate::{ChatMessage, ChatRequest, ChatResponse};

/// The guardrails of one request, and what they decided.
#[derive(Debug)]
pub struct Session {
    pub(crate) active: Vec<Arc<Guardrail>>,
    pub(crate) placeholders: Placeholders,
    pub(super) records: Records,
}

/// A refusal: 400, type `guardrail_violation`, the guardrail's name as the code.
pub fn violation(guardrail: &str, what: &str) -> ApiFailure {
    let mut failure =
        ApiFailure::new(ErrorKind::InvalidRequest, format!("blocked by the guardrail `{guardrail}`: {what}"));
    failure.kind = "guardrail_violation";
    failure.code(guardrail)
}

/// Scans one text for a pattern guardrail: what it finds is added to `labels`, and with
/// `masking` the text is masked in place.
fn scan(detector: &Detector, text: &mut String, masking: Option<&mut Masking<'_>>, labels: &mut Vec<Finding>) {
    if !detector.matches(text) {
        return;
    }
    let here = detector.find(text);
    if let Some(masking) = masking {
        *text = mask(text, &here, masking);
    }
    labels.extend(here);
}

pub(super) fn found(findings: &[Finding]) -> String {
    let mut labels: Vec<&str> = findings.iter().map(|f| f.label).collect();
    labels.sort_unstable();
    labels.dedup();
    labels.iter().map(|l| l.to_ascii_lowercase()).collect::<Vec<_>>().join(", ")
}

/// How found text is replaced.
pub(crate) enum Masking<'p> {
    /// PII in a prompt: numbered placeholders (`[EMAIL_1]`), remembered to restore.
    Numbered(&'p mut Placeholders),
    /// PII in an answer: its label (`[EMAIL]`).
    Labelled,
    /// Keywords and patterns: `[REDACTED]`.
    Redacted,
}

impl Masking<'_> {
    fn for_guardrail<'a>(kind: &str, before_call: bool, placeholders: &'a mut Placeholders) -> Masking<'a> {
        match (kind, before_call) {
            ("pii", true) => Masking::Numbered(placeholders),
            ("pii", false) => Masking::Labelled,
            _ => Masking::Redacted,
        }
    }
}

/// `text` with `findings` replaced.
pub(crate) fn mask(text: &str, findings: &[Finding], masking: &mut Masking<'_>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for f in findings {
        if f.start < at {
            continue;
        }
        out.push_str(&text[at..f.start]);
        match masking {
            Masking::Numbered(placeholders) => out.push_str(&placeholders.for_value(f.label, &text[f.start..f.end])),
            Masking::Labelled => {
                out.push('[');
                out.push_str(f.label);
                out.push(']');
            }
            Masking::Redacted => out.push_str("[REDACTED]"),
        }
        at = f.end;
    }
    out.push_str(&text[at..]);
    out
}

impl Session {
    /// Whether any guardrail runs.
    pub fn is_empty(&self) -> bool {
        self.active.is_empty()
    }

    /// Whether the answer needs work: post-call guardrails, or placeholders to restore.
    pub fn works_on_answers(&self) -> bool {
        self.active.iter().any(|g| g.post) || !self.placeholders.pairs.is_empty()
    }

    /// Records a pattern guardrail's decision on what it found in `what` ("the prompt", "the
    /// answer"); `Err` when it blocks.
    fn decide(
        &self,
        guardrail: &Guardrail,
        mode: &'static str,
        what: &str,
        labels: &[Finding],
        started: Instant,
    ) -> std::result::Result<(), ApiFailure> {
        let decision = match guardrail.action {
            _ if labels.is_empty() => "passed",
            Action::Block => "blocked",
            Action::Mask => "masked",
            Action::Log => "logged",
        };
        self.record(guardrail, mode, decision, labels.len(), started);
        if decision == "blocked" {
            return Err(violation(&guardrail.name, &format!("{what} contains {}", found(labels))));
        }
        Ok(())
    }

    pub(crate) fn record(
        &self,
        guardrail: &Guardrail,
        mode: &'static str,
        decision: &'static str,
        findings: usize,
        started: Instant,
    ) {
        let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let record = Record { guardrail: guardrail.name.clone(), mode, decision, findings, latency_us };
        if decision != "passed" {
            tracing::info!(guardrail = %record.guardrail, mode, decision, findings, "guardrail decision");
        }
        self.records.lock().unwrap_or_else(PoisonError::into_inner).push(record);
    }

    /// The decisions so far.
    pub fn records(&self) -> Vec<Record> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The `x-switchyard-guardrails` header: `name=decision(findings) ms` per decision.
    pub fn header(&self) -> Option<String> {
        let records = self.records();
        if records.is_empty() {
            return None;
        }
        let mut out = String::new();
        for (i, r) in records.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            let _ = write!(out, "{}:{}={}", r.guardrail, r.mode, r.decision);
            if r.findings > 0 {
                let _ = write!(out, "({})", r.findings);
            }
            let _ = write!(out, ";{:.3}ms", r.latency_us as f64 / 1000.0);
        }
        Some(out)
    }

    /// Runs the pre-call guardrails on `request`, masking it in place; `Err` refuses it.
    pub async fn pre_call(
        &mut self,
        request: &mut ChatRequest,
        model: &str,
        key_id: Option<&str>,
    ) -> std::result::Result<(), ApiFailure> {
        let active = self.active.clone();
        for guardrail in active.iter().filter(|g| g.pre) {
            let started = Instant::now();
            match &guardrail.check {
                Check::Patterns(detector) => {
                    let mut labels: Vec<Finding> = Vec::new();
                    let mut masking = (guardrail.action == Action::Mask)
                        .then(|| Masking::for_guardrail(guardrail.kind, true, &mut self.placeholders));
                    for message in request.messages.iter_mut().filter(|m| guardrail.reads(m)) {
                        let Some(content) = message.content_mut() else { continue };
                        for text in content.texts_mut() {
                            scan(detector, text, masking.as_mut(), &mut labels);
                        }
                    }
                    self.decide(guardrail, "pre_call", "the prompt", &labels, started)?;
                }
                Check::Limits { max_input_tokens, max_messages, allowed, denied } => {
                    let broken = broken_limits(request, *max_input_tokens, *max_messages, allowed, denied);
                    if broken.is_empty() {
                        self.record(guardrail, "pre_call", "passed", 0, started);
                    } else if guardrail.action == Action::Log {
                        self.record(guardrail, "pre_call", "logged", broken.len(), started);
                    } else {
                        self.record(guardrail, "pre_call", "blocked", broken.len(), started);
                        return Err(violation(&guardrail.name, &broken.join("; ")));
                    }
                }
                Check::Webhook(hook) => self.pre_call_webhook(guardrail, hook, request, model, key_id, started).await?,
            }
        }
        Ok(())
    }

    /// A webhook's verdict on the prompt: allow, block, or messages to send instead.
    async fn pre_call_webhook(
        &mut self,
        guardrail: &Guardrail,
        hook: &Webhook,
        request: &mut ChatRequest,
        model: &str,
        key_id: Option<&str>,
        started: Instant,
    ) -> std::result::Result<(), ApiFailure> {
        let payload = json!({
            "guardrail": guardrail.name, "mode": "pre_call", "model": model, "key_id": key_id,
            "messages": request.messages, "response": Value::Null,
        });
        let verdict = match hook.ask(&payload).await {
            Ok(verdict) => verdict,
            Err(why) => return self.no_verdict(guardrail, hook, "pre_call", &why, started),
        };
        let refused = ("the service refused the request", "the service refused it");
        match self.allow_or_block(guardrail, "pre_call", verdict, refused, started)? {
            None => {}
            Some(Verdict::Mask { messages, .. }) => {
                let replaced = messages.map(|m| serde_json::from_value::<Vec<ChatMessage>>(Value::Array(m)));
                match replaced {
                    Some(Ok(messages)) if guardrail.action != Action::Log => {
                        request.messages = messages;
                        self.record(guardrail, "pre_call", "masked", 1, started);
                    }
                    Some(Ok(_)) => self.record(guardrail, "pre_call", "logged", 1, started),
                    Some(Err(e)) => self.no_verdict(
                        guardrail,
                        hook,
                        "pre_call",
                        &format!("its messages are not chat messages: {e}"),
                        started,
                    )?,
                    None => {
                        self.no_verdict(guardrail, hook, "pre_call", "a pre-call mask needs `messages`", started)?
                    }
                }
            }
            Some(_) => {}
        }
        Ok(())
    }

    /// What every mode does with a webhook's allow or block: an allow, or a block a logging
    /// guardrail only records (what the service said changes nothing), is `None`; a block
    /// refuses, saying `refused.0`, or `refused.1` with the service's reason; a mask comes
    /// back for the mode to apply.
    pub(super) fn allow_or_block(
        &self,
        guardrail: &Guardrail,
        mode: &'static str,
        verdict: Verdict,
        refused: (&str, &str),
        started: Instant,
    ) -> std::result::Result<Option<Verdict>, ApiFailure> {
        match verdict {
            Verdict::Allow => self.record(guardrail, mode, "passed", 0, started),
            Verdict::Block(_) if guardrail.action == Action::Log => self.record(guardrail, mode, "logged", 1, started),
            Verdict::Block(reason) => {
                self.record(guardrail, mode, "blocked", 1, started);
                let what = reason.map_or_else(|| refused.0.to_string(), |r| format!("{} ({r})", refused.1));
                return Err(violation(&guardrail.name, &what));
            }
            mask @ Verdict::Mask { .. } => return Ok(Some(mask)),
        }
        Ok(None)
    }

    /// A webhook gave no usable verdict: its policy decides.
    pub(super) fn no_verdict(
        &self,
        guardrail: &Guardrail,
        hook: &Webhook,
        mode: &'static str,
        why: &str,
        started: Instant,
    ) -> std::result::Result<(), ApiFailure> {
        tracing::warn!(guardrail = %guardrail.name, mode, error = why, fail_closed = hook.fail_closed, "guardrail webhook gave no verdict");
        self.record(guardrail, mode, "error", 0, started);
        if hook.fail_closed {
            let mut failure = violation(
                &guardrail.name,
                &format!("the guardrail service gave no verdict ({why}), and it fails closed"),
            );
            failure.status = axum::http::StatusCode::SERVICE_UNAVAILABLE;
            return Err(failure);
        }
        Ok(())
    }

    /// Runs the post-call guardrails on a whole answer, then restores pre-call placeholders.
    pub async fn post_call(
        &mut self,
        request: &ChatRequest,
        response: &mut ChatResponse,
        model: &str,
        key_id: Option<&str>,
    ) -> std::result::Result<(), ApiFailure> {
        let active = self.active.clone();
        for guardrail in active.iter().filter(|g| g.post) {
            let started = Instant::now();
            match &guardrail.check {
                Check::Patterns(detector) => {
                    let mut labels = Vec::new();
                    // What the model wrote stays masked: nothing to restore.
                    let mut scratch = Placeholders::default();
                    let mut masking = (guardrail.action == Action::Mask)
                        .then(|| Masking::for_guardrail(guardrail.kind, false, &mut scratch));
                    for choice in &mut response.choices {
                        let mut texts: Vec<&mut String> = choice.message.content.iter_mut().collect();
                        for call in choice.message.tool_calls.iter_mut().flatten() {
                            if let Some(f) = call.function.as_mut() {
                                texts.push(&mut f.arguments);
                            }
                        }
                        for text in texts {
                            scan(detector, text, masking.as_mut(), &mut labels);
                        }
                    }
                    self.decide(guardrail, "post_call", "the answer", &labels, started)?;
                }
                Check::Limits { .. } => {}
                Check::Webhook(hook) => {
                    let payload = json!({
                        "guardrail": guardrail.name, "mode": "post_call", "model": model, "key_id": key_id,
                        "messages": request.messages, "response": response,
                    });
                    self.post_call_webhook(guardrail, hook, &payload, response, started).await?;
                }
            }
        }
        for choice in &mut response.choices {
            if let Some(restored) = choice.message.content.as_deref().and_then(|t| self.placeholders.restore(t)) {
                choice.message.content = Some(restored);
            }
            for call in choice.message.tool_calls.iter_mut().flatten() {
                if let Some(f) = call.function.as_mut()
                    && let Some(restored) = self.placeholders.restore(&f.arguments)
                {
                    f.arguments = restored;
                }
            }
        }
        Ok(())
    }

    /// A webhook's verdict on the answer: allow, block, or content to send instead.
    async fn post_call_webhook(
        &mut self,
        guardrail: &Guardrail,
        hook: &Webhook,
        payload: &Value,
        response: &mut ChatResponse,
        started: Instant,
    ) -> std::result::Result<(), ApiFailure> {
        let verdict = match hook.ask(payload).await {
            Ok(verdict) => verdict,
            Err(why) => return self.no_verdict(guardrail, hook, "post_call", &why, started),
        };
        let refused = ("the service refused the answer", "the service refused the answer");
        match self.allow_or_block(guardrail, "post_call", verdict, refused, started)? {
            None => {}
            Some(Verdict::Mask { content: Some(content), .. }) if guardrail.action != Action::Log => {
                if let Some(choice) = response.choices.first_mut() {
                    choice.message.content = Some(content);
                }
                self.record(guardrail, "post_call", "masked", 1, started);
            }
            Some(Verdict::Mask { content: Some(_), .. }) => self.record(guardrail, "post_call", "logged", 1, started),
            Some(Verdict::Mask { content: None, .. }) => {
                self.no_verdict(guardrail, hook, "post_call", "a post-call mask needs `content`", started)?;
            }
            Some(_) => {}
        }
        Ok(())
    }
}

/// What a limits guardrail finds broken in a prompt (none: it passes).
fn broken_limits(
    request: &ChatRequest,
    max_input_tokens: Option<u64>,
    max_messages: Option<usize>,
    allowed: &[String],
    denied: &[String],
) -> Vec<String> {
    let mut broken: Vec<String> = Vec::new();
    if let Some(max) = max_messages
        && request.messages.len() > max
    {
        broken.push(format!("{} messages, more than {max}", request.messages.len()));
    }
    if let Some(max) = max_input_tokens
        && crate::tokens::chat_upper_bound(request) > max
    {
        let counted = crate::tokens::count_chat(crate::ProviderKind::OpenAi, "gpt-4o", request).tokens;
        if counted > max {
            broken.push(format!("about {counted} input tokens, more than {max}"));
        }
    }
    let tools = request.tools.iter().flatten().filter_map(|t| t.function.as_ref().map(|f| f.name.as_str()));
    for tool in tools {
        if denied.iter().any(|d| d == tool) || (!allowed.is_empty() && !allowed.iter().any(|a| a == tool)) {
            broken.push(format!("the tool `{tool}` is not allowed"));
        }
    }
    broken
}
