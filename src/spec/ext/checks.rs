//! The ranges OpenAI's API accepts for a chat request. The gateway checks every request on
//! its OpenAI-compatible front door with [`CreateChatCompletionRequest::check`] before
//! anything is reserved or sent: a request the upstream would refuse (or, worse, one a
//! lenient upstream would serve with a `max_tokens` of `-1`, or a million choices) is
//! refused with OpenAI's own wording, naming the parameter. The SDK's `Client` and `Router`
//! do not: a provider's own ranges differ, and its own error is the faithful answer.

use std::fmt;

use crate::spec::openai::CreateChatCompletionRequest;

/// A parameter outside the range OpenAI accepts (an `invalid_request_error` naming it, as
/// [`crate::Error`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutOfRange {
    /// The parameter, by its OpenAI name.
    pub param: &'static str,
    /// OpenAI's wording.
    pub message: String,
}

impl fmt::Display for OutOfRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for OutOfRange {}

type Result<T> = std::result::Result<T, OutOfRange>;

/// The most choices (`n`) OpenAI accepts.
pub const MAX_CHOICES: i64 = 128;

fn below(param: &'static str, min: impl fmt::Display, got: impl fmt::Display) -> OutOfRange {
    let message =
        format!("Invalid '{param}': value below minimum value. Expected a value >= {min}, but got {got} instead.");
    OutOfRange { param, message }
}

fn above(param: &'static str, max: impl fmt::Display, got: impl fmt::Display) -> OutOfRange {
    let message =
        format!("Invalid '{param}': value above maximum value. Expected a value <= {max}, but got {got} instead.");
    OutOfRange { param, message }
}

fn within_int(param: &'static str, value: Option<i64>, min: i64, max: Option<i64>) -> Result<()> {
    match value {
        Some(v) if v < min => Err(below(param, min, v)),
        Some(v) if max.is_some_and(|m| v > m) => Err(above(param, max.unwrap_or_default(), v)),
        _ => Ok(()),
    }
}

fn within_float(param: &'static str, value: Option<f64>, min: f64, max: f64) -> Result<()> {
    match value {
        Some(v) if v < min => Err(below(param, min, v)),
        Some(v) if v > max => Err(above(param, max, v)),
        _ => Ok(()),
    }
}

impl CreateChatCompletionRequest {
    /// Whether the request's parameters are within the ranges OpenAI accepts: at least one
    /// message, `max_tokens` / `max_completion_tokens` of 1 or more, `n` from 1 to 128,
    /// `temperature` from 0 to 2, `top_p` from 0 to 1, the penalties from -2 to 2,
    /// `top_logprobs` from 0 to 20. The error names the parameter.
    ///
    /// ```
    /// use switchyard::{ChatMessage, ChatRequest};
    /// let mut req = ChatRequest::new("mock/echo", vec![ChatMessage::user("hi")]);
    /// assert!(req.check().is_ok());
    /// req.n = Some(1_000_000);
    /// assert!(req.check().unwrap_err().to_string().contains("'n'"));
    /// ```
    pub fn check(&self) -> Result<()> {
        if self.messages.is_empty() {
            let message = "[] is too short - 'messages': send at least one message".to_string();
            return Err(OutOfRange { param: "messages", message });
        }
        within_int("max_tokens", self.max_tokens, 1, None)?;
        within_int("max_completion_tokens", self.max_completion_tokens, 1, None)?;
        within_int("n", self.n, 1, Some(MAX_CHOICES))?;
        within_int("top_logprobs", self.top_logprobs, 0, Some(20))?;
        within_float("temperature", self.temperature, 0.0, 2.0)?;
        within_float("top_p", self.top_p, 0.0, 1.0)?;
        within_float("presence_penalty", self.presence_penalty, -2.0, 2.0)?;
        within_float("frequency_penalty", self.frequency_penalty, -2.0, 2.0)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::{ChatMessage, ChatRequest};

    #[test]
    fn out_of_range_parameters_are_refused_naming_them() {
        let ok = ChatRequest::new("m", vec![ChatMessage::user("hi")]);
        assert!(ok.check().is_ok());
        type Breaks = fn(&mut ChatRequest);
        let cases: [(&str, Breaks); 9] = [
            ("messages", |r| r.messages.clear()),
            ("max_tokens", |r| r.max_tokens = Some(0)),
            ("max_tokens", |r| r.max_tokens = Some(-1)),
            ("max_completion_tokens", |r| r.max_completion_tokens = Some(0)),
            ("n", |r| r.n = Some(-1)),
            ("n", |r| r.n = Some(1_000_000)),
            ("temperature", |r| r.temperature = Some(2.5)),
            ("top_p", |r| r.top_p = Some(-0.1)),
            ("top_logprobs", |r| r.top_logprobs = Some(21)),
        ];
        for (param, break_it) in cases {
            let mut request = ok.clone();
            break_it(&mut request);
            match request.check() {
                Err(super::OutOfRange { param: p, message }) => {
                    assert_eq!(p, param, "{message}");
                    assert!(message.contains(param), "{message}");
                }
                other => panic!("{param}: {other:?}"),
            }
        }
    }
}
