//! The rustls client configuration a node uses to reach another node's SSL or SASL_SSL
//! listener (Kafka's `SslFactory` in client mode, as `ChannelBuilders.clientChannelBuilder`
//! makes it for the inter-broker and controller listeners).
//!
//! The keys are the target listener's, resolved as for the server side
//! (`listener.name.<listener>.` first): the truststore verifies the other node's
//! certificate; the keystore, when one is configured, is offered as this node's client
//! certificate (what an `ssl.client.auth=required` listener asks for).
//! `ssl.endpoint.identification.algorithm` is `https` by default (the certificate must name
//! the host connected to, as Kafka checks since 2.0); empty turns the host name check off,
//! the chain is still verified.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::settings::ListenerKeys;
use super::tls;
use crate::config::ConfigError;

fn err(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Security {
        key: key.to_string(),
        message: message.into(),
    }
}

/// Whether the other node's certificate must name the host (`ssl.endpoint.identification.algorithm`).
fn verifies_host_name(keys: &ListenerKeys<'_>) -> Result<bool, ConfigError> {
    match keys.get("ssl.endpoint.identification.algorithm") {
        None => Ok(true),
        Some((_, value)) if value.trim().is_empty() => Ok(false),
        Some((_, value)) if value.trim().eq_ignore_ascii_case("https") => Ok(true),
        Some((key, value)) => Err(err(
            &key,
            format!(
                "unknown endpoint identification algorithm {value:?} (https, or empty for none)"
            ),
        )),
    }
}

/// The rustls client configuration for reaching listener `listener` of other nodes.
pub fn client_config(keys: &ListenerKeys<'_>, listener: &str) -> Result<ClientConfig, ConfigError> {
    // ring, as the server side (see `tls::server_config`).
    #[allow(deprecated)]
    let base = rustls::crypto::ring::default_provider();
    let suites = tls::cipher_suites(keys, &base.cipher_suites)?;
    let provider = Arc::new(CryptoProvider {
        cipher_suites: suites,
        ..base
    });
    let versions = tls::protocol_versions(keys)?;
    let Some(roots) = tls::truststore(keys)? else {
        return Err(err(
            "ssl.truststore.location",
            format!(
                "this node connects to the {listener} listener of other nodes over TLS and needs \
                 a truststore to verify them (ssl.truststore.location or \
                 ssl.truststore.certificates; Java's default CA list is not read here)"
            ),
        ));
    };
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| {
            err(
                "ssl.truststore.location",
                format!("cannot verify server certificates: {e}"),
            )
        })?;
    let verifier: Arc<dyn ServerCertVerifier> = if verifies_host_name(keys)? {
        webpki
    } else {
        Arc::new(AnyHostName(webpki))
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| {
            err(
                "ssl.cipher.suites",
                format!("no cipher suite left for the enabled protocols: {e}"),
            )
        })?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let has_keystore = keys.non_blank("ssl.keystore.location").is_some()
        || keys.non_blank("ssl.keystore.certificate.chain").is_some()
        || keys.non_blank("ssl.keystore.key").is_some();
    if !has_keystore {
        return Ok(builder.with_no_client_auth());
    }
    let (chain, key) = tls::keystore(keys)?;
    let key_name = keys
        .non_blank("ssl.keystore.location")
        .map_or_else(|| "ssl.keystore.key".to_string(), |(k, _)| k);
    builder.with_client_auth_cert(chain, key).map_err(|e| {
        err(
            &key_name,
            format!("unusable client certificate or key: {e}"),
        )
    })
}

/// The chain check of webpki without the host name check
/// (`ssl.endpoint.identification.algorithm=` empty, as Kafka allows).
#[derive(Debug)]
struct AnyHostName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyHostName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::config::SecurityProtocol;

    /// A CA and a server certificate for `localhost` only, as PEM: (ca, chain and key).
    fn pki() -> (String, String) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let server = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        let cert = server.signed_by(&key, &issuer).unwrap();
        (
            ca_cert.pem(),
            format!("{}{}", cert.pem(), key.serialize_pem()),
        )
    }

    /// Whether a client with `extra` keys completes a handshake with the server when it
    /// connects to 127.0.0.1 (an address the certificate does not name).
    async fn handshake(extra: &[(&str, &str)]) -> Result<(), String> {
        let (ca, server_pem) = pki();
        let dir = tempfile::tempdir().unwrap();
        let server_file = dir.path().join("server.pem");
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&server_file, server_pem).unwrap();
        std::fs::write(&ca_file, ca).unwrap();
        let mut props = BTreeMap::new();
        props.insert("ssl.keystore.type".to_string(), "PEM".to_string());
        props.insert(
            "ssl.keystore.location".to_string(),
            server_file.display().to_string(),
        );
        props.insert("ssl.truststore.type".to_string(), "PEM".to_string());
        props.insert(
            "ssl.truststore.location".to_string(),
            ca_file.display().to_string(),
        );
        for (k, v) in extra {
            props.insert(k.to_string(), v.to_string());
        }
        let keys = ListenerKeys::new(&props, "INTERNAL");
        let server = tls::server_config(&keys, SecurityProtocol::Ssl, "INTERNAL").unwrap();
        let client = client_config(&keys, "INTERNAL").map_err(|e| e.to_string())?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let (a, b) = tokio::io::duplex(64 * 1024);
        let served = tokio::spawn(async move {
            let mut tls = acceptor.accept(b).await.ok()?;
            let mut byte = [0u8; 1];
            tls.read_exact(&mut byte).await.ok()?;
            Some(byte[0])
        });
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let mut tls = connector
            .connect(name, a)
            .await
            .map_err(|e| e.to_string())?;
        tls.write_all(&[7]).await.map_err(|e| e.to_string())?;
        tls.flush().await.map_err(|e| e.to_string())?;
        assert_eq!(served.await.unwrap(), Some(7));
        Ok(())
    }

    #[tokio::test]
    async fn the_host_name_is_checked_unless_identification_is_off() {
        let refused = handshake(&[]).await.unwrap_err();
        assert!(refused.contains("not valid for name"), "{refused}");
        handshake(&[("ssl.endpoint.identification.algorithm", "")])
            .await
            .unwrap();
        let unknown = handshake(&[("ssl.endpoint.identification.algorithm", "ldaps")])
            .await
            .unwrap_err();
        assert!(
            unknown.contains("ssl.endpoint.identification.algorithm"),
            "{unknown}"
        );
    }

    #[test]
    fn a_tls_client_without_a_truststore_is_a_configuration_error() {
        let props = BTreeMap::new();
        let keys = ListenerKeys::new(&props, "CONTROLLER");
        let error = client_config(&keys, "CONTROLLER").unwrap_err().to_string();
        assert!(error.contains("ssl.truststore.location"), "{error}");
    }
}
