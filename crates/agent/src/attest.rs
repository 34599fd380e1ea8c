//! Workload attestation: which local process is at the other end of a connection, and whether
//! it matches a resource's workload selectors (`api_types::hosting::WorkloadSelectors`,
//! docs/flavours.md, "Workload attestation").
//!
//! On Linux the connection's 4-tuple is looked up with `NETLINK_SOCK_DIAG` (as `ss` does: one
//! exact look-up in the kernel's socket table, whatever the number of sockets), falling back to
//! `/proc/net/tcp` and `/proc/net/tcp6` where sock_diag is unavailable: the client's socket
//! gives its owner's uid and its inode. Only when the selectors need more
//! than the uid (group, executable, its digest, systemd unit, cgroup, container id) does the
//! agent scan `/proc/*/fd` for the processes holding `socket:[INODE]` and read their
//! `status`, `exe` and `cgroup`; every process holding the socket must match.
//! Reading other users' `/proc/PID/fd` needs root, so an agent that is not root cannot attest
//! those selectors and refuses.
//!
//! The verdict is kept per connection ([`Connection`], the listeners' `ConnectInfo`), so a
//! keep-alive connection is attested once per set of selectors. The parsing is pure
//! (`parse_*`, `matches`) and tested over sample text.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use api_types::hosting::WorkloadSelectors;
use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;

use crate::tls::SniffingListener;

/// The largest executable whose SHA-256 the agent computes (`executableSha256`).
const EXECUTABLE_BYTES_MAX: u64 = 256 * 1024 * 1024;

/// One accepted connection as the routes see it: the peer, the local address it reached, and
/// the attestation verdict kept for the connection's lifetime.
#[derive(Clone, Debug)]
pub(crate) struct Connection {
    pub(crate) peer: SocketAddr,
    /// `None` when the socket could not say (then the listener's port alone is compared).
    pub(crate) local: Option<SocketAddr>,
    verdict: Arc<Mutex<Option<Verdict>>>,
}

/// The outcome of attesting one connection against one set of selectors.
#[derive(Clone, Debug)]
struct Verdict {
    selectors: WorkloadSelectors,
    outcome: Result<(), String>,
}

/// Whether a verdict was computed for this request or reused from the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Attested {
    Matches,
    /// The process does not match; the reason says why, for the log and the sign-in log.
    /// `fresh` is true the first time the connection is refused for these selectors.
    Refused {
        reason: String,
        fresh: bool,
    },
}

/// The client side of a TCP connection as `/proc/net/tcp{,6}` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SocketOwner {
    pub(crate) uid: u32,
    pub(crate) inode: u64,
}

/// What `/proc/PID/status` says of a process's credentials.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) groups: Vec<u32>,
}

/// One process holding the connection's socket.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Process {
    pub(crate) pid: u32,
    pub(crate) credentials: Credentials,
    /// `/proc/PID/exe`; `None` when unreadable.
    pub(crate) executable: Option<PathBuf>,
    /// The cgroup paths of `/proc/PID/cgroup`, one per hierarchy.
    pub(crate) cgroups: Vec<String>,
}

/// The account names of the host, for selectors that name a user or a group.
pub(crate) trait Accounts {
    fn user_id(&self, name: &str) -> Option<u32>;
    fn group_id(&self, name: &str) -> Option<u32>;
}

impl Connected<IncomingStream<'_, SniffingListener>> for Connection {
    fn connect_info(stream: IncomingStream<'_, SniffingListener>) -> Self {
        Connection {
            peer: *stream.remote_addr(),
            local: stream.io().local_addr().ok(),
            verdict: Arc::default(),
        }
    }
}

impl Connection {
    /// A connection from `peer` to `local` with no verdict yet.
    #[cfg(test)]
    pub(crate) fn new(peer: SocketAddr, local: Option<SocketAddr>) -> Self {
        Connection { peer, local, verdict: Arc::default() }
    }

    /// Attests the process at the other end against `selectors`, once per connection and set
    /// of selectors; the work (reading `/proc`) runs on the blocking pool.
    pub(crate) async fn attest(&self, selectors: &WorkloadSelectors) -> Attested {
        let cached = self.verdict.lock().unwrap_or_else(PoisonError::into_inner).clone();
        if let Some(verdict) = cached.filter(|verdict| verdict.selectors == *selectors) {
            return match verdict.outcome {
                Ok(()) => Attested::Matches,
                Err(reason) => Attested::Refused { reason, fresh: false },
            };
        }
        let (peer, local, owned) = (self.peer, self.local, selectors.clone());
        let outcome = tokio::task::spawn_blocking(move || attest(&owned, peer, local))
            .await
            .unwrap_or_else(|_| Err("attestation failed".to_owned()));
        *self.verdict.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(Verdict { selectors: selectors.clone(), outcome: outcome.clone() });
        match outcome {
            Ok(()) => Attested::Matches,
            Err(reason) => Attested::Refused { reason, fresh: true },
        }
    }
}

