//! Acknowledged writes survive `kill -9`.
//!
//! Method: a child process writes rows in a loop and reports each one after `apply` returned;
//! the test kills it with SIGKILL mid-stream, reopens the SQLite file and checks that every
//! reported row is present and whole (both writes of each acknowledged transaction).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[tokio::test]
async fn acknowledged_sqlite_writes_survive_kill_9() {
    let dir = super::tempdir();
    let url = format!("sqlite://{}", dir.join("crash.db").display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_store-crash-writer"))
        .arg(&url)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start writer");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut acknowledged = 0_u64;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read ack");
        let index: u64 = line.strip_prefix("ack ").expect("ack line").parse().expect("ack number");
        assert_eq!(index, acknowledged, "acks arrive in order");
        acknowledged += 1;
        if acknowledged == 150 {
            break;
        }
    }
    child.kill().expect("SIGKILL the writer");
    child.wait().expect("reap writer");

    let store = store::open(&url).await.expect("reopen after crash");
    for index in 0..acknowledged {
        let value = store.get_setting(&format!("ack-{index}")).await.unwrap();
        assert_eq!(value, Some(index.to_string()), "acknowledged write {index} lost");
        let key = format!("/subscriptions/s/resourcegroups/crash{index}");
        assert!(
            store.get_resource(&key).await.unwrap().is_some(),
            "half of transaction {index} lost"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
