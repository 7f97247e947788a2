//! Decoding OpenAI-format answers.

use bytes::Bytes;
use http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::provider::ProviderKind;

/// Decodes a successful answer body. Some compatible servers answer 200 with an error
/// envelope; that becomes the [`crate::ApiError`] it describes, not a decode failure.
pub fn decode_json<T: DeserializeOwned>(
    provider: ProviderKind,
    what: &'static str,
    response: http::Response<Bytes>,
) -> Result<T> {
    let (parts, body) = response.into_parts();
    match serde_json::from_slice::<T>(&body) {
        Ok(value) => Ok(value),
        Err(err) => {
            if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(&body)
                && map.contains_key("error")
            {
                let status = if parts.status.is_success() { StatusCode::BAD_GATEWAY } else { parts.status };
                return Err(super::error::decode_error(provider, status, &parts.headers, &body).into());
            }
            Err(Error::decode(provider, what, err, body))
        }
    }
}