/// Attests the process at the other end of the connection from `peer` to `local` against
/// `selectors`, reading `/proc` and the account files: `Err` says why it does not match.
pub(crate) fn attest(
    selectors: &WorkloadSelectors,
    peer: SocketAddr,
    local: Option<SocketAddr>,
) -> Result<(), String> {
    let owner = find_socket(peer, local)?;
    let processes = if needs_processes(selectors) {
        let processes = processes_holding(owner.inode);
        if processes.is_empty() {
            return Err(format!(
                "no process holding the connection from {peer} was found (attesting more than the user needs the agent to run as root)"
            ));
        }
        processes
    } else {
        Vec::new()
    };
    let digest = |path: &Path| executable_sha256(path);
    matches(selectors, owner, &processes, &SystemAccounts, &digest)
}

/// Whether the selectors need the processes (anything beyond the user).
pub(crate) fn needs_processes(selectors: &WorkloadSelectors) -> bool {
    let WorkloadSelectors {
        user: _,
        group,
        executable,
        executable_sha256,
        systemd_unit,
        cgroup,
        container_id,
    } = selectors;
    group.is_some()
        || executable.is_some()
        || executable_sha256.is_some()
        || systemd_unit.is_some()
        || cgroup.is_some()
        || container_id.is_some()
}

/// Checks every selector against the socket's owner and the processes holding it (all of them
/// must match). `digest` gives an executable's SHA-256 in lower-case hex.
pub(crate) fn matches(
    selectors: &WorkloadSelectors,
    owner: SocketOwner,
    processes: &[Process],
    accounts: &dyn Accounts,
    digest: &dyn Fn(&Path) -> Option<String>,
) -> Result<(), String> {
    if let Some(user) = &selectors.user {
        let expected = id_of(user, |name| accounts.user_id(name))
            .ok_or_else(|| format!("user {user} does not exist on this host"))?;
        if owner.uid != expected {
            return Err(format!("the caller runs as uid {}, not as user {user}", owner.uid));
        }
    }
    if needs_processes(selectors) && processes.is_empty() {
        return Err("no process holding the connection was found".to_owned());
    }
    for process in processes {
        let pid = process.pid;
        if let Some(group) = &selectors.group {
            let expected = id_of(group, |name| accounts.group_id(name))
                .ok_or_else(|| format!("group {group} does not exist on this host"))?;
            let credentials = &process.credentials;
            if credentials.gid != expected && !credentials.groups.contains(&expected) {
                return Err(format!("process {pid} is not in group {group}"));
            }
        }
        if let Some(expected) = &selectors.executable {
            match &process.executable {
                Some(actual) if actual == Path::new(expected) => {}
                Some(actual) => {
                    return Err(format!("process {pid} runs {}, not {expected}", actual.display()));
                }
                None => return Err(format!("the executable of process {pid} is unknown")),
            }
        }
        if let Some(expected) = &selectors.executable_sha256 {
            let actual = digest(&PathBuf::from(format!("/proc/{pid}/exe")));
            if actual.as_deref() != Some(expected.as_str()) {
                return Err(format!("the executable of process {pid} has another SHA-256"));
            }
        }
        if let Some(unit) = &selectors.systemd_unit {
            let actual: Vec<&str> =
                process.cgroups.iter().filter_map(|path| systemd_unit_of(path)).collect();
            if !actual.contains(&unit.as_str()) {
                let actual = actual.first().copied().unwrap_or("no unit");
                return Err(format!("process {pid} runs in {actual}, not in {unit}"));
            }
        }
        if let Some(cgroup) = &selectors.cgroup
            && !process.cgroups.iter().any(|path| cgroup_within(path, cgroup))
        {
            let actual = process.cgroups.first().map_or("no cgroup", String::as_str);
            return Err(format!("process {pid} is in cgroup {actual}, not under {cgroup}"));
        }
        if let Some(container) = &selectors.container_id {
            let actual = process.cgroups.iter().find_map(|path| container_id_of(path));
            if !actual.is_some_and(|id| id.starts_with(container.as_str())) {
                return Err(format!("process {pid} is not in container {container}"));
            }
        }
    }
    Ok(())
}

