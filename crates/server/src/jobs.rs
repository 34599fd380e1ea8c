//! Background work: every node reloads the signing keys every [`KEY_RELOAD_TICK`] (so a key
//! rotated on one node is published and trusted by all within seconds) and reads the store's
//! change counter every [`CHANGES_TICK`] (so another node's write empties this node's caches and
//! wakes its agents' watches within about a second), and exactly one node at
//! a time, the holder of the [`JOBS_LEASE`] database lease, runs the deployment's jobs: the
//! scheduled key rotation, the purge of deleted secrets past their retention, and the pruning of
//! the sign-in and activity logs ([`prune_logs`]: events past `--log-retention-days`, then the
//! oldest beyond `--log-events-max`).
//!
//! The lease lasts [`JOBS_LEASE_SECS`] and its holder renews it every [`JOBS_TICK`]; when the
//! holder dies, another node takes the jobs over once the lease lapses. A job that fails is
//! logged and tried again on its next turn; a database that does not answer makes a node give
//! up the lease until it answers again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::state::AppState;

/// The lease whose holder runs the jobs.
pub const JOBS_LEASE: &str = "background-jobs";
/// How long a taken lease lasts without renewal: the longest time the jobs go unrun after
/// their node dies.
pub const JOBS_LEASE_SECS: i64 = 10;
/// How often every node tries to take or renew the lease.
const JOBS_TICK: Duration = Duration::from_secs(3);
/// How often every node reads the store's change counter.
const CHANGES_TICK: Duration = Duration::from_secs(1);
/// How often every node re-reads the signing keys.
const KEY_RELOAD_TICK: Duration = Duration::from_secs(2);
/// How often the leader looks at the key-rotation schedule (it rotates only when due).
const KEY_ROTATION_EVERY: Duration = Duration::from_secs(60);
/// How often the leader purges deleted secrets past their retention.
const VAULT_PURGE_EVERY: Duration = Duration::from_secs(60);
/// How often the leader prunes the sign-in and activity logs.
const LOG_PRUNE_EVERY: Duration = Duration::from_secs(60);

const _: () = assert!(JOBS_TICK.as_secs() as i64 * 2 < JOBS_LEASE_SECS);

/// Whether this node holds the jobs lease.
pub struct Leadership {
    /// This node's name in the lease table: random per process.
    holder: String,
    leader: AtomicBool,
}

impl Default for Leadership {
    fn default() -> Self {
        Leadership {
            holder: domain::Guid::new_random().to_string(),
            leader: AtomicBool::new(false),
        }
    }
}

impl Leadership {
    /// Whether this node ran the jobs at its last tick.
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::SeqCst)
    }

    /// Takes or renews the lease; returns whether this node is the leader now. A failed
    /// database call counts as not leading.
    pub async fn tick(&self, store: &dyn store::Store, now: domain::UnixTime) -> bool {
        let leads = match store
            .try_acquire_lease(
                JOBS_LEASE,
                &self.holder,
                now.millis(),
                now.plus_secs(JOBS_LEASE_SECS).millis(),
            )
            .await
        {
            Ok(leads) => leads,
            Err(error) => {
                if self.is_leader() {
                    tracing::warn!(%error, "cannot renew the background-jobs lease");
                }
                false
            }
        };
        let was = self.leader.swap(leads, Ordering::SeqCst);
        match (was, leads) {
            (false, true) => {
                tracing::info!(node = %self.holder, "this node now runs the background jobs")
            }
            (true, false) => {
                tracing::warn!(node = %self.holder, "this node no longer runs the background jobs")
            }
            _ => {}
        }
        leads
    }
}

/// Starts the key reload on this node and the lease loop that runs the jobs while it leads.
pub fn spawn(state: &AppState) -> Vec<JoinHandle<()>> {
    vec![
        tokio::spawn(reload_keys(state.issuer.clone())),
        tokio::spawn(follow_changes(state.clone())),
        tokio::spawn(lead(state.clone())),
    ]
}

