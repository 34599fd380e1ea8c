//! HTTPS on the per-resource listeners, for Service Fabric's protocol: the workload reaches
//! `https://IP:PORT/servicefabric/token` and pins the certificate by the SHA-1 thumbprint in
//! `IDENTITY_SERVER_THUMBPRINT` (no CA is involved, as on a Service Fabric node). Each listener
//! looks at the first byte of every connection: a TLS handshake (`0x16`) is answered with the
//! agent's certificate, anything else is plain HTTP as before, so one port serves both.
//!
//! The certificate is made when the agent starts (a throw-away CA signs a leaf for `localhost`
//! and the listen address, and its key is dropped) and lives in memory only; its thumbprint and
//! the CA's certificate are reported to the server with the endpoints, where
//! `ambient run --flavour servicefabric` reads them.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a new connection may take to send its first byte and finish a TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Validity of the agent's Service Fabric certificate.
const CERTIFICATE_VALIDITY_DAYS: u32 = 365;
/// Connections accepted and not yet taken by the server loop.
const BACKLOG: usize = 64;
/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// The agent's HTTPS identity for Service Fabric.
pub(crate) struct ServiceFabricTls {
    pub(crate) acceptor: TlsAcceptor,
    /// SHA-1 of the leaf certificate's DER, lower-case hex (`IDENTITY_SERVER_THUMBPRINT`).
    pub(crate) thumbprint: String,
    /// The throw-away CA's certificate, PEM; its key is dropped once it signed the leaf.
    pub(crate) ca_pem: String,
}

impl ServiceFabricTls {
    /// A fresh certificate for `localhost`, `127.0.0.1`, `::1` and `listen_ip`.
    pub(crate) fn generate(listen_ip: IpAddr, now: domain::UnixTime) -> Result<Self, String> {
        let ca = crypto::pki::CertificateAuthority::generate("Ambient agent Service Fabric", now)
            .map_err(|error| error.to_string())?;
        let mut addresses: Vec<IpAddr> =
            vec![IpAddr::from([127, 0, 0, 1]), IpAddr::from(std::net::Ipv6Addr::LOCALHOST)];
        if !addresses.contains(&listen_ip) && !listen_ip.is_unspecified() {
            addresses.push(listen_ip);
        }
        let leaf = ca
            .issue_server_certificate(
                &["localhost".to_owned()],
                &addresses,
                now,
                CERTIFICATE_VALIDITY_DAYS,
            )
            .map_err(|error| error.to_string())?;
        let certificate = CertificateDer::from_pem_slice(leaf.cert_pem.as_bytes())
            .map_err(|error| error.to_string())?;
        let thumbprint = crypto::hash::sha1(certificate.as_ref())
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes())
            .map_err(|error| error.to_string())?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| error.to_string())?
            .with_no_client_auth()
            .with_single_cert(vec![certificate], key)
            .map_err(|error| error.to_string())?;
        let ca_pem = ca.cert_pem().to_owned();
        // `ca` (and its key, zeroed on drop) ends here: it never signs anything else.
        drop(ca);
        Ok(ServiceFabricTls { acceptor: TlsAcceptor::from(Arc::new(config)), thumbprint, ca_pem })
    }
}

/// A connection, plain or after a TLS handshake.
pub(crate) enum MaybeTls {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl MaybeTls {
    /// The local address of the connection.
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            MaybeTls::Plain(stream) => stream.local_addr(),
            MaybeTls::Tls(stream) => stream.get_ref().0.local_addr(),
        }
    }
}

/// A listener whose connections are sniffed for TLS (see the module documentation); the
/// accepting task stops when the listener is dropped.
pub(crate) struct SniffingListener {
    incoming: mpsc::Receiver<(MaybeTls, SocketAddr)>,
    local: SocketAddr,
    task: JoinHandle<()>,
}

impl SniffingListener {
    pub(crate) fn new(listener: TcpListener, tls: Option<TlsAcceptor>) -> io::Result<Self> {
        let local = listener.local_addr()?;
        let (sender, incoming) = mpsc::channel(BACKLOG);
        let task = tokio::spawn(async move {
            loop {
                let (stream, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::debug!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if sender.is_closed() {
                    return;
                }
                let sender = sender.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let sniffed = tokio::time::timeout(HANDSHAKE_TIMEOUT, sniff(stream, tls)).await;
                    match sniffed {
                        Ok(Ok(connection)) => {
                            let _ = sender.send((connection, peer)).await;
                        }
                        Ok(Err(error)) => tracing::debug!(%peer, %error, "connection dropped"),
                        Err(_) => tracing::debug!(%peer, "connection dropped: handshake timed out"),
                    }
                });
            }
        });
        Ok(SniffingListener { incoming, local, task })
    }
}

async fn sniff(stream: TcpStream, tls: Option<TlsAcceptor>) -> io::Result<MaybeTls> {
    let mut first = [0u8; 1];
    let read = stream.peek(&mut first).await?;
    match tls {
        Some(acceptor) if read == 1 && first[0] == TLS_HANDSHAKE => {
            Ok(MaybeTls::Tls(Box::new(acceptor.accept(stream).await?)))
        }
        _ => Ok(MaybeTls::Plain(stream)),
    }
}

impl Drop for SniffingListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl axum::serve::Listener for SniffingListener {
    type Io = MaybeTls;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.incoming.recv().await {
            Some(accepted) => accepted,
            // The accepting task ended: nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

impl AsyncRead for MaybeTls {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(stream) => Pin::new(stream).poll_read(context, buffer),
            MaybeTls::Tls(stream) => Pin::new(stream).poll_read(context, buffer),
        }
    }
}

impl AsyncWrite for MaybeTls {
    fn poll_write(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(stream) => Pin::new(stream).poll_write(context, data),
            MaybeTls::Tls(stream) => Pin::new(stream).poll_write(context, data),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(stream) => Pin::new(stream).poll_flush(context),
            MaybeTls::Tls(stream) => Pin::new(stream).poll_flush(context),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(stream) => Pin::new(stream).poll_shutdown(context),
            MaybeTls::Tls(stream) => Pin::new(stream).poll_shutdown(context),
        }
    }
}
