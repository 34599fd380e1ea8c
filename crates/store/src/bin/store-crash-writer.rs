//! Test helper for the crash test in `tests/it/crash.rs`: writes numbered rows to the store at
//! the URL given as the first argument and prints `ack N` after each write is acknowledged,
//! forever, until it is killed.

use std::io::Write as _;

use store::{Expect, ResourceRecord, Write};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let url = std::env::args().nth(1).expect("usage: store-crash-writer DATABASE_URL");
    let store = store::open(&url).await.expect("open store");
    let mut stdout = std::io::stdout().lock();
    for index in 0_u64.. {
        let key = format!("/subscriptions/s/resourcegroups/crash{index}");
        let record = ResourceRecord {
            key: key.clone(),
            id: key,
            subscription_id: "s".to_owned(),
            resource_group_key: Some(format!("crash{index}")),
            type_key: "microsoft.resources/resourcegroups".to_owned(),
            name: format!("crash{index}"),
            location: "local".to_owned(),
            tags: "{}".to_owned(),
            properties: "{}".to_owned(),
            identity: None,
            host_id: None,
            user_identity_keys: Vec::new(),
            version: 1,
            created_at: 0,
            updated_at: 0,
        };
        store
            .apply(vec![
                Write::PutSetting { name: format!("ack-{index}"), value: index.to_string() },
                Write::PutResource { record, expect: Expect::Absent },
            ])
            .await
            .expect("write");
        writeln!(stdout, "ack {index}").expect("report ack");
        stdout.flush().expect("flush ack");
    }
}
