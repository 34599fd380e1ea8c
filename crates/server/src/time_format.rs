//! Time formats of the wire: Entra's error timestamps and RFC 3339 as Graph and ARM print it.

/// `2024-01-01 00:00:00Z`, the timestamp format of Entra's error bodies.
pub fn entra_timestamp(time: domain::UnixTime) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z");
    rfc_time(time).format(&format).unwrap_or_default()
}

/// RFC 3339 with seconds precision and `Z`, as Graph and ARM print times.
pub fn rfc3339(time: domain::UnixTime) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    rfc_time(time).format(&format).unwrap_or_default()
}

fn rfc_time(time: domain::UnixTime) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(time.secs())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// Parses an RFC 3339 time (as Graph's `endDateTime`).
pub fn parse_rfc3339(text: &str) -> Option<domain::UnixTime> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|parsed| domain::UnixTime::from_secs(parsed.unix_timestamp()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_as_entra_and_graph_do() {
        let time = domain::UnixTime::from_secs(1_704_067_205);
        assert_eq!(entra_timestamp(time), "2024-01-01 00:00:05Z");
        assert_eq!(rfc3339(time), "2024-01-01T00:00:05Z");
        assert_eq!(parse_rfc3339("2024-01-01T00:00:05Z"), Some(time));
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}
