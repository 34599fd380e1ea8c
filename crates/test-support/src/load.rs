//! A minimal HTTP/1.1 client over rustls for load generators, in the manner of `wrk`: one
//! keep-alive connection that writes a request encoded once and reads each answer by its
//! `Content-Length`. It verifies the server's certificate against the deployment's CA like any
//! client, and takes a small part of the CPU a general client (`reqwest`) does, which matters
//! when the load generator shares the machine's cores with the servers it measures.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail, ensure};
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// One keep-alive HTTPS connection.
pub struct Connection {
    stream: tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    buffer: Vec<u8>,
}

impl Connection {
    /// Connects to `address`, verifying the certificate for `host` against `ca_pem`.
    pub async fn connect(address: SocketAddr, host: &str, ca_pem: &[u8]) -> Result<Connection> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem) {
            roots.add(cert.context("read the CA")?).context("trust the CA")?;
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let tcp = tokio::net::TcpStream::connect(address).await.context("connect")?;
        tcp.set_nodelay(true).context("TCP_NODELAY")?;
        let name = ServerName::try_from(host.to_owned()).context("server name")?;
        let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .context("TLS handshake")?;
        Ok(Connection { stream, buffer: Vec::with_capacity(8192) })
    }

    /// Writes `request` (a whole HTTP/1.1 request, see [`form_post`]) and reads its answer;
    /// returns the status code.
    pub async fn exchange(&mut self, request: &[u8]) -> Result<u16> {
        self.stream.write_all(request).await.context("write the request")?;
        self.buffer.clear();
        let mut chunk = [0u8; 8192];
        loop {
            if let Some(head_end) = self.buffer.windows(4).position(|window| window == b"\r\n\r\n")
            {
                let head = std::str::from_utf8(&self.buffer[..head_end]).context("answer head")?;
                let status: u16 = head
                    .strip_prefix("HTTP/1.1 ")
                    .and_then(|rest| rest.get(..3))
                    .and_then(|code| code.parse().ok())
                    .with_context(|| format!("status line of {head:?}"))?;
                let length: usize = head
                    .lines()
                    .find_map(|line| {
                        let (name, value) = line.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse().ok())?
                    })
                    .with_context(|| format!("no Content-Length in {head:?}"))?;
                let whole = head_end + 4 + length;
                if self.buffer.len() >= whole {
                    ensure!(self.buffer.len() == whole, "more than one answer to one request");
                    return Ok(status);
                }
            }
            let read = self.stream.read(&mut chunk).await.context("read the answer")?;
            if read == 0 {
                bail!("the server closed the connection");
            }
            self.buffer.extend_from_slice(&chunk[..read]);
        }
    }
}

/// An HTTP/1.1 `POST` of `pairs` as a form to `path` on `authority` (`host:port`).
pub fn form_post(authority: &str, path: &str, pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut body = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        body.append_pair(name, value);
    }
    let body = body.finish();
    format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TestServer;

    /// Token requests over one connection: the admin's gets 200 twice in a row (the connection
    /// is kept alive and each answer read whole), a wrong secret gets the server's 401.
    #[tokio::test]
    async fn one_connection_carries_requests_and_reports_each_status() {
        let server = TestServer::start().await.expect("server");
        let ca = std::fs::read(server.data_dir().join("ca.pem")).expect("ca.pem");
        let authority = format!("localhost:{}", server.local_addr().port());
        let path = format!("/{}/oauth2/v2.0/token", server.tenant_id());
        let (app_id, secret) = server.admin_credentials();
        let request = |secret: &str| {
            form_post(
                &authority,
                &path,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", app_id),
                    ("client_secret", secret),
                    ("scope", "https://management.azure.com/.default"),
                ],
            )
        };
        let mut connection =
            Connection::connect(server.local_addr(), "localhost", &ca).await.expect("connect");
        assert_eq!(connection.exchange(&request(secret)).await.expect("first"), 200);
        assert_eq!(connection.exchange(&request(secret)).await.expect("second"), 200);
        assert_eq!(connection.exchange(&request("not-the-secret")).await.expect("wrong"), 401);
        server.stop().await;
    }

    /// The certificate is verified: a CA that did not sign it refuses the handshake.
    #[tokio::test]
    async fn a_foreign_ca_fails_the_handshake() {
        let server = TestServer::start().await.expect("server");
        let other = TestServer::start().await.expect("other server");
        let foreign = std::fs::read(other.data_dir().join("ca.pem")).expect("ca.pem");
        let result = Connection::connect(server.local_addr(), "localhost", &foreign).await;
        assert!(result.is_err(), "a certificate from another CA was accepted");
        other.stop().await;
        server.stop().await;
    }
}
