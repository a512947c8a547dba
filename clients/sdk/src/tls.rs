//! TLS trust for `quic://` and `wss://`: certificate fingerprints, the
//! [`Trust`] choices, and the one rustls verifier behind all of them, which
//! also records the fingerprint of the certificate the server presented.

use std::{
    fmt,
    fs::File,
    io::BufReader,
    path::PathBuf,
    str::FromStr,
    sync::{Arc, Mutex},
};

use rustls::{
    CertificateError, DigitallySignedStruct, SignatureScheme,
    client::{
        WebPkiServerVerifier,
        danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    },
    crypto::CryptoProvider,
    pki_types::{CertificateDer, ServerName, UnixTime},
};
use sha2::{Digest, Sha256};

use crate::Error;

/// SHA-256 over the DER encoding of a server's leaf certificate: what a
/// client pins to trust a self-signed server.
///
/// Displays as 64 lowercase hex digits; parses with or without colons, in
/// either case.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER-encoded certificate.
    pub fn of_certificate(der: &[u8]) -> Self {
        Fingerprint(Sha256::digest(der).into())
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Fingerprint(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex in colon-separated pairs (`ab:cd:...`), as many tools
    /// print fingerprints.
    pub fn to_colon_hex(&self) -> String {
        let hex = hex::encode(self.0);
        let mut out = String::with_capacity(hex.len() * 3 / 2);
        for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
            if i > 0 {
                out.push(':');
            }
            out.extend(pair.iter().map(|&b| char::from(b)));
        }
        out
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl FromStr for Fingerprint {
    type Err = Error;

    /// Accepts `abcd...`, `AB:CD:...`, and an optional `sha256:` prefix.
    fn from_str(input: &str) -> Result<Self, Error> {
        let trimmed = input.trim();
        let trimmed = trimmed.strip_prefix("sha256:").or_else(|| trimmed.strip_prefix("SHA256:")).unwrap_or(trimmed);
        let digits: String = trimmed.chars().filter(|&c| c != ':').collect();
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(&digits, &mut bytes).map_err(|_| Error::InvalidFingerprint(input.to_owned()))?;
        Ok(Fingerprint(bytes))
    }
}

/// Which server certificates to accept on `quic://` and `wss://`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Trust {
    /// Certificates that chain to the Mozilla root store (shipped with the
    /// SDK) and name the host: for servers with a public certificate.
    #[default]
    WebPki,
    /// Certificates that chain to one of the CA certificates in this PEM
    /// file and name the host.
    CaFile(PathBuf),
    /// Exactly the certificate with this fingerprint (its validity dates and
    /// names are not checked; the handshake signature is). For confabd's
    /// self-signed certificate.
    Fingerprint(Fingerprint),
    /// Any certificate on the first connection; the fingerprint seen is
    /// reported by [`crate::Client::server_fingerprint`] so it can be stored
    /// and pinned next time. Reconnects of the same client pin it.
    TrustOnFirstUse,
}

/// A rustls client config for one connection attempt, with the slot where
/// the verifier records the certificate it was shown. Public for tools that
/// open connections by hand (the conformance suite), so they trust exactly
/// as the SDK does.
pub struct TlsSetup {
    pub config: Arc<rustls::ClientConfig>,
    pub seen: Arc<Mutex<Option<Fingerprint>>>,
    pub pinned: Option<Fingerprint>,
}

impl TlsSetup {
    /// Builds the config for `trust`, offering `alpn`. QUIC needs TLS 1.3;
    /// WebSocket also allows TLS 1.2.
    pub fn new(trust: &Trust, alpn: &[&[u8]], tls13_only: bool) -> Result<Self, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let check = match trust {
            Trust::WebPki => {
                let mut roots = rustls::RootCertStore::empty();
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
                Check::Chain(chain_verifier(roots, &provider)?)
            }
            Trust::CaFile(path) => Check::Chain(chain_verifier(read_ca_file(path)?, &provider)?),
            Trust::Fingerprint(fingerprint) => Check::Pinned(*fingerprint),
            Trust::TrustOnFirstUse => Check::AnyCertificate,
        };
        let pinned = match check {
            Check::Pinned(fingerprint) => Some(fingerprint),
            _ => None,
        };
        let seen = Arc::new(Mutex::new(None));
        let verifier = Arc::new(RecordingVerifier { check, seen: seen.clone(), provider: provider.clone() });
        let versions: &[&'static rustls::SupportedProtocolVersion] =
            if tls13_only { &[&rustls::version::TLS13] } else { rustls::DEFAULT_VERSIONS };
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .map_err(|e| Error::Tls(format!("TLS setup: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(TlsSetup { config: Arc::new(config), seen, pinned })
    }

    /// The fingerprint of the certificate the server presented, if the
    /// handshake got that far.
    pub fn seen(&self) -> Option<Fingerprint> {
        *self.seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The error for a failed handshake: a fingerprint mismatch when that is
    /// what failed, otherwise a TLS error with `detail`.
    pub fn handshake_error(&self, detail: impl fmt::Display) -> Error {
        match (self.pinned, self.seen()) {
            (Some(expected), Some(presented)) if expected != presented => {
                Error::FingerprintMismatch { expected, presented }
            }
            _ => Error::Tls(detail.to_string()),
        }
    }
}

fn chain_verifier(
    roots: rustls::RootCertStore,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, Error> {
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| Error::Tls(format!("certificate verifier: {e}")))
}

fn read_ca_file(path: &PathBuf) -> Result<rustls::RootCertStore, Error> {
    let file = File::open(path).map_err(|e| Error::Tls(format!("cannot open CA file {}: {e}", path.display())))?;
    let mut roots = rustls::RootCertStore::empty();
    for certificate in rustls_pemfile::certs(&mut BufReader::new(file)) {
        let certificate =
            certificate.map_err(|e| Error::Tls(format!("cannot read CA file {}: {e}", path.display())))?;
        roots.add(certificate).map_err(|e| Error::Tls(format!("bad CA certificate in {}: {e}", path.display())))?;
    }
    if roots.is_empty() {
        return Err(Error::Tls(format!("no PEM certificates in CA file {}", path.display())));
    }
    Ok(roots)
}

/// How the leaf certificate is judged.
#[derive(Debug)]
enum Check {
    /// Its fingerprint must be this one.
    Pinned(Fingerprint),
    /// Anything goes (trust on first use).
    AnyCertificate,
    /// It must chain to a root and name the server.
    Chain(Arc<WebPkiServerVerifier>),
}

/// The verifier for every [`Trust`]: records the leaf's fingerprint, then
/// judges the certificate per [`Check`]. Handshake signatures are always
/// verified with the ring provider's algorithms, so a pinned certificate
/// proves the server holds its key.
#[derive(Debug)]
struct RecordingVerifier {
    check: Check,
    seen: Arc<Mutex<Option<Fingerprint>>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = Fingerprint::of_certificate(end_entity);
        *self.seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(presented);
        match &self.check {
            Check::Pinned(expected) if *expected == presented => Ok(ServerCertVerified::assertion()),
            Check::Pinned(_) => {
                Err(rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure))
            }
            Check::AnyCertificate => Ok(ServerCertVerified::assertion()),
            Check::Chain(verifier) => {
                verifier.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_format_and_parse() {
        let fingerprint = Fingerprint::of_certificate(b"not really a certificate");
        let hex = fingerprint.to_string();
        assert_eq!(hex.len(), 64);
        assert_eq!(hex, hex.to_lowercase());
        assert_eq!(fingerprint.to_colon_hex().len(), 64 + 31);
        assert!(fingerprint.to_colon_hex().starts_with(&format!("{}:{}:", &hex[0..2], &hex[2..4])));
        for form in
            [hex.clone(), hex.to_uppercase(), fingerprint.to_colon_hex(), format!("sha256:{hex}"), format!("  {hex}\n")]
        {
            assert_eq!(form.parse::<Fingerprint>().unwrap(), fingerprint, "{form}");
        }
        for bad in ["", "abc", &hex[..62], &format!("{hex}00"), &hex.replace('a', "g")] {
            if bad == hex {
                continue;
            }
            assert!(matches!(bad.parse::<Fingerprint>(), Err(Error::InvalidFingerprint(_))), "{bad}");
        }
    }

    /// A self-signed certificate, its key, and a server config for it.
    fn server(name: &str) -> (Fingerprint, Arc<rustls::ServerConfig>) {
        let generated = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
        let der = generated.cert.der().clone();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(generated.signing_key.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![der.clone()], key)
            .unwrap();
        (Fingerprint::of_certificate(&der), Arc::new(config))
    }

    /// Runs a TLS handshake in memory; returns the client's error if any.
    fn handshake(client: &TlsSetup, server: Arc<rustls::ServerConfig>) -> Result<(), rustls::Error> {
        let name = ServerName::try_from("localhost").unwrap();
        let mut client = rustls::ClientConnection::new(client.config.clone(), name)?;
        let mut server = rustls::ServerConnection::new(server)?;
        let mut buffer = Vec::new();
        for _ in 0..10 {
            buffer.clear();
            while client.wants_write() {
                client.write_tls(&mut buffer).unwrap();
            }
            let mut input = &buffer[..];
            while !input.is_empty() {
                server.read_tls(&mut input).unwrap();
            }
            if let Err(error) = server.process_new_packets() {
                // Deliver the server's alert, then report what the client saw.
                buffer.clear();
                let _ = server.write_tls(&mut buffer);
                return Err(error);
            }
            buffer.clear();
            while server.wants_write() {
                server.write_tls(&mut buffer).unwrap();
            }
            let mut input = &buffer[..];
            while !input.is_empty() {
                client.read_tls(&mut input).unwrap();
            }
            client.process_new_packets()?;
            if !client.is_handshaking() && !server.is_handshaking() {
                return Ok(());
            }
        }
        panic!("the handshake did not finish");
    }

    #[test]
    fn pinning_accepts_exactly_the_pinned_certificate() {
        let (fingerprint, server_config) = server("localhost");
        let pinned = TlsSetup::new(&Trust::Fingerprint(fingerprint), &[], false).unwrap();
        handshake(&pinned, server_config.clone()).unwrap();
        assert_eq!(pinned.seen(), Some(fingerprint));

        let (other, _) = server("localhost");
        let wrong = TlsSetup::new(&Trust::Fingerprint(other), &[], false).unwrap();
        let error = handshake(&wrong, server_config).unwrap_err();
        assert!(matches!(error, rustls::Error::InvalidCertificate(_)), "{error}");
        match wrong.handshake_error(error) {
            Error::FingerprintMismatch { expected, presented } => {
                assert_eq!((expected, presented), (other, fingerprint));
            }
            other => panic!("expected a mismatch, got {other}"),
        }
    }

    #[test]
    fn trust_on_first_use_accepts_and_reports() {
        let (fingerprint, server_config) = server("localhost");
        let tofu = TlsSetup::new(&Trust::TrustOnFirstUse, &[b"confab/1"], true).unwrap();
        assert_eq!(tofu.seen(), None);
        handshake(&tofu, server_config).unwrap();
        assert_eq!(tofu.seen(), Some(fingerprint));
    }

    #[test]
    fn webpki_refuses_a_self_signed_certificate_but_reports_it() {
        let (fingerprint, server_config) = server("localhost");
        let webpki = TlsSetup::new(&Trust::WebPki, &[], false).unwrap();
        let error = handshake(&webpki, server_config).unwrap_err();
        assert!(matches!(error, rustls::Error::InvalidCertificate(_)), "{error}");
        assert_eq!(webpki.seen(), Some(fingerprint));
        assert!(matches!(webpki.handshake_error(error), Error::Tls(_)));
    }

    #[test]
    fn a_ca_file_trusts_the_certificates_it_issued() {
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap()).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf =
            rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap().signed_by(&leaf_key, &ca).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
        let server_config =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![leaf.der().clone()], key)
                .unwrap();

        let dir = std::env::temp_dir().join(format!("confab-sdk-tls-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ca.pem");
        std::fs::write(&path, ca.pem()).unwrap();
        let setup = TlsSetup::new(&Trust::CaFile(path.clone()), &[], false).unwrap();
        handshake(&setup, Arc::new(server_config)).unwrap();
        assert_eq!(setup.seen(), Some(Fingerprint::of_certificate(leaf.der())));

        std::fs::write(&path, "not pem").unwrap();
        let error = TlsSetup::new(&Trust::CaFile(path.clone()), &[], false).err().unwrap();
        assert!(error.to_string().contains("no PEM certificates"), "{error}");
        let missing = TlsSetup::new(&Trust::CaFile(dir.join("missing.pem")), &[], false).err().unwrap();
        assert!(missing.to_string().contains("cannot open CA file"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