/// A user or group given as a number, or looked up by name.
fn id_of(text: &str, lookup: impl Fn(&str) -> Option<u32>) -> Option<u32> {
    if !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()) {
        text.parse().ok()
    } else {
        lookup(text)
    }
}

/// The client socket of the connection from `peer` to `local`: asked of sock_diag when the
/// local address is known, else (or when sock_diag cannot answer) found in `/proc/net/tcp`,
/// then `/proc/net/tcp6` (where a dual-stack client's IPv4 connection appears mapped).
fn find_socket(peer: SocketAddr, local: Option<SocketAddr>) -> Result<SocketOwner, String> {
    if let Some(local) = local.filter(|local| !local.ip().is_unspecified()) {
        match sock_diag(peer, local) {
            Ok(Some(owner)) => return Ok(owner),
            Ok(None) => {
                return Err(format!(
                    "the connection from {peer} is not a local TCP connection of this host"
                ));
            }
            Err(error) => tracing::debug!(%error, "sock_diag unavailable; reading /proc/net/tcp"),
        }
    }
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else { continue };
        if let Some(owner) = parse_tcp_table(&text, peer, local) {
            return Ok(owner);
        }
    }
    Err(format!("the connection from {peer} is not a local TCP connection of this host"))
}

/// The entry of a `/proc/net/tcp{,6}` table whose local address is `peer` and whose remote
/// address is `local` (its port alone when `local` is unknown or unspecified).
pub(crate) fn parse_tcp_table(
    text: &str,
    peer: SocketAddr,
    local: Option<SocketAddr>,
) -> Option<SocketOwner> {
    let peer = normalized(peer);
    let local = local.map(normalized);
    text.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
        let (source, destination, uid, inode) =
            (fields.get(1)?, fields.get(2)?, fields.get(7)?, fields.get(9)?);
        if parse_socket_address(source)? != peer {
            return None;
        }
        let destination = parse_socket_address(destination)?;
        let reached = match local {
            Some(local) if !local.ip().is_unspecified() => destination == local,
            Some(local) => destination.port() == local.port(),
            None => true,
        };
        if !reached {
            return None;
        }
        Some(SocketOwner { uid: uid.parse().ok()?, inode: inode.parse().ok()? })
    })
}

/// An address of `/proc/net/tcp{,6}`: `0100007F:1F90`, or 32 hexadecimal digits and a port.
/// Each 32-bit word is printed in the host's byte order.
pub(crate) fn parse_socket_address(text: &str) -> Option<SocketAddr> {
    let (address, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |at: usize| -> Option<[u8; 4]> {
        let digits = address.get(at..at + 8)?;
        Some(u32::from_str_radix(digits, 16).ok()?.to_ne_bytes())
    };
    let ip = match address.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for index in 0..4 {
                bytes[index * 4..index * 4 + 4].copy_from_slice(&word(index * 8)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(normalized(SocketAddr::new(ip, port)))
}

/// `AF_NETLINK`, `NETLINK_SOCK_DIAG` and `SOCK_DIAG_BY_FAMILY` (linux/netlink.h,
/// linux/sock_diag.h).
const AF_NETLINK: i32 = 16;
const NETLINK_SOCK_DIAG: i32 = 4;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `NLM_F_REQUEST`, and `NLMSG_ERROR` (linux/netlink.h).
const NLM_F_REQUEST: u16 = 1;
const NLMSG_ERROR: u16 = 2;
/// Address families and TCP (linux/socket.h, linux/in.h).
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const IPPROTO_TCP: u8 = 6;
/// `ENOENT`: sock_diag has no such socket.
const ENOENT: i32 = 2;
/// `struct nlmsghdr` and `struct inet_diag_req_v2` (linux/inet_diag.h).
const NLMSG_HEADER_BYTES: usize = 16;
const DIAG_REQUEST_BYTES: usize = NLMSG_HEADER_BYTES + 56;
/// Where `idiag_uid` and `idiag_inode` sit in a `struct inet_diag_msg` answer, after the header.
const DIAG_UID_AT: usize = NLMSG_HEADER_BYTES + 64;
const DIAG_INODE_AT: usize = NLMSG_HEADER_BYTES + 68;
/// How long the kernel may take to answer (it answers at once).
const DIAG_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Asks the kernel for the socket whose local address is `peer` and remote address `local`
/// (the client's end of the connection): `Ok(None)` when there is none.
fn sock_diag(peer: SocketAddr, local: SocketAddr) -> std::io::Result<Option<SocketOwner>> {
    use socket2::{Domain, Protocol, Socket, Type};
    use std::io::Read as _;
    let socket = Socket::new(
        Domain::from(AF_NETLINK),
        Type::DGRAM,
        Some(Protocol::from(NETLINK_SOCK_DIAG)),
    )?;
    socket.set_read_timeout(Some(DIAG_TIMEOUT))?;
    let request = diag_request(peer, local).ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "mixed address families")
    })?;
    socket.send(&request)?;
    let mut answer = [0u8; 512];
    let read = (&socket).read(&mut answer)?;
    parse_diag_answer(&answer[..read])
}

