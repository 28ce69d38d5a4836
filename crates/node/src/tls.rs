//! Optional TLS (rustls, with the ring provider) for the public and the peer listener
//! (`[tls]` in the configuration). Certificates and keys are read from PEM files when the
//! node starts; a file that is missing, unreadable, empty or not PEM of the right kind
//! stops the node with an error naming the configuration key and the file. The peer
//! listener's TLS wraps the TCP stream under the cluster-secret handshake, which stays:
//! TLS hides peer traffic, the handshake proves the peer is one of the cluster's nodes.

use std::fs::File;
use std::io::BufReader;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use serde::{Deserialize, Serialize};

/// `[tls]`: optional TLS (rustls) on the public and the peer listener, each enabled by
/// giving its certificate chain and private key as PEM files. Peer TLS also needs
/// `peer_ca`: the certificates that sign the other nodes' peer certificates, which must
/// name the host of each member's `peer` address (an IP address SAN for an IP). The
/// cluster-secret handshake still runs inside TLS. Files are read and checked at start.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSection {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_cert: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_cert: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_key: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_ca: Option<PathBuf>,
}

/// A TLS file that cannot be used. `key` is its configuration key (`tls.public_cert`, …);
/// the message reads as the configuration's own errors do (`config::ConfigError`).
#[derive(Debug, thiserror::Error)]
#[error("{key} {problem}")]
pub struct TlsFileError {
    pub key: String,
    pub problem: String,
}

/// What the peer transport needs for TLS: an acceptor for the listener, a connector for
/// the clients (which check each peer's certificate against `tls.peer_ca`).
#[derive(Clone)]
pub struct PeerTls {
    pub acceptor: tokio_rustls::TlsAcceptor,
    pub connector: tokio_rustls::TlsConnector,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn invalid(key: &str, path: &Path, problem: impl std::fmt::Display) -> TlsFileError {
    TlsFileError {
        key: key.to_string(),
        problem: format!("({}) {problem}", path.display()),
    }
}

fn open(key: &str, path: &Path) -> Result<BufReader<File>, TlsFileError> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|error| invalid(key, path, format!("cannot be read: {error}")))
}

/// Every certificate of a PEM file (at least one).
pub fn load_certificates(
    key: &str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsFileError> {
    let certificates = rustls_pemfile::certs(&mut open(key, path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| invalid(key, path, format!("is not valid PEM: {error}")))?;
    if certificates.is_empty() {
        return Err(invalid(key, path, "holds no PEM certificate"));
    }
    Ok(certificates)
}

/// The one private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn load_private_key(key: &str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsFileError> {
    rustls_pemfile::private_key(&mut open(key, path)?)
        .map_err(|error| invalid(key, path, format!("is not valid PEM: {error}")))?
        .ok_or_else(|| invalid(key, path, "holds no PEM private key"))
}

/// A server configuration from a certificate chain and its key (`<prefix>_cert`,
/// `<prefix>_key` name them in errors).
pub fn server_config(prefix: &str, cert: &Path, key: &Path) -> Result<ServerConfig, TlsFileError> {
    let cert_key = format!("tls.{prefix}_cert");
    let key_key = format!("tls.{prefix}_key");
    let chain = load_certificates(&cert_key, cert)?;
    let private_key = load_private_key(&key_key, key)?;
    ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|error| invalid(&cert_key, cert, error))?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(|error| {
            invalid(
                &key_key,
                key,
                format!("does not go with {}: {error}", cert.display()),
            )
        })
}

/// A client configuration that trusts the certificates of `ca` (`tls.peer_ca`).
pub fn client_config(ca: &Path) -> Result<ClientConfig, TlsFileError> {
    let mut roots = RootCertStore::empty();
    for certificate in load_certificates("tls.peer_ca", ca)? {
        roots.add(certificate).map_err(|error| {
            invalid(
                "tls.peer_ca",
                ca,
                format!("holds an unusable certificate: {error}"),
            )
        })?;
    }
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|error| invalid("tls.peer_ca", ca, error))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The public listener's server configuration, if `[tls]` enables it.
pub fn public_server_config(tls: &TlsSection) -> Result<Option<ServerConfig>, TlsFileError> {
    match (&tls.public_cert, &tls.public_key) {
        (Some(cert), Some(key)) => server_config("public", cert, key).map(Some),
        _ => Ok(None),
    }
}

/// The peer transport's TLS, if `[tls]` enables it.
pub fn peer_tls(tls: &TlsSection) -> Result<Option<PeerTls>, TlsFileError> {
    let (Some(cert), Some(key), Some(ca)) = (&tls.peer_cert, &tls.peer_key, &tls.peer_ca) else {
        return Ok(None);
    };
    let server = server_config("peer", cert, key)?;
    let client = client_config(ca)?;
    Ok(Some(PeerTls {
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(server)),
        connector: tokio_rustls::TlsConnector::from(Arc::new(client)),
    }))
}

/// The name a peer's certificate must carry: the host of its `host:port` address (an IP
/// address, or a DNS name).
pub fn peer_server_name(address: &str) -> Result<ServerName<'static>, String> {
    if let Ok(socket) = address.parse::<SocketAddr>() {
        return Ok(ServerName::IpAddress(socket.ip().into()));
    }
    let host = address
        .rsplit_once(':')
        .map_or(address, |(host, _port)| host);
    ServerName::try_from(host.to_string())
        .map_err(|error| format!("{address:?} has no usable TLS server name: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_non_pem_files_are_named_with_their_key() {
        let dir = tempfile::tempdir().expect("temp dir");
        let missing = dir.path().join("absent.pem");
        let error = server_config("public", &missing, &missing).unwrap_err();
        assert_eq!(error.key, "tls.public_cert");
        assert!(error.to_string().contains("absent.pem"), "{error}");

        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").expect("write");
        let error = client_config(&junk).unwrap_err();
        assert_eq!(error.key, "tls.peer_ca");
        assert!(error.to_string().contains("no PEM certificate"), "{error}");
    }

    #[test]
    fn a_generated_certificate_and_key_make_a_server_config() {
        let dir = tempfile::tempdir().expect("temp dir");
        let generated =
            rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("rcgen");
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, generated.cert.pem()).expect("write");
        std::fs::write(&key, generated.signing_key.serialize_pem()).expect("write");
        assert!(server_config("peer", &cert, &key).is_ok());
        // A certificate given as the key is refused, naming the key.
        let error = server_config("peer", &cert, &cert).unwrap_err();
        assert_eq!(error.key, "tls.peer_key");
        assert!(client_config(&cert).is_ok());
    }

    #[test]
    fn peer_server_names_come_from_the_address_host() {
        assert!(matches!(
            peer_server_name("127.0.0.1:7081"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(
            peer_server_name("node-2.intranet:7082"),
            Ok(ServerName::DnsName(_))
        ));
    }
}
