//! Gemini streams (`streamGenerateContent?alt=sse`): every event is a whole
//! `GenerateContentResponse` holding the next piece of each candidate. Text parts become
//! content deltas, thought parts reasoning deltas, and function calls (which Gemini never
//! splits) one tool-call delta each, with an index per choice counted from 0. The chunk with
//! `finishReason` gives the finish reason; the stream has no end marker, so its end is the
//! end of the body, after which a usage chunk follows when it was asked for. A blocked prompt
//! or an error event ends the stream with a typed error.

use std::collections::{HashMap, VecDeque};

use serde_json::Value;

use super::response::{blocked, finish_reason, tool_call, usage};
use crate::ChatChunk;
use crate::error::{Error, ErrorKind, Result};
use crate::provider::{Ctx, Flow, ProviderKind, StreamDecode};
use crate::spec::gemini::{ErrorResponse, GenerateContentResponse, UsageMetadata};
use crate::spec::openai::{
    ChatCompletionMessageToolCallChunk, ChatCompletionStreamResponseDelta, ChatRole, FunctionCallDelta,
};
use crate::transport::sse::{SseEvent, SseFramer};

#[derive(Debug, Default)]
struct ChoiceState {
    started: bool,
    calls: usize,
    finished: bool,
}

/// The decoder for one Gemini or Vertex AI stream.
#[derive(Debug)]
pub struct Decoder {
    kind: ProviderKind,
    include_usage: bool,
    id: String,
    model: String,
    created: i64,
    choices: HashMap<i64, ChoiceState>,
    usage: Option<UsageMetadata>,
}

impl Decoder {
    /// A decoder for the stream of the call described by `ctx`.
    pub fn new(kind: ProviderKind, ctx: &Ctx<'_>) -> Self {
        Self {
            kind,
            include_usage: ctx.include_usage,
            id: String::new(),
            model: ctx.model.to_string(),
            created: crate::provider::unix_now(),
            choices: HashMap::new(),
            usage: None,
        }
    }

    fn push(
        &self,
        out: &mut VecDeque<ChatChunk>,
        index: i64,
        delta: ChatCompletionStreamResponseDelta,
        finish: Option<crate::spec::openai::FinishReason>,
    ) {
        out.push_back(ChatChunk::for_choice(&self.id, self.created, &self.model, index, delta, finish));
    }
}

impl StreamDecode for Decoder {
    type Framer = SseFramer;

    fn framer(&self) -> SseFramer {
        SseFramer::new()
    }

    fn on_frame(&mut self, event: SseEvent, out: &mut VecDeque<ChatChunk>) -> Result<Flow> {
        if event.data().iter().all(u8::is_ascii_whitespace) {
            return Ok(Flow::Continue);
        }
        let answer: GenerateContentResponse = match serde_json::from_slice(event.data()) {
            Ok(answer) => answer,
            Err(err) => return Err(self.error_event(&event, err)),
        };
        if let Some(err) = blocked(self.kind, &answer) {
            return Err(Error::Stream { provider: self.kind, kind: err.kind, message: err.message });
        }
        if self.id.is_empty() {
            self.id = answer.response_id.clone().unwrap_or_default();
        }
        if let Some(version) = &answer.model_version {
            self.model.clone_from(version);
        }
        if answer.usage_metadata.is_some() {
            self.usage = answer.usage_metadata.clone();
        }
        for (position, candidate) in answer.candidates.unwrap_or_default().into_iter().enumerate() {
            let index = candidate.index.unwrap_or(i64::try_from(position).unwrap_or(0));
            let mut state = self.choices.remove(&index).unwrap_or_default();
            for part in candidate.content.and_then(|c| c.parts).unwrap_or_default() {
                let mut delta = ChatCompletionStreamResponseDelta::empty();
                if !state.started {
                    delta.role = Some(ChatRole::Assistant);
                    state.started = true;
                }
                if let Some(call) = tool_call(index, state.calls, &part) {
                    let function = call.function.unwrap_or_else(|| crate::spec::openai::FunctionCall {
                        name: String::new(),
                        arguments: String::new(),
                        extra: Default::default(),
                    });
                    delta.tool_calls = Some(vec![ChatCompletionMessageToolCallChunk {
                        index: Some(i64::try_from(state.calls).unwrap_or(i64::MAX)),
                        id: Some(call.id),
                        type_: call.type_,
                        function: Some(FunctionCallDelta {
                            name: Some(function.name),
                            arguments: Some(function.arguments),
                            extra: Default::default(),
                        }),
                        extra: call.extra,
                    }]);
                    state.calls += 1;
                } else if let Some(text) = part.text {
                    if part.thought == Some(true) {
                        delta.reasoning_content = text.into();
                    } else {
                        delta.content = text.into();
                    }
                } else {
                    continue;
                }
                self.push(out, index, delta, None);
            }
            if let Some(reason) = &candidate.finish_reason {
                state.finished = true;
                self.push(
                    out,
                    index,
                    ChatCompletionStreamResponseDelta::empty(),
                    Some(finish_reason(reason, state.calls > 0)),
                );
            }
            self.choices.insert(index, state);
        }
        Ok(Flow::Continue)
    }

    fn on_eof(&mut self, out: &mut VecDeque<ChatChunk>) -> Result<()> {
        if self.choices.is_empty() || self.choices.values().any(|c| !c.finished) {
            return Err(Error::Stream {
                provider: self.kind,
                kind: ErrorKind::Server,
                message: "the stream ended before every candidate had a finish reason".into(),
            });
        }
        if self.include_usage
            && let Some(u) = &self.usage
        {
            out.push_back(ChatChunk::usage_only(&self.id, self.created, &self.model, usage(u)));
        }
        Ok(())
    }
}

impl Decoder {
    fn error_event(&self, event: &SseEvent, parse_error: serde_json::Error) -> Error {
        match serde_json::from_slice::<ErrorResponse>(event.data()) {
            Ok(envelope) if serde_json::from_slice::<Value>(event.data()).is_ok_and(|v| v.get("error").is_some()) => {
                let err = super::error::from_status(self.kind, &envelope.error, None);
                Error::Stream { provider: self.kind, kind: err.kind, message: err.message }
            }
            _ => Error::decode(self.kind, "stream event", parse_error, event.data().to_vec().into()),
        }
    }
}
