//! TLS as a configuration switch (rustls): every server serves TLS when it has a certificate,
//! asks callers for theirs when it has a client CA (mutual TLS: a service's certificate is
//! its identity on the wire), and every client to another Minhu service trusts the
//! configured CA for `https://` URLs and presents the service's own certificate.
//!
//! | variable | meaning |
//! |---|---|
//! | `MINHU_TLS_CERT_FILE`, `MINHU_TLS_KEY_FILE` | this process's certificate chain and key (PEM): served, and presented to other services |
//! | `MINHU_TLS_CLIENT_CA_FILE` | callers must present a certificate signed by this CA (PEM) |
//! | `MINHU_TLS_CA_FILE` | the CA (PEM) that signs other services' certificates, for `https://` service URLs |
//!
//! Postgres and Redis take TLS from their URLs: `sslmode=verify-full&sslrootcert=…` and
//! `rediss://` (sqlx and redis are built with rustls).

use std::path::Path;

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig};

use crate::{ConfigError, Secret, config::optional};

/// A certificate chain and its private key, PEM.
#[derive(Clone, Debug)]
pub struct KeyPair {
    /// The certificate chain.
    pub cert_pem: Vec<u8>,
    /// The private key.
    pub key_pem: Secret<Vec<u8>>,
}

impl KeyPair {
    fn identity(&self) -> Identity {
        Identity::from_pem(&self.cert_pem, self.key_pem.expose())
    }
}

/// A server's TLS: its key pair and, for mutual TLS, the CA its callers' certificates need.
#[derive(Clone, Debug)]
pub struct ServerTls {
    /// What the server presents.
    pub identity: KeyPair,
    /// When set, a caller without a certificate from this CA is refused at the handshake.
    pub client_ca_pem: Option<Vec<u8>>,
}

impl ServerTls {
    /// tonic's configuration.
    pub fn config(&self) -> ServerTlsConfig {
        let config = ServerTlsConfig::new().identity(self.identity.identity());
        match &self.client_ca_pem {
            Some(ca) => config.client_ca_root(Certificate::from_pem(ca)),
            None => config,
        }
    }

    /// From `MINHU_TLS_CERT_FILE`, `MINHU_TLS_KEY_FILE`, `MINHU_TLS_CLIENT_CA_FILE`; `None`
    /// when no certificate is configured (plaintext).
    pub fn from_env() -> Result<Option<Self>, ConfigError> {
        let Some(identity) = key_pair_from_env()? else {
            if optional("MINHU_TLS_CLIENT_CA_FILE").is_some() {
                return Err(ConfigError::new(
                    "MINHU_TLS_CLIENT_CA_FILE",
                    "needs MINHU_TLS_CERT_FILE and MINHU_TLS_KEY_FILE: mutual TLS is TLS first",
                ));
            }
            return Ok(None);
        };
        let client_ca_pem =
            optional("MINHU_TLS_CLIENT_CA_FILE").map(|p| read("MINHU_TLS_CLIENT_CA_FILE", &p)).transpose()?;
        Ok(Some(Self { identity, client_ca_pem }))
    }
}

/// A client's TLS towards other Minhu services.
#[derive(Clone, Debug, Default)]
pub struct ClientTls {
    /// The CA that signs the services' certificates; `None` trusts nothing but plaintext URLs.
    pub ca_pem: Option<Vec<u8>>,
    /// The certificate presented to servers that ask (mutual TLS).
    pub identity: Option<KeyPair>,
}

impl ClientTls {
    /// From `MINHU_TLS_CA_FILE` and this process's own key pair (`MINHU_TLS_CERT_FILE`,
    /// `MINHU_TLS_KEY_FILE`).
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            ca_pem: optional("MINHU_TLS_CA_FILE").map(|p| read("MINHU_TLS_CA_FILE", &p)).transpose()?,
            identity: key_pair_from_env()?,
        })
    }

    /// An endpoint for `url`: TLS with this configuration for `https://`, plaintext for
    /// `http://`. An `https://` URL without a CA is refused: it would trust nobody.
    pub fn endpoint(&self, url: &str) -> Result<Endpoint, EndpointError> {
        let endpoint = Endpoint::from_shared(url.to_owned()).map_err(EndpointError::Url)?;
        if !url.starts_with("https://") {
            return Ok(endpoint);
        }
        let Some(ca) = &self.ca_pem else { return Err(EndpointError::NoCa(url.to_owned())) };
        let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
        if let Some(identity) = &self.identity {
            config = config.identity(identity.identity());
        }
        endpoint.tls_config(config).map_err(EndpointError::Url)
    }
}

/// Why a client endpoint could not be made.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// The URL (or the TLS settings for it) are malformed.
    #[error("{0}")]
    Url(tonic::transport::Error),
    /// `https://` without `MINHU_TLS_CA_FILE`.
    #[error("`{0}` is https but no CA is configured (MINHU_TLS_CA_FILE)")]
    NoCa(String),
}

fn key_pair_from_env() -> Result<Option<KeyPair>, ConfigError> {
    match (optional("MINHU_TLS_CERT_FILE"), optional("MINHU_TLS_KEY_FILE")) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => Ok(Some(KeyPair {
            cert_pem: read("MINHU_TLS_CERT_FILE", &cert)?,
            key_pem: Secret::new(read("MINHU_TLS_KEY_FILE", &key)?),
        })),
        (Some(_), None) => Err(ConfigError::new("MINHU_TLS_KEY_FILE", "is required with MINHU_TLS_CERT_FILE")),
        (None, Some(_)) => Err(ConfigError::new("MINHU_TLS_CERT_FILE", "is required with MINHU_TLS_KEY_FILE")),
    }
}

fn read(variable: &str, path: &str) -> Result<Vec<u8>, ConfigError> {
    let bytes =
        std::fs::read(Path::new(path)).map_err(|e| ConfigError::new(variable, format!("reading `{path}`: {e}")))?;
    if !String::from_utf8_lossy(&bytes).contains("-----BEGIN ") {
        return Err(ConfigError::new(variable, format!("`{path}` is not PEM")));
    }
    Ok(bytes)
}
