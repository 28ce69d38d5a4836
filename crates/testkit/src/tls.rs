//! Certificates made at test time (rcgen): a CA, and a certificate it signs for
//! 127.0.0.1 and localhost, written as PEM files; and a TLS client that trusts the CA.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

/// PEM files of a test CA and of a loopback certificate it signed.
pub struct TestCertificates {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCertificates {
    pub fn generate(dir: &Path) -> TestCertificates {
        std::fs::create_dir_all(dir).expect("certificate dir");
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca_params, ca_key);
        let node_key = KeyPair::generate().expect("node key");
        let node_params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .expect("node params");
        let node_cert = node_params
            .signed_by(&node_key, &issuer)
            .expect("node certificate");
        let certificates = TestCertificates {
            ca: dir.join("ca.pem"),
            cert: dir.join("node.pem"),
            key: dir.join("node-key.pem"),
        };
        std::fs::write(&certificates.ca, ca_cert.pem()).expect("write CA");
        std::fs::write(&certificates.cert, node_cert.pem()).expect("write cert");
        std::fs::write(&certificates.key, node_key.serialize_pem()).expect("write key");
        certificates
    }

    /// A rustls client configuration that trusts only this CA.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        let pem = std::fs::read(&self.ca).expect("read CA");
        for certificate in rustls_pemfile::certs(&mut pem.as_slice()) {
            roots.add(certificate.expect("CA PEM")).expect("CA root");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Arc::new(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("protocol versions")
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }
}

/// One HTTP/1.1 GET over TLS to 127.0.0.1:`port`; the whole answer as text.
pub fn https_get(
    config: Arc<rustls::ClientConfig>,
    port: u16,
    path: &str,
) -> std::io::Result<String> {
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1")
        .expect("server name")
        .to_owned();
    let connection = rustls::ClientConnection::new(config, name).map_err(std::io::Error::other)?;
    let socket = TcpStream::connect(("127.0.0.1", port))?;
    socket.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut stream = rustls::StreamOwned::new(connection, socket);
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    stream.flush()?;
    let mut answer = String::new();
    match stream.read_to_string(&mut answer) {
        Ok(_) => Ok(answer),
        // Some servers close without close_notify; what was read is the answer.
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof && !answer.is_empty() => {
            Ok(answer)
        }
        Err(error) => Err(error),
    }
}
