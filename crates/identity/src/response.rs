//! Reading token-service answers: the OAuth 2.0 token response (Entra v2, and the string-valued
//! shapes of IMDS and App Service) and Entra's error body.
//!
//! Shared by every credential that talks HTTP. Bodies are read with a size cap, and error text
//! taken from a server is shortened before it goes into an [`Error`].

use serde::Deserialize;
use serde_json::Value;

use crate::cache::refresh_on;
use crate::credential::AccessToken;
use crate::datetime::parse_app_service_date;
use crate::secret::Secret;
use crate::{Error, Result};

/// Largest body read from a token service. A token response is a few KiB; the cap keeps a
/// misbehaving server from filling memory.
pub(crate) const RESPONSE_BODY_BYTES_MAX: usize = 1024 * 1024;

/// Most characters of an unexpected body quoted in an error message.
const BODY_EXCERPT_CHARS_MAX: usize = 200;

/// Reads the body of `response`, refusing more than [`RESPONSE_BODY_BYTES_MAX`].
pub(crate) async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) =
        response.chunk().await.map_err(|error| Error::Http(describe_http_error(&error)))?
    {
        if body.len() + chunk.len() > RESPONSE_BODY_BYTES_MAX {
            return Err(Error::Http(format!(
                "token service answered more than {RESPONSE_BODY_BYTES_MAX} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A reqwest error with its causes, which hold the useful part (such as a TLS certificate
/// problem behind "error sending request").
pub(crate) fn describe_http_error(error: &reqwest::Error) -> String {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// Parses a successful token response received at `now_unix_secs`.
///
/// Accepts `expires_in`, `expires_on` and `refresh_in` as integers or numeric strings (Entra v2
/// sends integers, IMDS sends strings), and `expires_on` also as the legacy App Service date
/// string (`"06/20/2019 02:57:58 +00:00"`). `expires_on` wins when both are present, as in
/// azure-identity.
pub(crate) fn parse_token_response(body: &[u8], now_unix_secs: i64) -> Result<AccessToken> {
    let wire: TokenResponseWire = serde_json::from_slice(body).map_err(|error| {
        Error::Http(format!("token response is not the expected JSON: {error}"))
    })?;
    let access_token = wire
        .access_token
        .filter(|token| !token.is_empty())
        .ok_or_else(|| Error::Http("token response has no access_token".to_owned()))?;
    if let Some(token_type) = &wire.token_type
        && !token_type.eq_ignore_ascii_case("bearer")
    {
        return Err(Error::Http(format!(
            "token response has token_type {token_type:?}, not Bearer"
        )));
    }
    let expires_on = match (
        expires_on_field(wire.expires_on.as_ref())?,
        seconds_field("expires_in", wire.expires_in.as_ref())?,
    ) {
        (Some(expires_on), _) => expires_on,
        (None, Some(expires_in)) => now_unix_secs.saturating_add(expires_in),
        (None, None) => {
            return Err(Error::Http(
                "token response has neither expires_in nor expires_on".to_owned(),
            ));
        }
    };
    if expires_on <= now_unix_secs {
        return Err(Error::Http(format!(
            "token service returned a token that expired at {expires_on} (now {now_unix_secs})"
        )));
    }
    let refresh_in = seconds_field("refresh_in", wire.refresh_in.as_ref())?;
    Ok(AccessToken {
        token: Secret::new(access_token),
        expires_on,
        refresh_on: Some(refresh_on(now_unix_secs, expires_on, refresh_in)),
    })
}

/// Turns a refusal (`status` not 2xx) into an [`Error`]: Entra's `{error, error_description}`
/// becomes [`Error::Authentication`]; anything else becomes [`Error::Http`] with an excerpt.
pub(crate) fn parse_error_response(status: u16, body: &[u8]) -> Error {
    if let Ok(wire) = serde_json::from_slice::<ErrorResponseWire>(body)
        && let Some(error) = wire.error.filter(|error| !error.is_empty())
    {
        return Error::Authentication {
            status: Some(status),
            error,
            description: wire.error_description.unwrap_or_default(),
        };
    }
    Error::Http(format!(
        "token service answered {status} without an OAuth error body: {:?}",
        excerpt(body)
    ))
}

#[derive(Deserialize)]
struct TokenResponseWire {
    access_token: Option<String>,
    token_type: Option<String>,
    expires_in: Option<Value>,
    expires_on: Option<Value>,
    refresh_in: Option<Value>,
}

#[derive(Deserialize)]
struct ErrorResponseWire {
    error: Option<String>,
    error_description: Option<String>,
}

/// A whole number of seconds given as a JSON integer or a numeric string.
fn seconds_field(name: &str, value: Option<&Value>) -> Result<Option<i64>> {
    let seconds = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(number)) => number.as_i64(),
        Some(Value::String(text)) => text.trim().parse::<i64>().ok(),
        Some(_) => None,
    };
    match seconds {
        Some(seconds) => Ok(Some(seconds)),
        None => Err(Error::Http(format!(
            "token response field {name} is not a whole number of seconds: {}",
            value.map(Value::to_string).unwrap_or_default()
        ))),
    }
}

/// `expires_on`: epoch seconds as a number or string, or an App Service date string.
fn expires_on_field(value: Option<&Value>) -> Result<Option<i64>> {
    if let Some(Value::String(text)) = value
        && let Some(seconds) = parse_app_service_date(text)
    {
        return Ok(Some(seconds));
    }
    seconds_field("expires_on", value)
}

pub(crate) fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(body).trim().chars().take(BODY_EXCERPT_CHARS_MAX).collect()
}

#[cfg(test)]
mod tests {
    use crate::Error;
    use crate::response::{parse_error_response, parse_token_response};

    const NOW: i64 = 1_700_000_000;

    #[test]
    fn v2_response_with_integer_expires_in() {
        let token = parse_token_response(
            br#"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"abc"}"#,
            NOW,
        )
        .unwrap();
        assert_eq!(token.token.expose(), "abc");
        assert_eq!(token.expires_on, NOW + 3599);
        assert_eq!(token.refresh_on, Some(NOW + 3599 - 300));
    }

    #[test]
    fn imds_response_with_string_fields() {
        let body = format!(
            r#"{{"access_token":"abc","expires_in":"86399","expires_on":"{}","token_type":"Bearer"}}"#,
            NOW + 86_000
        );
        let token = parse_token_response(body.as_bytes(), NOW).unwrap();
        assert_eq!(token.expires_on, NOW + 86_000);
        assert_eq!(token.refresh_on, Some(NOW + 43_000));
    }

    #[test]
    fn app_service_legacy_date_string_is_accepted() {
        // 2024-01-01T06:00:00Z, as the 2017-09-01 endpoint may write it.
        for expires_on in ["01/01/2024 06:00:00 +00:00", "1/1/2024 6:00:00 AM +00:00"] {
            let body = format!(r#"{{"access_token":"abc","expires_on":"{expires_on}"}}"#);
            let token = parse_token_response(body.as_bytes(), 1_704_067_200).unwrap();
            assert_eq!(token.expires_on, 1_704_088_800, "{expires_on}");
        }
    }

    #[test]
    fn refresh_in_is_honoured() {
        let token = parse_token_response(
            br#"{"access_token":"abc","expires_in":7200,"refresh_in":"600"}"#,
            NOW,
        )
        .unwrap();
        assert_eq!(token.refresh_on, Some(NOW + 600));
    }

    #[test]
    fn malformed_responses_are_http_errors() {
        for body in [
            &br#"{"expires_in":3599}"#[..],
            br#"{"access_token":"abc"}"#,
            br#"{"access_token":"abc","expires_in":"soon"}"#,
            br#"{"access_token":"abc","expires_in":0}"#,
            br#"{"access_token":"abc","expires_in":60,"token_type":"pop"}"#,
            b"<html>",
        ] {
            let result = parse_token_response(body, NOW);
            assert!(matches!(result, Err(Error::Http(_))), "{result:?}");
        }
    }

    #[test]
    fn entra_error_becomes_authentication_error() {
        let error = parse_error_response(
            401,
            br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215]}"#,
        );
        assert_eq!(
            error,
            Error::Authentication {
                status: Some(401),
                error: "invalid_client".to_owned(),
                description: "AADSTS7000215: Invalid client secret provided.".to_owned(),
            }
        );
    }

    #[test]
    fn non_oauth_error_body_is_http_error_with_excerpt() {
        let error = parse_error_response(502, b"<html>bad gateway</html>");
        assert_eq!(
            error,
            Error::Http(
                "token service answered 502 without an OAuth error body: \"<html>bad gateway</html>\""
                    .to_owned()
            )
        );
    }
}
