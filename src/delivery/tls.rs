//! TLS for our SMTP client (`security = "tls"` and `"starttls"`): the
//! rustls settings, the stream the client reads and writes (TCP or TLS over
//! TCP), and TLS failures told in plain words.
//!
//! The client is the same for all three security modes, so the bounds on
//! what a server may send (see `smtp_client`), TCP_NODELAY and pipelining
//! hold on every transport.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{CertificateError, Error as RustlsError, InvalidMessage};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Why the TLS settings could not be built from the config.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    #[error("mail.smtp.ca_file {}: {message}", path.display())]
    CaFile { path: PathBuf, message: String },
    #[error(
        "mail.smtp.host {host:?} is neither a DNS name nor an IP address, so TLS cannot check the server's certificate against it"
    )]
    Host { host: String },
    #[error("TLS settings: {0}")]
    Rustls(#[from] RustlsError),
}

/// A connection to the server: plain TCP, or TLS over TCP.
#[derive(Debug)]
pub enum Stream {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// How the client talks to the server, from `mail.smtp.security`.
#[derive(Clone)]
pub enum Security {
    /// Plain SMTP (a trusted local relay).
    None,
    /// Plain first, then STARTTLS before anything else (RFC 3207).
    Starttls(Tls),
    /// TLS from the first byte (RFC 8314, usually port 465).
    Implicit(Tls),
}

/// What a TLS handshake with the configured server needs.
#[derive(Clone)]
pub struct Tls {
    connector: TlsConnector,
    name: ServerName<'static>,
    host: String,
}

impl Tls {
    /// The public roots (webpki-roots), plus `ca_file` (PEM, one or more
    /// certificates) when set: a private CA's certificate, for example.
    pub fn new(host: &str, ca_file: Option<&Path>) -> Result<Tls, TlsConfigError> {
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        if let Some(path) = ca_file {
            let bad = |message: String| TlsConfigError::CaFile {
                path: path.to_path_buf(),
                message,
            };
            let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
            let mut found = 0;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| bad(format!("not a PEM certificate: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| bad(format!("not a usable CA certificate: {e}")))?;
                found += 1;
            }
            if found == 0 {
                return Err(bad(
                    "holds no certificate (expected \"-----BEGIN CERTIFICATE-----\")".into(),
                ));
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from(host.to_string()).map_err(|_| TlsConfigError::Host {
            host: host.to_string(),
        })?;
        Ok(Tls {
            connector: TlsConnector::from(Arc::new(config)),
            name,
            host: host.to_string(),
        })
    }

    /// The TLS handshake over `tcp`; a failure comes back in plain words.
    pub async fn handshake(
        &self,
        tcp: TcpStream,
        port: u16,
        implicit: bool,
    ) -> Result<Stream, HandshakeError> {
        self.connector
            .connect(self.name.clone(), tcp)
            .await
            .map(|s| Stream::Tls(Box::new(s)))
            .map_err(|e| HandshakeError {
                explained: explain(&self.host, port, implicit, &e),
                error: e,
            })
    }
}

/// A failed TLS handshake: [`explain`]'s words for people (what happened,
/// what to check), and the error itself.
#[derive(Debug, thiserror::Error)]
#[error("{explained}")]
pub struct HandshakeError {
    explained: String,
    /// Not a `source`: `explained` already says it, in other words.
    pub error: io::Error,
}

/// A failed handshake, for people: what happened and what to check.
pub fn explain(host: &str, port: u16, implicit: bool, e: &io::Error) -> String {
    let tls = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<RustlsError>());
    match tls {
        Some(RustlsError::InvalidMessage(InvalidMessage::InvalidContentType)) if implicit => {
            format!(
                "{host}:{port} does not speak TLS on this port (it answered in plain text): \
                 security = \"tls\" needs a port that expects TLS from the first byte (usually 465); \
                 for a port that upgrades with STARTTLS (usually 587) set mail.smtp.security = \"starttls\""
            )
        }
        Some(RustlsError::InvalidMessage(InvalidMessage::InvalidContentType)) => format!(
            "{host}:{port} offered STARTTLS but did not start TLS after it (it went on in plain text)"
        ),
        Some(RustlsError::InvalidCertificate(c)) => certificate(host, c),
        Some(other) => format!("TLS with {host}:{port} failed: {other}"),
        None if e.kind() == io::ErrorKind::UnexpectedEof => format!(
            "{host}:{port} closed the connection during the TLS handshake{}",
            if implicit {
                " (does this port expect TLS from the first byte? if it upgrades with STARTTLS, set mail.smtp.security = \"starttls\")"
            } else {
                ""
            }
        ),
        None => format!("TLS with {host}:{port} failed: {e}"),
    }
}

fn certificate(host: &str, c: &CertificateError) -> String {
    let why = match c {
        CertificateError::UnknownIssuer => format!(
            "it is not signed by an authority this machine trusts. Check that {host} sends its \
             whole certificate chain; for a private CA, set mail.smtp.ca_file to that CA's \
             certificate (PEM)"
        ),
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!(
                "it is not issued for the name {host:?}. Set mail.smtp.host to a name the \
                 certificate lists (the one the provider documents), not an address or alias"
            )
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "it has expired. The server's certificate must be renewed (or this machine's clock is wrong)".into()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "it is not valid yet. Check this machine's clock".into()
        }
        other => format!("{other:?}. Check the server's certificate and mail.smtp.ca_file"),
    };
    format!("the TLS certificate of {host} is not trusted: {why}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrapped(e: RustlsError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }

    #[test]
    fn a_plaintext_answer_to_implicit_tls_suggests_starttls() {
        let e = wrapped(RustlsError::InvalidMessage(
            InvalidMessage::InvalidContentType,
        ));
        let s = explain("mail.example.org", 587, true, &e);
        assert!(s.contains("does not speak TLS on this port"), "{s}");
        assert!(s.contains("security = \"starttls\""), "{s}");
        assert!(!s.contains("corrupt"), "{s}");
    }

    #[test]
    fn an_unknown_issuer_names_the_host_and_the_ca_setting() {
        let e = wrapped(RustlsError::InvalidCertificate(
            CertificateError::UnknownIssuer,
        ));
        let s = explain("mail.example.org", 465, true, &e);
        assert!(
            s.contains("certificate of mail.example.org is not trusted"),
            "{s}"
        );
        assert!(s.contains("mail.smtp.ca_file"), "{s}");
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let e = Tls::new("mail.example.org", Some(&path))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("ca.pem") && e.contains("no certificate"), "{e}");
    }
}
