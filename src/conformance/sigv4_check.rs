//! Checks the SigV4 signature of a request the Bedrock adapter sent: the replay signs the
//! request as received (the headers it says it signed, at the time in its `x-amz-date`)
//! and compares. A wrong canonical path, a header changed after signing, or a body other
//! than the one signed shows up here. (That the signer itself is right is shown against
//! AWS's published vectors in `provider::bedrock`.)

use std::time::{Duration, SystemTime};

use bytes::Bytes;

use crate::conformance::case::Case;
use crate::provider::bedrock::{BedrockAuth, SIGNING_NAME, sign_request};

/// The access key of AWS's documentation examples, used by cases that do not name one.
pub(crate) const ACCESS_KEY_ID: &str = "AKIDEXAMPLE";
/// The secret of AWS's documentation examples.
pub(crate) const SECRET_ACCESS_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// The credentials a case signs with.
pub(crate) struct Settings {
    auth: BedrockAuth,
    region: String,
}

impl Settings {
    /// The case's SigV4 settings; `None` when it authenticates with an API key instead.
    pub(crate) fn of(case: &Case) -> Option<Self> {
        let s = &case.spec.settings;
        let access_key_id = s.aws_access_key_id.clone().unwrap_or_else(|| ACCESS_KEY_ID.into());
        if access_key_id.is_empty() {
            return None;
        }
        let secret = s.aws_secret_access_key.clone().unwrap_or_else(|| SECRET_ACCESS_KEY.into());
        Some(Self {
            auth: BedrockAuth::SigV4 {
                access_key_id,
                secret_access_key: secret.into(),
                session_token: s.aws_session_token.clone().map(Into::into),
            },
            region: s.location.clone().unwrap_or_else(|| "us-east-1".into()),
        })
    }
}

/// Problems with the request's signature (none when it verifies).
pub(crate) fn verify(request: &wiremock::Request, settings: &Settings) -> Vec<String> {
    let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok());
    let Some(authorization) = header("authorization") else {
        return vec!["sigv4: no authorization header".into()];
    };
    let Some(signed) = authorization.split(", ").find_map(|p| p.strip_prefix("SignedHeaders=")) else {
        return vec![format!("sigv4: no SignedHeaders in `{authorization}`")];
    };
    let Some(time) = header("x-amz-date").and_then(parse_amz_date) else {
        return vec!["sigv4: no valid x-amz-date header".into()];
    };
    // wiremock's URL names `localhost`; the host that was signed is the one in `host`.
    let Some(host) = header("host") else {
        return vec!["sigv4: no host header".into()];
    };
    let query = request.url.query().map(|q| format!("?{q}")).unwrap_or_default();
    let uri = format!("{}://{host}{}{query}", request.url.scheme(), request.url.path());
    let mut builder = http::Request::builder().method(request.method.as_str()).uri(uri);
    for name in signed.split(';') {
        // `host` comes from the URL, and the signer adds the date and token itself.
        if matches!(name, "host" | "x-amz-date" | "x-amz-security-token") {
            continue;
        }
        for value in request.headers.get_all(name) {
            builder = builder.header(name, value);
        }
    }
    let mut resigned = match builder.body(Bytes::from(request.body.clone())) {
        Ok(r) => r,
        Err(e) => return vec![format!("sigv4: cannot rebuild the request: {e}")],
    };
    if let Err(e) = sign_request(&mut resigned, &settings.auth, &settings.region, SIGNING_NAME, time) {
        return vec![format!("sigv4: cannot sign: {e}")];
    }
    let expected = resigned.headers().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if expected == authorization {
        Vec::new()
    } else {
        vec![format!("sigv4: the signature does not verify\n  sent:     {authorization}\n  expected: {expected}")]
    }
}

/// `20150830T123600Z` as a time.
fn parse_amz_date(text: &str) -> Option<SystemTime> {
    let digits = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    if text.len() != 16 || text.as_bytes()[8] != b'T' || !text.ends_with('Z') {
        return None;
    }
    let (y, m, d) = (digits(0..4)?, digits(4..6)?, digits(6..8)?);
    let (hh, mm, ss) = (digits(9..11)?, digits(11..13)?, digits(13..15)?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_dates_parse_to_their_instant() {
        let t = parse_amz_date("20150830T123600Z").and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok());
        assert_eq!(t.map(|d| d.as_secs()), Some(1_440_938_160));
        let leap = parse_amz_date("20240229T000000Z").and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok());
        assert_eq!(leap.map(|d| d.as_secs()), Some(1_709_164_800));
        assert!(parse_amz_date("2015-08-30").is_none());
    }

    fn settings(secret: &str) -> Settings {
        Settings {
            auth: BedrockAuth::SigV4 {
                access_key_id: ACCESS_KEY_ID.into(),
                secret_access_key: secret.to_string().into(),
                session_token: None,
            },
            region: "us-east-1".into(),
        }
    }

    /// A Converse request signed as the adapter signs it, as wiremock would hand it over
    /// (URL on `localhost`, the signed host in the `host` header).
    fn received() -> wiremock::Request {
        let host = "bedrock-runtime.us-east-1.amazonaws.com";
        let path = "/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/converse";
        let mut request = http::Request::builder()
            .method("POST")
            .uri(format!("https://{host}{path}"))
            .header("content-type", "application/json")
            .body(Bytes::from_static(br#"{"messages":[]}"#))
            .unwrap_or_else(|e| panic!("{e}"));
        let time = parse_amz_date("20251122T120000Z").unwrap_or_else(|| panic!("date"));
        let auth = settings(SECRET_ACCESS_KEY).auth;
        sign_request(&mut request, &auth, "us-east-1", SIGNING_NAME, time).unwrap_or_else(|e| panic!("{e}"));
        let mut headers = request.headers().clone();
        headers.insert("host", http::HeaderValue::from_static(host));
        wiremock::Request {
            url: reqwest::Url::parse(&format!("http://localhost:4010{path}")).unwrap_or_else(|e| panic!("{e}")),
            method: http::Method::POST,
            headers,
            body: request.body().to_vec(),
        }
    }

    #[test]
    fn a_correctly_signed_request_verifies() {
        assert_eq!(verify(&received(), &settings(SECRET_ACCESS_KEY)), Vec::<String>::new());
    }

    #[test]
    fn any_change_after_signing_or_another_secret_fails_verification() {
        let mut body = received();
        body.body = br#"{"messages":[{}]}"#.to_vec();
        let mut path = received();
        path.url.set_path("/model/us.anthropic.claude-sonnet-4-20250514-v1:0/converse");
        let mut header = received();
        header.headers.insert("content-type", http::HeaderValue::from_static("text/plain"));
        let mut unsigned = received();
        unsigned.headers.remove("authorization");
        for (what, request, secret) in [
            ("body", body, SECRET_ACCESS_KEY),
            ("path", path, SECRET_ACCESS_KEY),
            ("signed header", header, SECRET_ACCESS_KEY),
            ("no authorization", unsigned, SECRET_ACCESS_KEY),
            ("secret", received(), "another-secret"),
        ] {
            let problems = verify(&request, &settings(secret));
            assert_eq!(problems.len(), 1, "{what}: {problems:?}");
            assert!(problems[0].starts_with("sigv4:"), "{what}: {problems:?}");
        }
    }
}
