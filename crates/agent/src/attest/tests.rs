//! Tests of workload attestation: the parsers over sample `/proc` text, and the matching of
//! selectors against a socket's owner and the processes holding it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use api_types::hosting::WorkloadSelectors;
use expect_test::{Expect, expect};

use super::*;

/// `/proc/net/tcp` with a listener on 127.0.0.1:8080 (`1F90`), the agent's accepted socket and
/// the client's socket from 127.0.0.1:45678 (`B26E`), owned by uid 1001.
const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1000 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0100007F:B26E 01 00000000:00000000 00:00000000 00000000     0        0 2000 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:B26E 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1001        0 3000 1 0000000000000000 20 4 30 10 -1
";

/// `/proc/net/tcp6` with a dual-stack client's connection to 127.0.0.1:8080, mapped, and one
/// over ::1 from port 40000 (`9C40`).
const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0000000000000000FFFF00000100007F:B26F 0000000000000000FFFF00000100007F:1F90 01 00000000:00000000 00:00000000 00000000  1002        0 4000 1 0000000000000000 20 4 30 10 -1
   1: 00000000000000000000000001000000:9C40 00000000000000000000000001000000:1F90 01 00000000:00000000 00:00000000 00000000  1003        0 5000 1 0000000000000000 20 4 30 10 -1
";

#[track_caller]
fn check_socket(table: &str, peer: &str, local: Option<&str>, expected: Expect) {
    let peer: SocketAddr = peer.parse().unwrap();
    let local = local.map(|local| local.parse().unwrap());
    expected.assert_debug_eq(&parse_tcp_table(table, peer, local));
}

