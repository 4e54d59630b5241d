//! SIP over TLS (RFC 3261 §26.2, RFC 5630): the rustls configurations the
//! stream transport wraps its connections in. A `tls:` listener presents the
//! configured certificate chain; a connection dialtone opens (to a trunk with
//! transport "tls") checks the server's certificate against the configured CA
//! file, or the public roots, for the name the request was sent to
//! ([`Transports::set_tls_name`](super::Transports::set_tls_name); the IP
//! address without one).

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::ring::default_provider;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::TransportError;

/// The TLS side of the transports.
#[derive(Clone, Debug)]
pub struct TlsSetup {
    /// For `tls:` listeners; None: none may be configured.
    pub server: Option<Arc<ServerConfig>>,
    /// For connections dialtone opens.
    pub client: Arc<ClientConfig>,
}

fn config_error(what: &str, path: &Path, e: impl std::fmt::Display) -> TransportError {
    TransportError::Config(format!("{what} {}: {e}", path.display()))
}

impl TlsSetup {
    /// From PEM files: the certificate chain and private key presented to
    /// clients (both or neither), and the CA certificates servers are
    /// checked against (None: the public web roots).
    pub fn from_pem_files(
        cert_key: Option<(&Path, &Path)>,
        ca: Option<&Path>,
    ) -> Result<TlsSetup, TransportError> {
        let provider = Arc::new(default_provider());
        let server = match cert_key {
            Some((cert, key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .map_err(|e| config_error("tls.certificate", cert, e))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| config_error("tls.certificate", cert, e))?;
                if chain.is_empty() {
                    return Err(config_error(
                        "tls.certificate",
                        cert,
                        "no certificate in it",
                    ));
                }
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| config_error("tls.private_key", key, e))?;
                let config = ServerConfig::builder_with_provider(provider.clone())
                    .with_safe_default_protocol_versions()
                    .map_err(|e| TransportError::Config(format!("tls: {e}")))?
                    .with_no_client_auth()
                    .with_single_cert(chain, key)
                    .map_err(|e| {
                        TransportError::Config(format!("tls.certificate/private_key: {e}"))
                    })?;
                Some(Arc::new(config))
            }
            None => None,
        };
        let mut roots = RootCertStore::empty();
        match ca {
            Some(path) => {
                for cert in CertificateDer::pem_file_iter(path)
                    .map_err(|e| config_error("tls.ca_file", path, e))?
                {
                    let cert = cert.map_err(|e| config_error("tls.ca_file", path, e))?;
                    roots
                        .add(cert)
                        .map_err(|e| config_error("tls.ca_file", path, e))?;
                }
                if roots.is_empty() {
                    return Err(config_error("tls.ca_file", path, "no certificate in it"));
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TransportError::Config(format!("tls: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(TlsSetup {
            server,
            client: Arc::new(client),
        })
    }
}
