//! `ambient monitor ...`: the sign-in log (token service) and the activity log (control plane,
//! as `az monitor activity-log list` reads it).

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::arm::{self, API_INSIGHTS, Arm, SubscriptionArgs};
use crate::output::{Columns, Printed, uniform_time};
use crate::{GlobalArgs, Output, profile};

#[derive(Debug, Subcommand)]
pub enum MonitorCommand {
    /// The sign-in log.
    #[command(subcommand, name = "sign-in-log")]
    SignInLog(SignInLogCommand),
    /// The activity log: control-plane writes and their outcome.
    #[command(subcommand, name = "activity-log")]
    ActivityLog(ActivityLogCommand),
}

#[derive(Debug, Subcommand)]
pub enum SignInLogCommand {
    /// List sign-ins (every token issued or refused), oldest first.
    ///
    /// Tokens the CLI itself asks for are in the log too; `--principal` narrows it.
    List {
        /// Only this principal (object id or app id).
        #[arg(long)]
        principal: Option<String>,
        /// Only sign-ins at or after this time (RFC 3339, e.g. 2024-01-01T00:00:00Z).
        #[arg(long)]
        since: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 1000)]
        top: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum ActivityLogCommand {
    /// List activity-log events of the subscription, newest first.
    List(ActivityLogListArgs),
}

#[derive(Debug, Args)]
pub struct ActivityLogListArgs {
    /// Only events of this resource group.
    #[arg(long, short = 'g', conflicts_with_all = ["correlation_id", "resource_id"])]
    resource_group: Option<String>,
    /// Only events of this resource.
    #[arg(long, conflicts_with = "correlation_id")]
    resource_id: Option<String>,
    /// Only events of this operation (the BeginRequest/EndRequest pair of one write).
    #[arg(long)]
    correlation_id: Option<String>,
    /// Only events by this caller (checked on the client).
    #[arg(long)]
    caller: Option<String>,
    /// Only events with this status: Started, Accepted, Succeeded, Failed (checked on the client).
    #[arg(long)]
    status: Option<String>,
    /// Start of the time range (RFC 3339 or YYYY-MM-DD) [default: end time minus --offset].
    #[arg(long)]
    start_time: Option<String>,
    /// End of the time range (RFC 3339 or YYYY-MM-DD) [default: now].
    #[arg(long)]
    end_time: Option<String>,
    /// Length of the time range when --start-time is not given, as ##d##h##m.
    #[arg(long, default_value = "6h")]
    offset: String,
    /// At most this many events.
    #[arg(long, default_value_t = 50)]
    max_events: usize,
    #[command(flatten)]
    subscription: SubscriptionArgs,
}

pub(crate) const ACTIVITY_COLUMNS: Columns = &[
    ("Time", "eventTimestamp"),
    ("Operation", "operationName.value"),
    ("Status", "status.value"),
    ("ResourceGroup", "resourceGroupName"),
    ("Caller", "caller"),
    ("CorrelationId", "correlationId"),
];

/// The sign-in log's table, over the rows of `sign_in_row`.
pub(crate) const SIGN_IN_COLUMNS: Columns = &[
    ("Time", "time"),
    ("Result", "result"),
    ("ErrorCode", "errorCode"),
    ("Principal", "principal"),
    ("AppId", "appId"),
    ("Credential", "credential"),
    ("Resource", "resource"),
    ("Ip", "ip"),
];

pub async fn run(command: MonitorCommand, global: &GlobalArgs) -> Result<Printed> {
    match command {
        MonitorCommand::SignInLog(SignInLogCommand::List { principal, since, top }) => {
            let client = profile::client(&global.home, &profile::load(&global.home)?)?;
            let mut clauses = Vec::new();
            if let Some(principal) = principal {
                clauses.push(format!("appId eq '{}'", principal.replace('\'', "''")));
            }
            if let Some(since) = since {
                clauses.push(format!("createdDateTime ge {since}"));
            }
            let mut path = format!("/v1.0/auditLogs/signIns?$top={top}");
            if !clauses.is_empty() {
                path.push_str(&format!("&$filter={}", client::encode(&clauses.join(" and "))));
            }
            let events = client::values(client.get(&path).await?);
            Ok(if global.output == Output::Json {
                Printed::plain(Value::Array(events))
            } else {
                Printed::with_columns(
                    Value::Array(events.iter().map(sign_in_row).collect()),
                    SIGN_IN_COLUMNS,
                )
            })
        }
        MonitorCommand::ActivityLog(ActivityLogCommand::List(args)) => {
            let arm = Arm::connect(global, &args.subscription)?;
            let now =
                OffsetDateTime::now_utc().replace_nanosecond(0).context("truncate the time")?;
            let filter = activity_filter(&args, now)?;
            let collection = format!(
                "/subscriptions/{}/providers/Microsoft.Insights/eventtypes/management/values",
                arm.subscription
            );
            let path = arm::path_with_filter(&collection, API_INSIGHTS, Some(&filter));
            // The server lists oldest first and az newest first, and client-side filters may
            // drop events: read the whole time range, then keep the newest.
            let mut events: Vec<Value> = arm
                .list(path, usize::MAX)
                .await?
                .into_iter()
                .filter(|event| {
                    let caller = args.caller.as_deref().is_none_or(|caller| {
                        event["caller"]
                            .as_str()
                            .is_some_and(|found| found.eq_ignore_ascii_case(caller))
                    });
                    let status = args.status.as_deref().is_none_or(|status| {
                        event["status"]["value"]
                            .as_str()
                            .is_some_and(|found| found.eq_ignore_ascii_case(status))
                    });
                    caller && status
                })
                .collect();
            newest_first(&mut events);
            events.truncate(args.max_events);
            Ok(Printed::with_columns(Value::Array(events), ACTIVITY_COLUMNS))
        }
    }
}

