//! The daemon's certificate: loaded from the configured PEM files, or a
//! self-signed one generated on first start and kept in the data directory.

use std::{fs, path::Path, sync::Arc};

use anyhow::Context as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};

use crate::config::TlsConfig;

/// A certificate chain with its key.
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Identity {
    /// Lowercase hex SHA-256 of the leaf certificate's DER, as clients pin it.
    pub fn fingerprint(&self) -> String {
        hex::encode(Sha256::digest(&self.chain[0]))
    }

    /// A rustls server config for `alpn`.
    pub fn server_config(&self, alpn: &[&[u8]]) -> anyhow::Result<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .context("TLS 1.3 with the ring provider")?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .context("the certificate does not match its key")?;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(config)
    }
}

/// Loads the configured certificate, or the self-signed one in `data_dir`,
/// generating it on first start.
pub fn load_or_generate(config: &TlsConfig, data_dir: &Path) -> anyhow::Result<Identity> {
    if let (Some(cert), Some(key)) = (&config.cert, &config.key) {
        return load_pem(cert, key);
    }
    let cert_path = data_dir.join("tls").join("cert.der");
    let key_path = data_dir.join("tls").join("key.der");
    if cert_path.exists() && key_path.exists() {
        let chain = vec![CertificateDer::from(
            fs::read(&cert_path).with_context(|| format!("reading {}", cert_path.display()))?,
        )];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            fs::read(&key_path).with_context(|| format!("reading {}", key_path.display()))?,
        ));
        return Ok(Identity { chain, key });
    }
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into(), "::1".into()])
        .context("generating a self-signed certificate")?;
    let cert = generated.cert.der().to_vec();
    let key = generated.signing_key.serialize_der();
    fs::create_dir_all(cert_path.parent().expect("has a parent"))?;
    write_private(&key_path, &key)?;
    fs::write(&cert_path, &cert).with_context(|| format!("writing {}", cert_path.display()))?;
    tracing::info!(path = %cert_path.display(), "generated a self-signed certificate");
    Ok(Identity { chain: vec![CertificateDer::from(cert)], key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)) })
}

fn load_pem(cert: &Path, key: &Path) -> anyhow::Result<Identity> {
    let cert_pem = fs::read(cert).with_context(|| format!("reading tls.cert {}", cert.display()))?;
    let chain = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("tls.cert {} is not a PEM certificate chain", cert.display()))?;
    anyhow::ensure!(!chain.is_empty(), "tls.cert {} holds no certificate", cert.display());
    let key_pem = fs::read(key).with_context(|| format!("reading tls.key {}", key.display()))?;
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .with_context(|| format!("tls.key {} is not a PEM private key", key.display()))?
        .with_context(|| format!("tls.key {} holds no private key", key.display()))?;
    Ok(Identity { chain, key })
}

/// Writes a secret readable by the owner only.
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}
