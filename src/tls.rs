//! TLS for both listeners (`[server] tls_cert` and `tls_key`, PEM), with rustls.
//!
//! The certificate is read at start and again on SIGHUP; a connection uses the certificate
//! loaded when it was accepted, and a reload that fails keeps the old one (logged). The
//! line protocol is implicit TLS (TLS from the first byte, as `openssl s_client` speaks):
//! the decrypted stream is handed to the ordinary connection loop through a socket pair.

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// A client must finish the TLS handshake within this time.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Tls {
    cert: PathBuf,
    key: PathBuf,
    /// (line protocol, HTTP with ALPN `http/1.1`)
    configs: RwLock<(Arc<ServerConfig>, Arc<ServerConfig>)>,
}

impl Tls {
    /// The TLS settings from the configuration: None when neither file is set, an error
    /// naming the problem when only one is or a file does not load.
    pub fn from_config(cfg: &crate::config::ServerConfig) -> Result<Option<Arc<Tls>>, String> {
        match (&cfg.tls_cert, &cfg.tls_key) {
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => {
                let configs = build(cert, key)?;
                Ok(Some(Arc::new(Tls {
                    cert: cert.clone(),
                    key: key.clone(),
                    configs: RwLock::new(configs),
                })))
            }
            _ => Err("[server] tls_cert and tls_key must be set together".into()),
        }
    }

    /// Reads the certificate and key again; on failure the old ones stay in use.
    pub fn reload(&self) -> Result<(), String> {
        let configs = build(&self.cert, &self.key)?;
        *self.configs.write().unwrap_or_else(|e| e.into_inner()) = configs;
        Ok(())
    }

    fn acceptor(&self, http: bool) -> TlsAcceptor {
        let c = self.configs.read().unwrap_or_else(|e| e.into_inner());
        TlsAcceptor::from(if http { c.1.clone() } else { c.0.clone() })
    }

    /// The handshake, bounded by [`HANDSHAKE_TIMEOUT`]; None when it failed (logged).
    pub async fn handshake(&self, stream: TcpStream, http: bool) -> Option<TlsStream<TcpStream>> {
        let peer = stream.peer_addr().ok();
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor(http).accept(stream)).await {
            Ok(Ok(s)) => Some(s),
            Ok(Err(e)) => {
                tracing::info!(?peer, error = %e, "tls handshake failed");
                None
            }
            Err(_) => {
                tracing::info!(?peer, "tls handshake timeout");
                None
            }
        }
    }

    /// For the line protocol: after the handshake, a plain socket whose other end is
    /// relayed to and from the TLS stream, so the connection loop runs unchanged.
    pub async fn bridge(&self, stream: TcpStream) -> Option<(TcpStream, Relay)> {
        let tls = self.handshake(stream, false).await?;
        let (inner, outer) = socket_pair().ok()?;
        let task = tokio::spawn(relay(tls, outer));
        Some((inner, Relay(task)))
    }
}

/// The task copying between a TLS stream and its plain socket.
pub struct Relay(JoinHandle<()>);

impl Relay {
    /// Lets the relay send what the connection wrote last, for a short while.
    pub async fn finish(self) {
        let abort = self.0.abort_handle();
        if tokio::time::timeout(Duration::from_secs(5), self.0)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
}

/// A connected pair of sockets; the first as a [`TcpStream`] for the connection loop,
/// which only reads, writes and shuts down (all of which a Unix socket does alike).
fn socket_pair() -> std::io::Result<(TcpStream, tokio::net::UnixStream)> {
    use std::os::fd::{FromRawFd, IntoRawFd};
    let (a, b) = tokio::net::UnixStream::pair()?;
    let fd = a.into_std()?.into_raw_fd();
    // SAFETY: `fd` is an open, non-blocking stream socket this function owns.
    let std = unsafe { std::net::TcpStream::from_raw_fd(fd) };
    Ok((TcpStream::from_std(std)?, b))
}

/// Copies both ways; ends once the connection loop closed its side (then closing TLS).
async fn relay(tls: TlsStream<TcpStream>, plain: tokio::net::UnixStream) {
    let (mut tr, mut tw) = tokio::io::split(tls);
    let (mut pr, mut pw) = plain.into_split();
    let up = async {
        let _ = tokio::io::copy(&mut tr, &mut pw).await;
        let _ = pw.shutdown().await;
    };
    let down = async {
        let _ = tokio::io::copy(&mut pr, &mut tw).await;
        let _ = tw.shutdown().await;
    };
    tokio::pin!(up, down);
    tokio::select! {
        _ = &mut up => down.await,
        _ = &mut down => {}
    }
}

fn build(cert: &Path, key: &Path) -> Result<(Arc<ServerConfig>, Arc<ServerConfig>), String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect())
        .map_err(|e| format!("cannot read the certificate {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("no certificate in {}", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read the private key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let line = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate and key do not go together: {e}"))?;
    let mut http = line.clone();
    http.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(line), Arc::new(http)))
}

/// Reloads the certificate on every SIGHUP, for as long as the server runs.
pub fn reload_on_sighup(tls: Arc<Tls>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP: the certificate will not be reloaded");
        return;
    };
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            match tls.reload() {
                Ok(()) => tracing::info!(cert = %tls.cert.display(), "tls certificate reloaded"),
                Err(e) => {
                    tracing::error!(error = %e, "tls reload failed: keeping the old certificate")
                }
            }
        }
    });
}