/// Sorts activity-log events newest first, as az lists them; of the two halves of a write
/// stamped with the same time, the outcome comes before the start.
fn newest_first(events: &mut [Value]) {
    let key = |event: &Value| {
        let time = event["eventTimestamp"].as_str().and_then(uniform_time);
        let stage = match event["status"]["value"].as_str() {
            Some("Started") => 0,
            Some("Accepted") => 1,
            _ => 2,
        };
        (time, stage)
    };
    events.sort_by_key(|event| std::cmp::Reverse(key(event)));
}

/// The columns of a sign-in worth a table row.
fn sign_in_row(event: &Value) -> Value {
    serde_json::json!({
        "time": event["createdDateTime"],
        "appId": event["appId"],
        "principal": event["servicePrincipalName"],
        "credential": event["credentialType"],
        "resource": event["resourceId"],
        "result": if event["status"]["errorCode"] == 0 { "success" } else { "failure" },
        "errorCode": event["status"]["errorCode"],
        "ip": event["ipAddress"],
    })
}

/// The activity log's `$filter`: a time range and at most one of resource group, resource or
/// correlation id, as az builds it. `le` is sent only for an explicit --end-time so that events
/// stamped by a server clock slightly ahead of ours are not lost.
fn activity_filter(args: &ActivityLogListArgs, now: OffsetDateTime) -> Result<String> {
    let end = args.end_time.as_deref().map(parse_time).transpose()?;
    let start = match args.start_time.as_deref() {
        Some(start) => parse_time(start)?,
        None => end.unwrap_or(now) - parse_offset(&args.offset)?,
    };
    let mut clauses = vec![format!("eventTimestamp ge '{}'", start.format(&Rfc3339)?)];
    if let Some(end) = end {
        if end < start {
            bail!("--end-time is before --start-time");
        }
        clauses.push(format!("eventTimestamp le '{}'", end.format(&Rfc3339)?));
    }
    let quote = |text: &str| text.replace('\'', "''");
    if let Some(id) = &args.correlation_id {
        clauses.push(format!("correlationId eq '{}'", quote(id)));
    } else if let Some(group) = &args.resource_group {
        clauses.push(format!("resourceGroupName eq '{}'", quote(group)));
    } else if let Some(id) = &args.resource_id {
        clauses.push(format!("resourceUri eq '{}'", quote(id)));
    }
    Ok(clauses.join(" and "))
}

/// az's `--offset`: `6h`, `1d`, `2d12h30m` (units d, h, m, s).
fn parse_offset(text: &str) -> Result<time::Duration> {
    let mut total = time::Duration::ZERO;
    let mut digits = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let amount: i64 =
            digits.parse().with_context(|| format!("--offset '{text}' is not like 6h or 1d12h"))?;
        total += match c.to_ascii_lowercase() {
            'd' => time::Duration::days(amount),
            'h' => time::Duration::hours(amount),
            'm' => time::Duration::minutes(amount),
            's' => time::Duration::seconds(amount),
            _ => bail!("--offset '{text}' is not like 6h or 1d12h"),
        };
        digits.clear();
    }
    if !digits.is_empty() || total == time::Duration::ZERO {
        bail!("--offset '{text}' is not like 6h or 1d12h");
    }
    Ok(total)
}

/// RFC 3339, or a date or date-time without offset (taken as UTC).
fn parse_time(text: &str) -> Result<OffsetDateTime> {
    let candidates = [text.to_owned(), format!("{text}Z"), format!("{text}T00:00:00Z")];
    candidates
        .iter()
        .find_map(|candidate| OffsetDateTime::parse(candidate, &Rfc3339).ok())
        .with_context(|| format!("'{text}' is not a time like 2024-01-01T00:00:00Z"))
}