/// Reads the change counter every [`CHANGES_TICK`]; when it moved, some node wrote, and this
/// node drops its cached rows and wakes its watches (one read per node, whatever the number of
/// connected agents). This node's own writes have already done so; the second wake is harmless.
async fn follow_changes(state: AppState) {
    let mut interval = tokio::time::interval(CHANGES_TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: Option<Option<String>> = None;
    loop {
        interval.tick().await;
        let Ok(current) = state.store.get_setting(store::CHANGE_COUNTER_SETTING).await else {
            continue;
        };
        if last.as_ref().is_some_and(|previous| *previous != current) {
            state.changed();
        }
        last = Some(current);
    }
}

async fn reload_keys(issuer: Arc<issuer::Issuer>) {
    let mut interval = tokio::time::interval(KEY_RELOAD_TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        interval.tick().await;
        match issuer.reload().await {
            Ok(()) if failing => {
                failing = false;
                tracing::info!("signing keys reload again");
            }
            Ok(()) => {}
            Err(error) if !failing => {
                failing = true;
                tracing::warn!(%error, "signing-key reload failed; tokens are still issued and checked with the keys held");
            }
            Err(_) => {}
        }
    }
}

async fn lead(state: AppState) {
    let mut interval = tokio::time::interval(JOBS_TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut rotation_due = Instant::now();
    let mut purge_due = Instant::now();
    let mut prune_due = Instant::now();
    loop {
        interval.tick().await;
        if !state.leadership.tick(state.store.as_ref(), state.clock.now()).await {
            continue;
        }
        if Instant::now() >= rotation_due {
            rotation_due = Instant::now() + KEY_ROTATION_EVERY;
            if let Err(error) = state.issuer.rotate_if_due().await {
                tracing::warn!(%error, "signing-key rotation check failed");
            }
        }
        if Instant::now() >= purge_due {
            purge_due = Instant::now() + VAULT_PURGE_EVERY;
            match vault::purge_due(state.store.as_ref(), state.clock.now()).await {
                Ok(0) => {}
                Ok(count) => tracing::info!(count, "purged deleted secrets past their retention"),
                Err(error) => tracing::warn!(%error, "purging deleted secrets failed"),
            }
        }
        if Instant::now() >= prune_due {
            prune_due = Instant::now() + LOG_PRUNE_EVERY;
            if let Err(error) =
                prune_logs(state.store.as_ref(), state.clock.now(), state.logs).await
            {
                tracing::warn!(%error, "pruning the logs failed");
            }
        }
    }
}

/// Deletes the sign-in and activity events past their retention at `now`, then the oldest
/// beyond the cap of each log. Returns how many were deleted (sign-in, activity).
pub(crate) async fn prune_logs(
    store: &dyn store::Store,
    now: domain::UnixTime,
    bounds: crate::config::LogBounds,
) -> Result<(u64, u64), store::Error> {
    let before = now.minus_secs(bounds.retention_days * 86_400).millis();
    let sign_ins = store.prune_events(store::EventLog::SignIn, before, bounds.events_max).await?;
    let activity = store.prune_events(store::EventLog::Activity, before, bounds.events_max).await?;
    if sign_ins + activity > 0 {
        tracing::info!(sign_ins, activity, "pruned log events past their retention or cap");
    }
    Ok((sign_ins, activity))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use domain::{Clock as _, FakeClock, UnixTime};

    use super::*;

    #[tokio::test]
    async fn issue_17_retention_removes_events_past_their_age() {
        // Goal: with a fake clock, events recorded now survive 29 days and are gone after 31
        // (the default retention is 30 days); the size cap keeps the newest. Method: the real
        // sign-in log and activity writes on a temporary SQLite store, then the job's function.
        let dir = std::env::temp_dir()
            .join(format!("ambient-jobs-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let store: Arc<dyn store::Store> = Arc::from(
            store::open(&format!("sqlite://{}", dir.join("t.db").display())).await.unwrap(),
        );
        let clock = FakeClock::new(UnixTime::from_secs(1_704_067_200));
        let log = issuer::SignInLog::start(store.clone());
        let record = |n: usize| {
            let mut event =
                issuer::SignInEvent::new(clock.now(), "t", "ServicePrincipal", "clientSecret");
            event.resource = Some(format!("https://r{n}"));
            event.principal_id = Some(domain::Guid::new_random().to_string());
            event
        };
        for n in 0..3 {
            log.record(record(n)).await;
        }
        let activity = |id: &str, time: UnixTime| {
            store::Write::AppendActivityEvent(store::NewEventRecord {
                event_id: id.to_owned(),
                tenant_id: "t".to_owned(),
                subscription_id: Some("s".to_owned()),
                resource_group_key: None,
                resource_key: None,
                correlation_id: None,
                principal_id: None,
                app_id: None,
                status: "Failed".to_owned(),
                timestamp: time.millis(),
                body: "{}".to_owned(),
            })
        };
        store.apply(vec![activity("old", clock.now())]).await.unwrap();
        log.flush().await;
        let bounds = crate::config::LogBounds::default();
        let count = |store: Arc<dyn store::Store>| async move {
            let filter = |partition: &str| store::EventFilter {
                partition: partition.to_owned(),
                limit: 100,
                ..store::EventFilter::default()
            };
            (
                store.list_sign_in_events(&filter("t")).await.unwrap().len(),
                store.list_activity_events(&filter("s")).await.unwrap().len(),
            )
        };

        clock.advance_secs(29 * 86_400);
        assert_eq!(prune_logs(store.as_ref(), clock.now(), bounds).await.unwrap(), (0, 0));
        assert_eq!(count(store.clone()).await, (3, 1));
        log.record(record(3)).await;
        store.apply(vec![activity("new", clock.now())]).await.unwrap();
        log.flush().await;

        clock.advance_secs(2 * 86_400);
        assert_eq!(prune_logs(store.as_ref(), clock.now(), bounds).await.unwrap(), (3, 1));
        assert_eq!(count(store.clone()).await, (1, 1));

        // The cap: with at most 1000 events kept, 1200 new ones leave the newest 1000.
        let writes = (0..1200).map(|n| activity(&format!("e{n}"), clock.now())).collect();
        store.apply(writes).await.unwrap();
        let capped = crate::config::LogBounds { events_max: 1000, ..bounds };
        assert_eq!(prune_logs(store.as_ref(), clock.now(), capped).await.unwrap(), (0, 201));
        std::fs::remove_dir_all(&dir).ok();
    }
}
