//! A minimal `multipart/form-data` reader for the sign-in form, which carries an optional
//! certificate file. Only what browsers send: parts with a `Content-Disposition: form-data`
//! header naming the field, bodies taken as bytes. The server's body limit bounds the input.

/// One field of a multipart form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub name: String,
    /// The file name, for file fields.
    pub filename: Option<String>,
    pub body: Vec<u8>,
}

/// The boundary named by a `Content-Type: multipart/form-data; boundary=...` value.
pub fn boundary(content_type: &str) -> Option<String> {
    let (kind, parameters) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    parameters.split(';').find_map(|parameter| {
        let (name, value) = parameter.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"').to_owned())
            .filter(|boundary| !boundary.is_empty() && boundary.len() <= 200)
    })
}

/// The parts of `body`, or `None` when it is not well formed.
pub fn parse(body: &[u8], boundary: &str) -> Option<Vec<Part>> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut rest = &body[find(body, delimiter)? + delimiter.len()..];
    let mut parts = Vec::new();
    loop {
        if rest.starts_with(b"--") {
            return Some(parts);
        }
        rest = rest.strip_prefix(b"\r\n")?;
        let header_end = find(rest, b"\r\n\r\n")?;
        let headers = std::str::from_utf8(&rest[..header_end]).ok()?;
        let content = &rest[header_end + 4..];
        let mut end_marker = b"\r\n".to_vec();
        end_marker.extend_from_slice(delimiter);
        let end = find(content, &end_marker)?;
        let (name, filename) = disposition(headers)?;
        parts.push(Part { name, filename, body: content[..end].to_vec() });
        rest = &content[end + end_marker.len()..];
    }
}

/// The field name and file name of a part's `Content-Disposition: form-data` header.
fn disposition(headers: &str) -> Option<(String, Option<String>)> {
    let line = headers.split("\r\n").find(|line| {
        line.split_once(':')
            .is_some_and(|(name, _)| name.trim().eq_ignore_ascii_case("content-disposition"))
    })?;
    let value = line.split_once(':')?.1;
    let mut name = None;
    let mut filename = None;
    for parameter in value.split(';').skip(1) {
        let Some((key, text)) = parameter.split_once('=') else { continue };
        let text = text.trim().trim_matches('"').to_owned();
        match key.trim().to_ascii_lowercase().as_str() {
            "name" => name = Some(text),
            "filename" => filename = Some(text),
            _ => {}
        }
    }
    Some((name?, filename))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_and_files_as_browsers_send_them() {
        let content_type = "multipart/form-data; boundary=----WebKitFormBoundaryX";
        let boundary = boundary(content_type).unwrap();
        let body = "------WebKitFormBoundaryX\r\n\
            Content-Disposition: form-data; name=\"client_id\"\r\n\r\n\
            abc\r\n\
            ------WebKitFormBoundaryX\r\n\
            Content-Disposition: form-data; name=\"certificate\"; filename=\"sp.pem\"\r\n\
            Content-Type: application/x-x509-ca-cert\r\n\r\n\
            -----BEGIN X-----\r\nline\r\n-----END X-----\r\n\r\n\
            ------WebKitFormBoundaryX--\r\n";
        let parts = parse(body.as_bytes(), &boundary).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            parts[0],
            Part { name: "client_id".into(), filename: None, body: b"abc".to_vec() }
        );
        assert_eq!(parts[1].filename.as_deref(), Some("sp.pem"));
        assert_eq!(parts[1].body, b"-----BEGIN X-----\r\nline\r\n-----END X-----\r\n".to_vec());
    }

    #[test]
    fn malformed_bodies_are_refused() {
        assert_eq!(boundary("application/x-www-form-urlencoded"), None);
        assert_eq!(parse(b"no delimiter here", "b"), None);
        assert_eq!(
            parse(b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nnever ends", "b"),
            None
        );
        assert_eq!(parse(b"--b--\r\n", "b"), Some(Vec::new()));
    }
}