#[test]
fn the_client_socket_of_a_connection_is_found_by_its_four_tuple() {
    check_socket(
        TCP,
        "127.0.0.1:45678",
        Some("127.0.0.1:8080"),
        expect![[r#"
            Some(
                SocketOwner {
                    uid: 1001,
                    inode: 3000,
                },
            )
        "#]],
    );
    // Only the client's side has the peer as its local address (the agent's accepted socket
    // has the listener's), so the peer alone finds it.
    check_socket(
        TCP,
        "127.0.0.1:45678",
        None,
        expect![[r#"
            Some(
                SocketOwner {
                    uid: 1001,
                    inode: 3000,
                },
            )
        "#]],
    );
    // Another listener with the same peer port is another connection.
    check_socket(TCP, "127.0.0.1:45678", Some("127.0.0.1:9090"), expect!["None\n"]);
    // A listener bound to every address compares the port alone.
    check_socket(
        TCP,
        "127.0.0.1:45678",
        Some("0.0.0.0:8080"),
        expect![[r#"
            Some(
                SocketOwner {
                    uid: 1001,
                    inode: 3000,
                },
            )
        "#]],
    );
}

#[test]
fn ipv6_and_mapped_ipv4_entries_are_found() {
    check_socket(
        TCP6,
        "127.0.0.1:45679",
        Some("127.0.0.1:8080"),
        expect![[r#"
            Some(
                SocketOwner {
                    uid: 1002,
                    inode: 4000,
                },
            )
        "#]],
    );
    check_socket(
        TCP6,
        "[::1]:40000",
        Some("[::1]:8080"),
        expect![[r#"
            Some(
                SocketOwner {
                    uid: 1003,
                    inode: 5000,
                },
            )
        "#]],
    );
    check_socket("header only\n", "127.0.0.1:1", None, expect!["None\n"]);
    check_socket("h\n 0: garbage\n 1: 0100007F:ZZZZ x\n", "127.0.0.1:1", None, expect!["None\n"]);
}

#[test]
fn sock_diag_requests_name_the_client_socket_exactly() {
    let hex = |bytes: &[u8]| bytes.iter().map(|byte| format!("{byte:02x}")).collect::<String>();
    let peer: SocketAddr = "127.0.0.1:45678".parse().unwrap();
    let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
    let request = diag_request(peer, local).unwrap();
    assert_eq!(request.len(), 72);
    // After the 16-byte header: AF_INET, TCP, every state, then ports and addresses in network
    // order (source first), no interface and no cookie.
    expect!["02060000ffffffffb26e1f907f0000010000000000000000000000007f00000100000000000000000000000000000000ffffffffffffffff"]
        .assert_eq(&hex(&request[16..]));
    assert_eq!(&request[0..4], &72u32.to_ne_bytes());
    assert_eq!(&request[4..6], &20u16.to_ne_bytes());
    assert_eq!(&request[6..8], &1u16.to_ne_bytes());
    let mapped: SocketAddr = "[::ffff:127.0.0.1]:45678".parse().unwrap();
    assert_eq!(diag_request(mapped, local), Some(request));
    let v6 = diag_request("[::1]:40000".parse().unwrap(), "[::1]:8080".parse().unwrap()).unwrap();
    assert_eq!(v6[16], 10);
    assert_eq!(diag_request(peer, "[::1]:8080".parse().unwrap()), None);
}

#[test]
fn sock_diag_answers_give_the_owner_or_nothing() {
    let mut message = vec![0u8; 88];
    message[0..4].copy_from_slice(&88u32.to_ne_bytes());
    message[4..6].copy_from_slice(&20u16.to_ne_bytes());
    message[80..84].copy_from_slice(&1001u32.to_ne_bytes());
    message[84..88].copy_from_slice(&3000u32.to_ne_bytes());
    expect![[r#"
        Ok(
            Some(
                SocketOwner {
                    uid: 1001,
                    inode: 3000,
                },
            ),
        )
    "#]]
    .assert_debug_eq(&parse_diag_answer(&message));
    let mut error = vec![0u8; 36];
    error[4..6].copy_from_slice(&2u16.to_ne_bytes());
    error[16..20].copy_from_slice(&(-2i32).to_ne_bytes());
    expect![[r#"
        Ok(
            None,
        )
    "#]]
    .assert_debug_eq(&parse_diag_answer(&error));
    error[16..20].copy_from_slice(&(-13i32).to_ne_bytes());
    assert_eq!(parse_diag_answer(&error).unwrap_err().raw_os_error(), Some(13));
    assert!(parse_diag_answer(&message[..40]).is_err());
}

#[test]
fn status_gives_the_effective_ids_and_groups() {
    let status = "Name:\tpython3\nUmask:\t0022\nState:\tS (sleeping)\nPid:\t4242\nUid:\t1000\t1001\t1001\t1001\nGid:\t100\t101\t101\t101\nFDSize:\t64\nGroups:\t4 27 1500 \n";
    expect![[r#"
        Some(
            Credentials {
                uid: 1001,
                gid: 101,
                groups: [
                    4,
                    27,
                    1500,
                ],
            },
        )
    "#]]
    .assert_debug_eq(&parse_status(status));
    expect!["None\n"].assert_debug_eq(&parse_status("Name:\tx\n"));
}

#[test]
fn cgroups_units_and_containers_are_read_from_cgroup_paths() {
    let v2 = "0::/system.slice/docker-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope\n";
    let v1 = "12:pids:/docker/fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210\n11:memory:/docker/fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210\n1:name=systemd:/user.slice/user-1000.slice/user@1000.service/app.slice/web.service\n";
    let describe = |text: &str| -> Vec<String> {
        parse_cgroups(text)
            .iter()
            .map(|path| {
                format!(
                    "{path} unit={:?} container={:?}",
                    systemd_unit_of(path),
                    container_id_of(path)
                )
            })
            .collect()
    };
    expect![[r#"
        [
            "/system.slice/docker-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope unit=Some(\"docker-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope\") container=Some(\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\")",
        ]
    "#]]
    .assert_debug_eq(&describe(v2));
    expect![[r#"
        [
            "/docker/fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210 unit=None container=Some(\"fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210\")",
            "/user.slice/user-1000.slice/user@1000.service/app.slice/web.service unit=Some(\"web.service\") container=None",
        ]
    "#]]
    .assert_debug_eq(&describe(v1));
    assert!(cgroup_within("/system.slice/web.service", "/system.slice"));
    assert!(cgroup_within("/system.slice/web.service", "/system.slice/web.service"));
    assert!(cgroup_within("/system.slice/web.service", "/"));
    assert!(!cgroup_within("/system.slice/web.service2", "/system.slice/web.service"));
}

#[test]
fn account_ids_are_looked_up_by_name() {
    let passwd = "root:x:0:0:root:/root:/bin/bash\nalice:x:1001:1001::/home/alice:/bin/sh\n";
    assert_eq!(parse_account_id(passwd, "alice"), Some(1001));
    assert_eq!(parse_account_id(passwd, "root"), Some(0));
    assert_eq!(parse_account_id(passwd, "alic"), None);
    assert_eq!(parse_account_id("broken", "broken"), None);
}

struct FakeAccounts;

impl Accounts for FakeAccounts {
    fn user_id(&self, name: &str) -> Option<u32> {
        HashMap::from([("alice", 1001), ("bob", 1002)]).get(name).copied()
    }

    fn group_id(&self, name: &str) -> Option<u32> {
        HashMap::from([("web", 500), ("docker", 999)]).get(name).copied()
    }
}

/// A selector JSON object, checked against a socket owned by uid 1001 and held by one process:
/// pid 42, uid 1001, gid 1001 with supplementary group 500, running /usr/bin/python3.11 in
/// the web.service unit of a Docker container.
#[track_caller]
fn check(selectors: &str, expected: Expect) {
    let selectors: WorkloadSelectors = serde_json::from_str(selectors).unwrap();
    let process = Process {
        pid: 42,
        credentials: Credentials { uid: 1001, gid: 1001, groups: vec![500] },
        executable: Some(PathBuf::from("/usr/bin/python3.11")),
        cgroups: vec![
            "/system.slice/web.service".to_owned(),
            "/docker/fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210".to_owned(),
        ],
    };
    let owner = SocketOwner { uid: 1001, inode: 7 };
    let processes = if needs_processes(&selectors) { vec![process] } else { Vec::new() };
    let digest = |path: &Path| (path == Path::new("/proc/42/exe")).then(|| "ab".repeat(32));
    let outcome = matches(&selectors, owner, &processes, &FakeAccounts, &digest);
    expected.assert_eq(&match outcome {
        Ok(()) => "matches".to_owned(),
        Err(reason) => format!("refused: {reason}"),
    });
}

#[test]
fn the_user_is_compared_by_name_or_number() {
    check(r#"{"user": "alice"}"#, expect!["matches"]);
    check(r#"{"user": "1001"}"#, expect!["matches"]);
    check(r#"{"user": "bob"}"#, expect!["refused: the caller runs as uid 1001, not as user bob"]);
    check(r#"{"user": "0"}"#, expect!["refused: the caller runs as uid 1001, not as user 0"]);
    check(r#"{"user": "carol"}"#, expect!["refused: user carol does not exist on this host"]);
}

#[test]
fn groups_count_effective_and_supplementary() {
    check(r#"{"group": "web"}"#, expect!["matches"]);
    check(r#"{"group": "1001"}"#, expect!["matches"]);
    check(r#"{"group": "docker"}"#, expect!["refused: process 42 is not in group docker"]);
    check(r#"{"group": "nogroup"}"#, expect!["refused: group nogroup does not exist on this host"]);
}

#[test]
fn executables_units_cgroups_and_containers_are_compared() {
    check(r#"{"user": "alice", "executable": "/usr/bin/python3.11"}"#, expect!["matches"]);
    check(
        r#"{"executable": "/usr/bin/python3"}"#,
        expect!["refused: process 42 runs /usr/bin/python3.11, not /usr/bin/python3"],
    );
    check(&format!(r#"{{"executableSha256": "{}"}}"#, "ab".repeat(32)), expect!["matches"]);
    check(
        &format!(r#"{{"executableSha256": "{}"}}"#, "cd".repeat(32)),
        expect!["refused: the executable of process 42 has another SHA-256"],
    );
    check(r#"{"systemdUnit": "web.service"}"#, expect!["matches"]);
    check(
        r#"{"systemdUnit": "db.service"}"#,
        expect!["refused: process 42 runs in web.service, not in db.service"],
    );
    check(r#"{"cgroup": "/system.slice"}"#, expect!["matches"]);
    check(
        r#"{"cgroup": "/user.slice"}"#,
        expect![
            "refused: process 42 is in cgroup /system.slice/web.service, not under /user.slice"
        ],
    );
    check(r#"{"containerId": "fedcba987654"}"#, expect!["matches"]);
    check(
        r#"{"containerId": "0123456789ab"}"#,
        expect!["refused: process 42 is not in container 0123456789ab"],
    );
}

#[test]
fn every_selector_must_match() {
    check(
        r#"{"user": "alice", "group": "web", "systemdUnit": "db.service"}"#,
        expect!["refused: process 42 runs in web.service, not in db.service"],
    );
    check(
        r#"{"user": "bob", "group": "web"}"#,
        expect!["refused: the caller runs as uid 1001, not as user bob"],
    );
}

#[test]
fn selectors_beyond_the_user_refuse_when_no_process_is_found() {
    let selectors = WorkloadSelectors { group: Some("web".to_owned()), ..Default::default() };
    let owner = SocketOwner { uid: 1001, inode: 7 };
    let outcome = matches(&selectors, owner, &[], &FakeAccounts, &|_: &Path| None);
    expect![[r#"
        Err(
            "no process holding the connection was found",
        )
    "#]]
    .assert_debug_eq(&outcome);
}

/// The real thing on this host: a loopback connection made by this test process is attested
/// as this process (its uid, its executable), and refused for another user.
#[tokio::test]
async fn a_loopback_connection_of_this_process_is_attested_as_this_process() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = listener.local_addr().unwrap();
    let client = tokio::net::TcpStream::connect(local).await.unwrap();
    let (_accepted, peer) = listener.accept().await.unwrap();
    assert_eq!(peer, client.local_addr().unwrap());
    let uid = parse_status(&std::fs::read_to_string("/proc/self/status").unwrap()).unwrap().uid;
    let executable = std::fs::read_link("/proc/self/exe").unwrap();
    // sock_diag and /proc/net/tcp find the same socket.
    let owner = sock_diag(peer, local).unwrap().expect("sock_diag finds the connection");
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    assert_eq!(parse_tcp_table(&table, peer, Some(local)), Some(owner));
    let gone: SocketAddr = "127.0.0.1:1".parse().unwrap();
    assert_eq!(sock_diag(gone, local).unwrap(), None);
    let connection = Connection::new(peer, Some(local));

    let mine = WorkloadSelectors {
        user: Some(uid.to_string()),
        executable: Some(executable.display().to_string()),
        ..Default::default()
    };
    assert_eq!(connection.attest(&mine).await, Attested::Matches);
    let other = WorkloadSelectors { user: Some((uid + 1).to_string()), ..Default::default() };
    let refused = connection.attest(&other).await;
    assert_eq!(
        refused,
        Attested::Refused {
            reason: format!("the caller runs as uid {uid}, not as user {}", uid + 1),
            fresh: true
        }
    );
    // The verdict is kept for the connection: the same selectors are not attested again.
    let Attested::Refused { fresh, .. } = connection.attest(&other).await else {
        panic!("the verdict changed")
    };
    assert!(!fresh);
    let elsewhere =
        WorkloadSelectors { executable: Some("/usr/bin/true".to_owned()), ..Default::default() };
    let Attested::Refused { reason, .. } = connection.attest(&elsewhere).await else {
        panic!("another executable matched")
    };
    assert!(reason.ends_with(", not /usr/bin/true"), "{reason}");
}
