//! go-plugin's AutoMTLS: both ends use throw-away self-signed certificates and trust
//! exactly the other's.
//!
//! The server hands its certificate over in `PLUGIN_CLIENT_CERT`; the plugin makes its own
//! for each process and publishes it in the handshake line. Each side then accepts only
//! the certificate it was given, byte for byte (a CA certificate used as its own leaf is
//! something webpki's verifier rightly refuses, so the pinning verifier below replaces it;
//! signatures are still checked). rustls runs on aws-lc-rs, which verifies the server's
//! P-521 certificate; ALPN is `h2`, which grpc-go insists on.

use anyhow::Context;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, ServerConfig,
    SignatureScheme,
};
use std::sync::Arc;

/// The plugin's certificate and key for this process.
pub struct Identity {
    pub cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

/// A P-256 key made and used with RustCrypto: signing is deterministic (RFC 6979) and the
/// key comes from the OS, so making the certificate does not wait for AWS-LC to seed its
/// random generator (tens of milliseconds, once per process), which would delay the
/// handshake line. AWS-LC still does all TLS.
struct SigningKey {
    key: p256::ecdsa::SigningKey,
    public: Vec<u8>,
}

impl rcgen::PublicKeyData for SigningKey {
    fn der_bytes(&self) -> &[u8] {
        &self.public
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

impl rcgen::SigningKey for SigningKey {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        use p256::ecdsa::signature::Signer;
        let signature: p256::ecdsa::DerSignature = self.key.sign(message);
        Ok(signature.as_bytes().to_vec())
    }
}

impl Identity {
    /// A fresh P-256 certificate for `localhost`, usable as server, client and its own CA.
    pub fn generate() -> anyhow::Result<Identity> {
        use p256::pkcs8::EncodePrivateKey;
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
            KeyUsagePurpose,
        };
        let key = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
        let public = key
            .verifying_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec();
        let pkcs8 = key.to_pkcs8_der()?.as_bytes().to_vec();
        let signer = SigningKey { key, public };
        let mut params = CertificateParams::new(vec!["localhost".to_string()])?;
        let mut serial = [0u8; 16];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut serial);
        serial[0] &= 0x7f;
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
            KeyUsagePurpose::KeyCertSign,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.self_signed(&signer)?;
        Ok(Identity {
            cert: cert.der().clone(),
            key: PrivatePkcs8KeyDer::from(pkcs8),
        })
    }

    fn chain_and_key(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        (
            vec![self.cert.clone()],
            PrivateKeyDer::Pkcs8(self.key.clone_key()),
        )
    }
}

/// Seed AWS-LC's random generator in the background, so that the first TLS handshake with
/// the server does not wait for it.
pub fn warm_up() {
    std::thread::spawn(|| {
        let mut byte = [0u8; 1];
        let _ = provider().secure_random.fill(&mut byte);
    });
}

/// The server's certificate from `PLUGIN_CLIENT_CERT` (PEM).
pub fn parse_host_cert(pem: &str) -> anyhow::Result<CertificateDer<'static>> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .context("PLUGIN_CLIENT_CERT is not a PEM certificate")
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Accepts exactly one certificate, in either direction.
#[derive(Debug)]
struct Pinned {
    cert: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl Pinned {
    fn new(cert: CertificateDer<'static>) -> Arc<Pinned> {
        Arc::new(Pinned {
            cert,
            algorithms: provider().signature_verification_algorithms,
        })
    }

    fn check(&self, presented: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        if presented.as_ref() == self.cert.as_ref() {
            Ok(())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            ))
        }
    }
}

impl ClientCertVerifier for Pinned {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity)
            .map(|()| ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity)
            .map(|()| ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// For the plugin's own listener: requires the server's certificate from its clients.
pub fn server_config(
    identity: &Identity,
    host_cert: &CertificateDer<'static>,
) -> anyhow::Result<Arc<ServerConfig>> {
    let (chain, key) = identity.chain_and_key();
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(Pinned::new(host_cert.clone()))
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// For dialling back to the server through the broker.
pub fn client_config(
    identity: &Identity,
    host_cert: &CertificateDer<'static>,
) -> anyhow::Result<Arc<ClientConfig>> {
    let (chain, key) = identity.chain_and_key();
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Pinned::new(host_cert.clone()))
        .with_client_auth_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server and a client that pin each other complete a handshake; a stranger does not.
    #[tokio::test]
    async fn each_side_accepts_only_the_pinned_certificate() {
        let (server, client, stranger) = (
            Identity::generate().unwrap(),
            Identity::generate().unwrap(),
            Identity::generate().unwrap(),
        );
        let acceptor =
            tokio_rustls::TlsAcceptor::from(server_config(&server, &client.cert).unwrap());
        let connect = |who: &Identity| {
            let config = client_config(who, &server.cert).unwrap();
            let acceptor = acceptor.clone();
            async move {
                let (a, b) = tokio::io::duplex(16 * 1024);
                let accepted = tokio::spawn(async move {
                    let mut tls = acceptor.accept(a).await?;
                    tls.write_all(b"ok").await?;
                    tls.flush().await?;
                    Ok::<_, std::io::Error>(tls)
                });
                let name = ServerName::try_from("localhost").unwrap();
                let mut tls = tokio_rustls::TlsConnector::from(config)
                    .connect(name, b)
                    .await?;
                let mut buf = [0u8; 2];
                tls.read_exact(&mut buf).await?;
                let server_side = accepted.await.unwrap()?;
                assert_eq!(server_side.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
                Ok::<_, std::io::Error>(buf)
            }
        };
        assert_eq!(&connect(&client).await.unwrap(), b"ok");
        assert!(connect(&stranger).await.is_err());
    }

    #[test]
    fn reads_the_hosts_pem() {
        let identity = Identity::generate().unwrap();
        let pem = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                identity.cert.as_ref()
            )
        );
        assert_eq!(parse_host_cert(&pem).unwrap(), identity.cert);
        assert!(parse_host_cert("garbage").is_err());
    }
}
