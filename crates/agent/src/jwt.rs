//! Reads the tenant (`tid`) from a token the server just issued, for `/metadata/identity/info`.
//! The token is not verified: it came from the server over authenticated TLS, and the value is
//! only echoed to the workload that could read the token itself.

/// The `tid` claim of a compact JWT, if it has one.
pub(crate) fn unverified_tenant_id(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64url_decode(payload)?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("tid")?.as_str().map(str::to_owned)
}

/// Base64url without padding (RFC 7515 §2); trailing `=` is tolerated.
fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for byte in text.trim_end_matches('=').bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_base64url() {
        assert_eq!(base64url_decode("aGk").unwrap(), b"hi");
        assert_eq!(base64url_decode("_-8").unwrap(), [0xff, 0xef]);
        assert_eq!(base64url_decode("aGk=").unwrap(), b"hi");
        assert!(base64url_decode("a+b").is_none());
    }

    #[test]
    fn reads_tid_from_the_payload() {
        // {"tid":"t-1","oid":"o"} in base64url.
        let token = "eyJhbGciOiJSUzI1NiJ9.eyJ0aWQiOiJ0LTEiLCJvaWQiOiJvIn0.c2ln";
        assert_eq!(unverified_tenant_id(token).as_deref(), Some("t-1"));
        assert_eq!(unverified_tenant_id("not-a-token"), None);
    }
}
