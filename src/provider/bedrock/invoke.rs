//! Claude on Bedrock through InvokeModel, for a `/v1/messages` request passed through:
//! `POST /model/{id}/invoke` and `/invoke-with-response-stream`.
//!
//! Upstream docs: <https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages.html>.
//! The body is the client's Messages body, byte for byte, but for three members: `model`
//! (in the URL) and `stream` (the URL says it) are taken out, and
//! `"anthropic_version": "bedrock-2023-05-31"` and the client's betas as `anthropic_beta`
//! (a list) go in, as Anthropic's own Bedrock client does. A whole answer is Anthropic's
//! message, as it came. A stream is AWS's event stream whose `chunk` events carry
//! Anthropic's events, base64-encoded; they are decoded with Anthropic's stream decoder and
//! rendered for the client as the server-sent events Anthropic's API sends
//! (`event: <type>` / `data: <event>`), so the client reads the same stream as from
//! Anthropic. Exceptions end the stream as in Converse.

use std::collections::VecDeque;

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use serde_json::json;

use super::stream::{exception, frame_error};
use crate::ChatChunk;
use crate::error::{Error, Result};
use crate::provider::native::Native;
use crate::provider::{Ctx, Flow, ProviderKind, StreamDecode, anthropic};
use crate::transport::eventstream::{EventFrame, EventStreamFramer, FrameKind};
use crate::transport::sse::SseEvent;

/// The `anthropic_version` Bedrock wants in the body.
pub const VERSION: &str = "bedrock-2023-05-31";

/// Whether a native Messages request for `model` goes to InvokeModel: the model (an id, an
/// inference profile or an ARN naming one) is Anthropic's, and the deployment did not ask
/// for Converse (`bedrock/converse/<id>`, LiteLLM's spelling for it).
pub fn takes_messages(model: &str) -> bool {
    !model.starts_with("converse/") && model.contains("anthropic.")
}

/// The InvokeModel body for a native Messages request.
pub fn body(native: &Native) -> Result<Bytes> {
    let mut fields = vec![("anthropic_version", json!(VERSION))];
    if let Some(betas) = native.beta_header() {
        let text = betas.to_str().map_err(|_| Error::invalid("`anthropic-beta` is not text", None))?;
        let list: Vec<&str> = text.split(',').map(str::trim).filter(|b| !b.is_empty()).collect();
        if !list.is_empty() {
            fields.push(("anthropic_beta", json!(list)));
        }
    }
    native.body_without_model_or_stream(&fields)
}

/// The CountTokens body for a native Messages request (`POST /model/{id}/count-tokens`):
/// the InvokeModel body, base64-encoded, as `input.invokeModel.body`. The answer is
/// `{"inputTokens": n}`.
pub fn count_body(native: &Native) -> Result<Bytes> {
    let invoke = body(native)?;
    let encoded = base64::engine::general_purpose::STANDARD.encode(&invoke);
    Ok(Bytes::from(json!({"input": {"invokeModel": {"body": encoded}}}).to_string()))
}

/// A stream of InvokeModel's `chunk` events: Anthropic's events inside, decoded, and rendered
/// as Anthropic's server-sent events for the caller.
#[derive(Debug)]
pub struct Decoder {
    inner: anthropic::stream::Decoder,
    rendered: BytesMut,
}

#[derive(Deserialize)]
struct Chunk {
    bytes: String,
}

#[derive(Deserialize)]
struct Typed {
    #[serde(rename = "type")]
    type_: String,
}

impl Decoder {
    /// A decoder for the stream of the call described by `ctx`.
    pub fn new(ctx: &Ctx<'_>) -> Self {
        Self { inner: anthropic::stream::Decoder::new(ctx), rendered: BytesMut::new() }
    }
}

fn malformed(what: &str, payload: &Bytes) -> Error {
    Error::decode(ProviderKind::Bedrock, "stream chunk", what, payload.clone())
}

impl StreamDecode for Decoder {
    type Framer = EventStreamFramer;

    fn framer(&self) -> EventStreamFramer {
        EventStreamFramer::new(ProviderKind::Bedrock)
    }

    fn on_frame(&mut self, frame: EventFrame, out: &mut VecDeque<ChatChunk>) -> Result<Flow> {
        match &frame.kind {
            FrameKind::Event(kind) if kind == "chunk" => {}
            FrameKind::Event(other) => {
                tracing::debug!(event = other.as_str(), "skipping a Bedrock event this version does not know");
                return Ok(Flow::Continue);
            }
            FrameKind::Exception(exception_type) => return Err(exception(exception_type, &frame.payload)),
            FrameKind::Error { code, message } => return Err(frame_error(code, message)),
        }
        let chunk: Chunk =
            serde_json::from_slice(&frame.payload).map_err(|e| malformed(&e.to_string(), &frame.payload))?;
        let event = base64::engine::general_purpose::STANDARD
            .decode(chunk.bytes.as_bytes())
            .map_err(|e| malformed(&format!("not base64: {e}"), &frame.payload))?;
        let typed: Typed = serde_json::from_slice(&event).map_err(|e| malformed(&e.to_string(), &frame.payload))?;
        // What Anthropic's API would have sent: the event's type, then the event.
        self.rendered.extend_from_slice(b"event: ");
        self.rendered.extend_from_slice(typed.type_.as_bytes());
        self.rendered.extend_from_slice(b"\ndata: ");
        self.rendered.extend_from_slice(&event);
        self.rendered.extend_from_slice(b"\n\n");
        self.inner.on_frame(SseEvent::new(&typed.type_, event), out).map_err(|e| e.answered_by(ProviderKind::Bedrock))
    }

    fn on_eof(&mut self, out: &mut VecDeque<ChatChunk>) -> Result<()> {
        self.inner.on_eof(out).map_err(|e| e.answered_by(ProviderKind::Bedrock))
    }

    fn renders_native(&self) -> bool {
        true
    }

    fn take_native(&mut self) -> Bytes {
        self.rendered.split().freeze()
    }
}

/// An Anthropic event (its JSON text) as InvokeModel frames it (for tests and the mock
/// upstream).
pub fn chunk_frame(event: &str) -> Vec<u8> {
    let bytes = base64::engine::general_purpose::STANDARD.encode(event);
    crate::transport::eventstream::event_frame("chunk", json!({ "bytes": bytes }).to_string().as_bytes())
}