#[cfg(test)]
mod tests {
    use expect_test::expect;
    use serde_json::json;
    use time::macros::datetime;

    use super::*;

    fn args() -> ActivityLogListArgs {
        ActivityLogListArgs {
            resource_group: None,
            resource_id: None,
            correlation_id: None,
            caller: None,
            status: None,
            start_time: None,
            end_time: None,
            offset: "6h".to_owned(),
            max_events: 50,
            subscription: SubscriptionArgs { subscription: None },
        }
    }

    #[test]
    fn filters_like_az() {
        let now = datetime!(2024-01-02 12:00:00 UTC);
        expect!["eventTimestamp ge '2024-01-02T06:00:00Z'"]
            .assert_eq(&activity_filter(&args(), now).unwrap());
        let by_group = ActivityLogListArgs {
            resource_group: Some("rg1".to_owned()),
            offset: "1d2h".to_owned(),
            ..args()
        };
        expect!["eventTimestamp ge '2024-01-01T10:00:00Z' and resourceGroupName eq 'rg1'"]
            .assert_eq(&activity_filter(&by_group, now).unwrap());
        let ranged = ActivityLogListArgs {
            start_time: Some("2024-01-01".to_owned()),
            end_time: Some("2024-01-01T08:00:00".to_owned()),
            correlation_id: Some("c1".to_owned()),
            ..args()
        };
        expect!["eventTimestamp ge '2024-01-01T00:00:00Z' and eventTimestamp le '2024-01-01T08:00:00Z' and correlationId eq 'c1'"]
            .assert_eq(&activity_filter(&ranged, now).unwrap());
        let bad = ActivityLogListArgs { offset: "6x".to_owned(), ..args() };
        assert_eq!(
            activity_filter(&bad, now).unwrap_err().to_string(),
            "--offset '6x' is not like 6h or 1d12h"
        );
    }

    #[test]
    fn activity_log_lists_newest_first() {
        // Goal: the table reads like az's, newest first, with later halves of one write first.
        let mut events = vec![
            json!({"eventTimestamp": "2024-01-01T00:00:01.0000000Z", "operationName": {"value": "a"}, "status": {"value": "Started"}}),
            json!({"eventTimestamp": "2024-01-01T00:00:01.0000000Z", "operationName": {"value": "a"}, "status": {"value": "Succeeded"}}),
            json!({"eventTimestamp": "2024-01-01T00:00:03.5000000Z", "operationName": {"value": "b"}, "status": {"value": "Succeeded"}}),
        ];
        newest_first(&mut events);
        expect![[r#"
            Time                      Operation  Status
            ------------------------  ---------  ---------
            2024-01-01T00:00:03.500Z  b          Succeeded
            2024-01-01T00:00:01.000Z  a          Succeeded
            2024-01-01T00:00:01.000Z  a          Started"#]]
        .assert_eq(&crate::output::table_with_columns(
            &Value::Array(events),
            &ACTIVITY_COLUMNS[..3],
        ));
    }

    #[test]
    fn sign_in_table_is_bounded_and_uniform() {
        // Goal: a managed identity's long principal name and times of varying precision give
        // a table of bounded width with one time format.
        let principal = format!(
            "/subscriptions/{}/resourceGroups/stock/providers/Microsoft.Compute/virtualMachines/stock-vm",
            "0".repeat(36)
        );
        let events = [
            json!({"createdDateTime": "2024-01-01T00:00:05.12Z", "appId": "a1", "servicePrincipalName": principal, "credentialType": "managedIdentity", "resourceId": "https://vault.azure.net", "status": {"errorCode": 0}, "ipAddress": "127.0.0.1"}),
            json!({"createdDateTime": "2024-01-01T00:00:06Z", "appId": "a2", "servicePrincipalName": "ambient-admin", "credentialType": "clientSecret", "resourceId": "https://management.azure.com/", "status": {"errorCode": 7000215}, "ipAddress": null}),
        ];
        let rows = Value::Array(events.iter().map(sign_in_row).collect());
        expect![[r#"
            Time                      Result   ErrorCode  Principal                                                     AppId  Credential       Resource                       Ip
            ------------------------  -------  ---------  ------------------------------------------------------------  -----  ---------------  -----------------------------  ---------
            2024-01-01T00:00:05.120Z  success  0          …/stock/providers/Microsoft.Compute/virtualMachines/stock-vm  a1     managedIdentity  https://vault.azure.net        127.0.0.1
            2024-01-01T00:00:06.000Z  failure  7000215    ambient-admin                                                 a2     clientSecret     https://management.azure.com/"#]]
        .assert_eq(&crate::output::table_with_columns(&rows, SIGN_IN_COLUMNS));
    }
}
