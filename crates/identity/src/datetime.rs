//! The two date formats token sources use instead of epoch seconds, parsed by hand (the crate
//! needs only these two and carries no date library):
//!
//! - the legacy App Service endpoint (`MSI_ENDPOINT`, api-version 2017-09-01) may send
//!   `expires_on` as `"06/20/2019 02:57:58 +00:00"` (Linux) or `"1/16/2020 5:24:12 AM +00:00"`
//!   (Windows), as azure-identity's `azure_ml._parse_expires_on` handles;
//! - `az account get-access-token` prints `expiresOn` as `%Y-%m-%d %H:%M:%S.%f` in the CLI's
//!   local time zone; [`crate::CliCredential`] runs the CLI with `TZ=UTC`, so it is UTC.

/// Seconds since the Unix epoch of `App Service`'s `M/D/YYYY h:mm:ss [AM|PM] [+HH:MM]`.
pub(crate) fn parse_app_service_date(text: &str) -> Option<i64> {
    let mut parts = text.split_whitespace();
    let date = parts.next()?;
    let time = parts.next()?;
    let mut rest: Vec<&str> = parts.collect();
    let period = match rest.first().map(|part| part.to_ascii_uppercase()) {
        Some(part) if part == "AM" || part == "PM" => {
            rest.remove(0);
            Some(part == "PM")
        }
        _ => None,
    };
    let offset_secs = match rest.as_slice() {
        [] => 0,
        [offset] => parse_offset(offset)?,
        _ => return None,
    };
    let [month, day, year] = numbers::<3>(date, '/')?;
    let [mut hour, minute, second] = numbers::<3>(time, ':')?;
    if let Some(pm) = period {
        if !(1..=12).contains(&hour) {
            return None;
        }
        hour = hour % 12 + if pm { 12 } else { 0 };
    }
    Some(unix_from_civil(year, month, day, hour, minute, second)? - offset_secs)
}

/// Seconds since the Unix epoch of `YYYY-MM-DD HH:MM:SS[.ffffff]` read as UTC (fractions are
/// dropped).
pub(crate) fn parse_cli_date(text: &str) -> Option<i64> {
    let (date, time) = text.trim().split_once(' ')?;
    let time = time.split_once('.').map_or(time, |(whole, fraction)| {
        if fraction.bytes().all(|b| b.is_ascii_digit()) { whole } else { "invalid" }
    });
    let [year, month, day] = numbers::<3>(date, '-')?;
    let [hour, minute, second] = numbers::<3>(time, ':')?;
    unix_from_civil(year, month, day, hour, minute, second)
}

/// Seconds since the Unix epoch of a UTC civil date and time, or `None` when a field is out of
/// range.
fn unix_from_civil(
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
) -> Option<i64> {
    let valid = (1970..=9999).contains(&year)
        && (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && (0..24).contains(&hour)
        && (0..60).contains(&minute)
        && (0..=60).contains(&second);
    if !valid {
        return None;
    }
    // Howard Hinnant's days_from_civil, for years from 1970 on (no negative eras).
    let shifted_year = if month <= 2 { year - 1 } else { year };
    let era = shifted_year / 400;
    let year_of_era = shifted_year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    Some(days * 86_400 + hour * 3_600 + minute * 60 + second)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `+HH:MM` or `-HH:MM` as seconds east of UTC.
fn parse_offset(text: &str) -> Option<i64> {
    let (sign, digits) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let [hours, minutes] = numbers::<2>(digits, ':')?;
    if hours > 23 || minutes > 59 {
        return None;
    }
    Some(sign * (hours * 3_600 + minutes * 60))
}

/// Exactly `N` unsigned decimal numbers separated by `separator`.
fn numbers<const N: usize>(text: &str, separator: char) -> Option<[i64; N]> {
    let mut values = [0; N];
    let mut fields = text.split(separator);
    for value in &mut values {
        let field = fields.next()?;
        if field.is_empty() || field.len() > 4 || !field.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *value = field.parse().ok()?;
    }
    fields.next().is_none().then_some(values)
}

#[cfg(test)]
mod tests {
    use crate::datetime::{parse_app_service_date, parse_cli_date};

    #[test]
    fn app_service_linux_and_windows_forms() {
        // 2019-06-20T02:57:58Z.
        assert_eq!(parse_app_service_date("06/20/2019 02:57:58 +00:00"), Some(1_560_999_478));
        assert_eq!(parse_app_service_date("1/16/2020 5:24:12 AM +00:00"), Some(1_579_152_252));
        assert_eq!(parse_app_service_date("1/16/2020 5:24:12 PM +00:00"), Some(1_579_195_452));
        assert_eq!(parse_app_service_date("1/16/2020 12:00:00 AM +00:00"), Some(1_579_132_800));
        // An offset east of UTC is subtracted.
        assert_eq!(parse_app_service_date("1/16/2020 6:24:12 AM +01:00"), Some(1_579_152_252));
        assert_eq!(parse_app_service_date("1/16/2020 05:24:12"), Some(1_579_152_252));
    }

    #[test]
    fn malformed_app_service_dates_are_refused() {
        for text in [
            "",
            "06/20/2019",
            "13/20/2019 02:57:58 +00:00",
            "02/30/2019 02:57:58 +00:00",
            "06/20/2019 24:00:00 +00:00",
            "06/20/2019 13:00:00 PM +00:00",
            "06/20/2019 02:57:58 00:00",
            "06-20-2019 02:57:58 +00:00",
            "06/20/2019 02:57:58 +00:00 extra",
        ] {
            assert_eq!(parse_app_service_date(text), None, "{text:?}");
        }
    }

    #[test]
    fn cli_dates_with_and_without_fraction() {
        assert_eq!(parse_cli_date("2024-01-01 13:50:47.114324"), Some(1_704_117_047));
        assert_eq!(parse_cli_date("2024-01-01 13:50:47"), Some(1_704_117_047));
        assert_eq!(parse_cli_date("2024-02-29 00:00:00.0"), Some(1_709_164_800));
        assert_eq!(parse_cli_date("2023-02-29 00:00:00.0"), None);
        assert_eq!(parse_cli_date("2024-01-01T13:50:47"), None);
        assert_eq!(parse_cli_date("2024-01-01 13:50:47.x"), None);
    }
}
