//! Activity log events in Azure's shape (`protocols/06-arm-rbac.md` §8): each write records a
//! `Started` event and a `Succeeded` or `Failed` one sharing a correlation id.

use domain::{Guid, ResourceId, UnixTime};
use serde_json::json;
use store::NewEventRecord;

/// Who did what, for an activity event.
pub struct Operation<'a> {
    pub tenant_id: &'a str,
    pub subscription_id: &'a str,
    pub resource_id: &'a ResourceId,
    /// The RBAC action, e.g. `Microsoft.Compute/virtualMachines/write`.
    pub action: &'a str,
    pub caller_object_id: &'a str,
    pub caller_app_id: &'a str,
    pub correlation_id: &'a str,
    pub method: &'a str,
    pub client_ip: &'a str,
}

/// One event: `status` is `Started`, `Succeeded` or `Failed`; `http_status` the answer's.
pub fn event(
    operation: &Operation<'_>,
    status: &str,
    http_status: Option<u16>,
    time: UnixTime,
) -> NewEventRecord {
    build(operation, status, http_status, None, time)
}

/// A `Failed` event for a refused or failed write, carrying ARM's error code and message in
/// `properties.statusMessage` as Azure records it (an authorization refusal has the sub-status
/// `Forbidden`).
pub fn failed_event(
    operation: &Operation<'_>,
    http_status: u16,
    code: &str,
    message: &str,
    time: UnixTime,
) -> NewEventRecord {
    build(operation, "Failed", Some(http_status), Some((code, message)), time)
}

fn build(
    operation: &Operation<'_>,
    status: &str,
    http_status: Option<u16>,
    failure: Option<(&str, &str)>,
    time: UnixTime,
) -> NewEventRecord {
    let event_id = Guid::new_random().to_string();
    let timestamp = format_time(time);
    let resource_id = operation.resource_id;
    let provider = operation.action.split('/').next().unwrap_or_default();
    let (event_name, localized) = if status == "Started" {
        ("BeginRequest", "Begin request")
    } else {
        ("EndRequest", "End request")
    };
    let sub_status = http_status.map(|code| {
        let name = match code {
            200 => "OK",
            201 => "Created",
            202 => "Accepted",
            204 => "NoContent",
            400 => "BadRequest",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "NotFound",
            405 => "MethodNotAllowed",
            409 => "Conflict",
            413 => "RequestEntityTooLarge",
            429 => "TooManyRequests",
            500 => "InternalServerError",
            503 => "ServiceUnavailable",
            _ => "Other",
        };
        json!({"value": name, "localizedValue": format!("{name} (HTTP Status Code: {code})")})
    });
    let body = json!({
        "authorization": {"action": operation.action, "scope": resource_id.as_str()},
        "caller": operation.caller_app_id,
        "channels": "Operation",
        "claims": {
            "appid": operation.caller_app_id,
            "oid": operation.caller_object_id,
            "http://schemas.microsoft.com/identity/claims/objectidentifier": operation.caller_object_id,
        },
        "correlationId": operation.correlation_id,
        "description": "",
        "eventDataId": event_id,
        "eventName": {"value": event_name, "localizedValue": localized},
        "category": {"value": "Administrative", "localizedValue": "Administrative"},
        "eventTimestamp": timestamp,
        "id": format!("{}/events/{event_id}/ticks/{}", resource_id.as_str(), time.millis() * 10_000 + 621_355_968_000_000_000),
        "level": if status == "Failed" { "Error" } else { "Informational" },
        "operationId": operation.correlation_id,
        "operationName": {"value": operation.action, "localizedValue": operation.action},
        "resourceGroupName": resource_id.resource_group(),
        "resourceProviderName": {"value": provider, "localizedValue": provider},
        "resourceType": {"value": resource_id.resource_type().unwrap_or("Microsoft.Resources/subscriptions/resourceGroups"), "localizedValue": resource_id.resource_type().unwrap_or("Microsoft.Resources/subscriptions/resourceGroups")},
        "resourceId": resource_id.as_str(),
        "status": {"value": status, "localizedValue": status},
        "subStatus": sub_status.unwrap_or_else(|| json!({"value": "", "localizedValue": ""})),
        "submissionTimestamp": timestamp,
        "subscriptionId": operation.subscription_id,
        "tenantId": operation.tenant_id,
        "properties": {
            "statusCode": http_status.map(|code| code.to_string()),
            "serviceRequestId": operation.correlation_id,
            "statusMessage": failure.map(|(code, message)| json!({"error": {"code": code, "message": message}}).to_string()),
        },
        "httpRequest": {"clientRequestId": operation.correlation_id, "clientIpAddress": operation.client_ip, "method": operation.method},
    });
    NewEventRecord {
        event_id,
        tenant_id: operation.tenant_id.to_owned(),
        subscription_id: Some(operation.subscription_id.to_owned()),
        resource_group_key: resource_id.resource_group().map(str::to_ascii_lowercase),
        resource_key: Some(resource_id.key().to_owned()),
        correlation_id: Some(operation.correlation_id.to_owned()),
        principal_id: Some(operation.caller_object_id.to_owned()),
        app_id: Some(operation.caller_app_id.to_owned()),
        status: status.to_owned(),
        timestamp: time.millis(),
        body: body.to_string(),
    }
}

/// `2024-01-01T00:00:05.1230000Z`, the activity log's timestamp format.
pub fn format_time(time: UnixTime) -> String {
    let secs = time.secs();
    let millis = time.millis().rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}0000Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Parses `2024-01-01T00:00:05Z` (fractions and offsets `Z` only) to a time.
pub fn parse_time(text: &str) -> Option<UnixTime> {
    let text = text.trim().trim_matches('\'');
    let (date, clock) = text.split_once('T')?;
    let mut date_parts = date.split('-').map(|part| part.parse::<i64>());
    let (year, month, day) =
        (date_parts.next()?.ok()?, date_parts.next()?.ok()?, date_parts.next()?.ok()?);
    let clock = clock.trim_end_matches('Z');
    let clock = clock.split(['+']).next()?;
    let (hms, fraction) = clock.split_once('.').unwrap_or((clock, "0"));
    let mut hms_parts = hms.split(':').map(|part| part.parse::<i64>());
    let (hour, minute, second) = (
        hms_parts.next()?.ok()?,
        hms_parts.next().unwrap_or(Ok(0)).ok()?,
        hms_parts.next().unwrap_or(Ok(0)).ok()?,
    );
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let millis: i64 = format!("{:0<3}", &fraction[..fraction.len().min(3)]).parse().ok()?;
    let days = days_from_civil(year, month, day);
    Some(UnixTime::from_millis(
        (days * 86_400 + hour * 3600 + minute * 60 + second) * 1000 + millis,
    ))
}

// Howard Hinnant's civil calendar algorithms.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        let time = UnixTime::from_millis(1_704_067_205_123);
        assert_eq!(format_time(time), "2024-01-01T00:00:05.1230000Z");
        assert_eq!(parse_time("2024-01-01T00:00:05.123Z"), Some(time));
        assert_eq!(parse_time("'2024-01-01T00:00:05Z'"), Some(UnixTime::from_secs(1_704_067_205)));
        assert_eq!(parse_time("2024-13-01T00:00:00Z"), None);
        assert_eq!(parse_time("yesterday"), None);
    }
}