/// The `SOCK_DIAG_BY_FAMILY` request (an exact look-up, not a dump) for the TCP socket whose
/// source is `peer` and destination `local`; `None` when the families differ.
pub(crate) fn diag_request(peer: SocketAddr, local: SocketAddr) -> Option<Vec<u8>> {
    let (peer, local) = (normalized(peer), normalized(local));
    let (family, source, destination) = match (peer.ip(), local.ip()) {
        (IpAddr::V4(source), IpAddr::V4(destination)) => {
            let mut padded = ([0u8; 16], [0u8; 16]);
            padded.0[..4].copy_from_slice(&source.octets());
            padded.1[..4].copy_from_slice(&destination.octets());
            (AF_INET, padded.0, padded.1)
        }
        (IpAddr::V6(source), IpAddr::V6(destination)) => {
            (AF_INET6, source.octets(), destination.octets())
        }
        _ => return None,
    };
    let mut request = Vec::with_capacity(DIAG_REQUEST_BYTES);
    // struct nlmsghdr, in the host's byte order.
    request.extend_from_slice(&(DIAG_REQUEST_BYTES as u32).to_ne_bytes());
    request.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    request.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    request.extend_from_slice(&1u32.to_ne_bytes()); // nlmsg_seq
    request.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid
    // struct inet_diag_req_v2: family, protocol, extensions, pad, states (every state).
    request.extend_from_slice(&[family, IPPROTO_TCP, 0, 0]);
    request.extend_from_slice(&u32::MAX.to_ne_bytes());
    // struct inet_diag_sockid: ports and addresses in network order, no interface, no cookie.
    request.extend_from_slice(&peer.port().to_be_bytes());
    request.extend_from_slice(&local.port().to_be_bytes());
    request.extend_from_slice(&source);
    request.extend_from_slice(&destination);
    request.extend_from_slice(&0u32.to_ne_bytes());
    request.extend_from_slice(&u32::MAX.to_ne_bytes());
    request.extend_from_slice(&u32::MAX.to_ne_bytes());
    debug_assert_eq!(request.len(), DIAG_REQUEST_BYTES);
    Some(request)
}

/// The owner in a sock_diag answer: an `inet_diag_msg`, or `NLMSG_ERROR` with `ENOENT` (no
/// such socket, `None`) or another error.
pub(crate) fn parse_diag_answer(answer: &[u8]) -> std::io::Result<Option<SocketOwner>> {
    let read_u32 = |at: usize| -> Option<u32> {
        Some(u32::from_ne_bytes(answer.get(at..at + 4)?.try_into().ok()?))
    };
    let malformed =
        || std::io::Error::new(std::io::ErrorKind::InvalidData, "malformed sock_diag answer");
    let kind = answer.get(4..6).ok_or_else(malformed)?;
    if u16::from_ne_bytes([kind[0], kind[1]]) == NLMSG_ERROR {
        let code = read_u32(NLMSG_HEADER_BYTES).ok_or_else(malformed)? as i32;
        return if code == -ENOENT {
            Ok(None)
        } else {
            Err(std::io::Error::from_raw_os_error(-code))
        };
    }
    let uid = read_u32(DIAG_UID_AT).ok_or_else(malformed)?;
    let inode = read_u32(DIAG_INODE_AT).ok_or_else(malformed)?;
    Ok(Some(SocketOwner { uid, inode: u64::from(inode) }))
}

/// IPv4-mapped IPv6 addresses as IPv4, so both tables compare alike.
fn normalized(address: SocketAddr) -> SocketAddr {
    match address.ip() {
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), address.port()),
            None => address,
        },
        IpAddr::V4(_) => address,
    }
}

/// Every process with a descriptor on `socket:[inode]`, with its credentials, executable and
/// cgroups. Processes that vanish or cannot be read are skipped.
fn processes_holding(inode: u64) -> Vec<Process> {
    let target = format!("socket:[{inode}]");
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(descriptors) = std::fs::read_dir(entry.path().join("fd")) else { continue };
        let holds = descriptors.flatten().any(|descriptor| {
            std::fs::read_link(descriptor.path())
                .is_ok_and(|link| link.as_os_str() == target.as_str())
        });
        if !holds {
            continue;
        }
        let base = entry.path();
        let Some(credentials) =
            std::fs::read_to_string(base.join("status")).ok().and_then(|text| parse_status(&text))
        else {
            continue;
        };
        found.push(Process {
            pid,
            credentials,
            executable: std::fs::read_link(base.join("exe")).ok(),
            cgroups: std::fs::read_to_string(base.join("cgroup"))
                .map(|text| parse_cgroups(&text))
                .unwrap_or_default(),
        });
    }
    found
}

/// The effective uid and gid and the supplementary groups of `/proc/PID/status`.
pub(crate) fn parse_status(text: &str) -> Option<Credentials> {
    let field = |name: &str| {
        text.lines().find_map(|line| line.strip_prefix(name).map(str::split_whitespace))
    };
    // `Uid:` and `Gid:` list the real, effective, saved and filesystem ids.
    let uid = field("Uid:")?.nth(1)?.parse().ok()?;
    let gid = field("Gid:")?.nth(1)?.parse().ok()?;
    let groups = field("Groups:")
        .map(|ids| ids.filter_map(|id| id.parse().ok()).collect())
        .unwrap_or_default();
    Some(Credentials { uid, gid, groups })
}

/// The cgroup paths of `/proc/PID/cgroup` (`ID:CONTROLLERS:PATH` per line; cgroup v2 has one
/// line, `0::PATH`).
pub(crate) fn parse_cgroups(text: &str) -> Vec<String> {
    let mut paths: Vec<String> = text
        .lines()
        .filter_map(|line| line.splitn(3, ':').nth(2))
        .filter(|path| path.starts_with('/'))
        .map(str::to_owned)
        .collect();
    paths.dedup();
    paths
}

/// The systemd unit a process in cgroup `path` runs in: the deepest `.service` or `.scope`.
pub(crate) fn systemd_unit_of(path: &str) -> Option<&str> {
    path.rsplit('/').find(|part| part.ends_with(".service") || part.ends_with(".scope"))
}

/// Whether cgroup `path` is `within` or below it.
pub(crate) fn cgroup_within(path: &str, within: &str) -> bool {
    within == "/"
        || path == within
        || path.strip_prefix(within).is_some_and(|rest| rest.starts_with('/'))
}

/// The container id in cgroup `path`: a part of 64 hexadecimal digits, bare (cgroup v1,
/// Kubernetes) or in a runtime's scope (`docker-ID.scope`, `cri-containerd-ID.scope`,
/// `crio-ID.scope`, `libpod-ID.scope`).
pub(crate) fn container_id_of(path: &str) -> Option<&str> {
    path.rsplit('/').find_map(|part| {
        let part = part.strip_suffix(".scope").unwrap_or(part);
        let id = ["docker-", "cri-containerd-", "crio-", "libpod-"]
            .iter()
            .find_map(|prefix| part.strip_prefix(prefix))
            .unwrap_or(part);
        (id.len() == 64 && id.bytes().all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f')))
            .then_some(id)
    })
}

/// The SHA-256 of the file at `path` (a process's `/proc/PID/exe`), in lower-case hex.
fn executable_sha256(path: &Path) -> Option<String> {
    let size = std::fs::metadata(path).ok()?.len();
    if size > EXECUTABLE_BYTES_MAX {
        return None;
    }
    Some(crypto::hash::sha256_hex(&std::fs::read(path).ok()?))
}

/// The host's `/etc/passwd` and `/etc/group`, read at each look-up.
struct SystemAccounts;

impl Accounts for SystemAccounts {
    fn user_id(&self, name: &str) -> Option<u32> {
        parse_account_id(&std::fs::read_to_string("/etc/passwd").ok()?, name)
    }

    fn group_id(&self, name: &str) -> Option<u32> {
        parse_account_id(&std::fs::read_to_string("/etc/group").ok()?, name)
    }
}

/// The id of `name` in `/etc/passwd` or `/etc/group` text (`name:x:ID:...`).
pub(crate) fn parse_account_id(text: &str, name: &str) -> Option<u32> {
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != name {
            return None;
        }
        fields.nth(1)?.parse().ok()
    })
}

#[cfg(test)]
mod tests;
