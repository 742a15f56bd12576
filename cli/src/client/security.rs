//! How `gregorctl` secures its connections: Kafka's client properties
//! (`--command-config FILE`, `--command-property KEY=VALUE`), TLS with rustls and the SASL
//! exchange ([`super::sasl`]).
//!
//! The keys are the Java client's: `security.protocol` (PLAINTEXT, SSL, SASL_PLAINTEXT,
//! SASL_SSL), `sasl.mechanism` (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) with the credentials in
//! `sasl.jaas.config` (`... username="u" password="p";`, as the Plain and Scram login
//! modules take them) or librdkafka's `sasl.username` / `sasl.password`; PEM trust and key
//! stores (`ssl.truststore.location` or `ssl.truststore.certificates`,
//! `ssl.keystore.location` holding the key and chain, or `ssl.keystore.certificate.chain`
//! with `ssl.keystore.key`), and `ssl.endpoint.identification.algorithm` (`https`, the
//! default, checks the broker's host name; empty checks only the chain).

use std::collections::BTreeMap;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::{Error, Result};

/// The SASL mechanisms `gregorctl` speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaslMechanism {
    /// RFC 4616.
    Plain,
    /// RFC 5802 / 7677 with SHA-256.
    ScramSha256,
    /// RFC 5802 with SHA-512.
    ScramSha512,
}

impl SaslMechanism {
    /// The mechanism's name in SaslHandshake.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// SASL settings: the mechanism and the credentials.
#[derive(Clone, Debug)]
pub struct Sasl {
    /// The mechanism.
    pub mechanism: SaslMechanism,
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
}

/// TLS settings: a rustls client configuration.
#[derive(Clone)]
pub struct Tls {
    /// The rustls configuration (trust, client certificate, host-name check).
    pub config: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").finish_non_exhaustive()
    }
}

/// How connections are secured; the default is PLAINTEXT.
#[derive(Clone, Debug, Default)]
pub struct Security {
    /// TLS, for SSL and SASL_SSL.
    pub tls: Option<Tls>,
    /// SASL, for SASL_PLAINTEXT and SASL_SSL.
    pub sasl: Option<Sasl>,
}

/// Reads Kafka's `key=value` properties text (`#` and `!` comments, blank lines).
pub fn parse_properties(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#') && !line.starts_with('!'))
        .filter_map(|line| {
            let (key, value) = line.split_once(['=', ':'])?;
            Some((key.trim().to_string(), value.trim().to_string()))
        })
        .collect()
}

impl Security {
    /// The settings the client properties `props` ask for.
    pub fn from_properties(props: &BTreeMap<String, String>) -> Result<Security> {
        let protocol = props
            .get("security.protocol")
            .map_or("PLAINTEXT", String::as_str)
            .to_ascii_uppercase();
        let (tls, sasl) = match protocol.as_str() {
            "PLAINTEXT" => (false, false),
            "SSL" => (true, false),
            "SASL_PLAINTEXT" => (false, true),
            "SASL_SSL" => (true, true),
            other => {
                return Err(Error::Usage(format!(
                    "security.protocol={other}: expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
                )));
            }
        };
        Ok(Security {
            tls: if tls { Some(tls_config(props)?) } else { None },
            sasl: if sasl {
                Some(sasl_config(props)?)
            } else {
                None
            },
        })
    }
}

fn sasl_config(props: &BTreeMap<String, String>) -> Result<Sasl> {
    let mechanism = match props.get("sasl.mechanism").map(String::as_str) {
        Some("PLAIN") => SaslMechanism::Plain,
        Some("SCRAM-SHA-256") => SaslMechanism::ScramSha256,
        Some("SCRAM-SHA-512") => SaslMechanism::ScramSha512,
        Some(other) => {
            return Err(Error::Usage(format!(
                "sasl.mechanism={other}: gregorctl speaks PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512"
            )));
        }
        None => {
            return Err(Error::Usage(
                "sasl.mechanism is needed with a SASL security.protocol (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)"
                    .into(),
            ));
        }
    };
    let jaas = props.get("sasl.jaas.config").map(|j| jaas_options(j));
    let pick = |jaas_key: &str, key: &str| {
        props
            .get(key)
            .cloned()
            .or_else(|| jaas.as_ref().and_then(|j| j.get(jaas_key).cloned()))
    };
    let (Some(username), Some(password)) = (
        pick("username", "sasl.username"),
        pick("password", "sasl.password"),
    ) else {
        return Err(Error::Usage(
            "SASL needs a user name and password: sasl.jaas.config with username=\"...\" password=\"...\", or sasl.username and sasl.password".into(),
        ));
    };
    Ok(Sasl {
        mechanism,
        username,
        password,
    })
}

/// The `key="value"` options of a JAAS line (`LoginModule required a="1" b="2";`).
fn jaas_options(text: &str) -> BTreeMap<String, String> {
    let mut options = BTreeMap::new();
    let mut rest = text;
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq]
            .split_whitespace()
            .last()
            .unwrap_or("")
            .to_string();
        let after = rest[eq + 1..].trim_start();
        let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (quoted[..end].to_string(), &quoted[end + 1..]),
                None => (quoted.to_string(), ""),
            }
        } else {
            let end = after
                .find(|c: char| c.is_whitespace() || c == ';')
                .unwrap_or(after.len());
            (after[..end].to_string(), &after[end..])
        };
        options.insert(key, value);
        rest = tail;
    }
    options
}

/// PEM text from `<prefix>.location` (a file) or inline in `inline_key`.
fn pem_source(
    props: &BTreeMap<String, String>,
    location_key: &str,
    inline_key: &str,
) -> Result<Option<Vec<u8>>> {
    if let Some(inline) = props.get(inline_key) {
        return Ok(Some(inline.as_bytes().to_vec()));
    }
    match props.get(location_key) {
        Some(path) => std::fs::read(path)
            .map(Some)
            .map_err(|e| Error::io(format!("{location_key}={path}"), e)),
        None => Ok(None),
    }
}

fn check_pem_type(props: &BTreeMap<String, String>, key: &str) -> Result<()> {
    match props.get(key).map(|t| t.to_ascii_uppercase()) {
        None => Ok(()),
        Some(t) if t == "PEM" => Ok(()),
        Some(t) => Err(Error::Usage(format!(
            "{key}={t}: gregorctl reads PEM stores only (convert with openssl or keytool)"
        ))),
    }
}

fn certificates(pem: &[u8], key: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::Usage(format!("{key}: not a PEM certificate list: {e}")))?;
    if certs.is_empty() {
        return Err(Error::Usage(format!("{key}: no CERTIFICATE in it")));
    }
    Ok(certs)
}

fn tls_config(props: &BTreeMap<String, String>) -> Result<Tls> {
    check_pem_type(props, "ssl.truststore.type")?;
    check_pem_type(props, "ssl.keystore.type")?;
    let trust = pem_source(props, "ssl.truststore.location", "ssl.truststore.certificates")?
        .ok_or_else(|| {
            Error::Usage(
                "SSL needs the CA certificates that signed the broker's: ssl.truststore.location (a PEM file) or ssl.truststore.certificates"
                    .into(),
            )
        })?;
    let mut roots = RootCertStore::empty();
    for cert in certificates(&trust, "ssl.truststore.location")? {
        roots
            .add(cert)
            .map_err(|e| Error::Usage(format!("ssl.truststore.location: {e}")))?;
    }
    // ring has no post-quantum key exchange (hence the deprecation); the broker uses the
    // same provider, and Kafka's JDK offers the classical groups.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Usage(format!("TLS: {e}")))?;
    let check_host = props
        .get("ssl.endpoint.identification.algorithm")
        .is_none_or(|a| !a.trim().is_empty());
    let roots = Arc::new(roots);
    let builder = if check_host {
        builder.with_root_certificates(roots)
    } else {
        let inner = WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|e| Error::Usage(format!("ssl.truststore.location: {e}")))?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnly(inner)))
    };
    let chain = match props.get("ssl.keystore.certificate.chain") {
        Some(inline) => Some(inline.as_bytes().to_vec()),
        None => pem_source(
            props,
            "ssl.keystore.location",
            "ssl.keystore.location.inline",
        )?,
    };
    let config = match chain {
        None => builder.with_no_client_auth(),
        Some(chain_pem) => {
            let key_pem = props
                .get("ssl.keystore.key")
                .map_or_else(|| chain_pem.clone(), |k| k.as_bytes().to_vec());
            let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
                Error::Usage(format!(
                    "ssl.keystore: no unencrypted PRIVATE KEY in it ({e}); encrypted keys are not read by gregorctl"
                ))
            })?;
            builder
                .with_client_auth_cert(certificates(&chain_pem, "ssl.keystore")?, key)
                .map_err(|e| Error::Usage(format!("ssl.keystore: {e}")))?
        }
    };
    Ok(Tls {
        config: Arc::new(config),
    })
}

/// A verifier that checks the chain and signatures but not the host name
/// (`ssl.endpoint.identification.algorithm=` empty, as Kafka's clients allow).
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
                ..
            })) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaas_lines_give_their_options() {
        let options = jaas_options(
            r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="s e=cret";"#,
        );
        assert_eq!(options.get("username").map(String::as_str), Some("alice"));
        assert_eq!(
            options.get("password").map(String::as_str),
            Some("s e=cret")
        );
    }

    #[test]
    fn protocols_and_their_errors() {
        let props = |text: &str| parse_properties(text);
        let plain = Security::from_properties(&props("")).expect("plaintext");
        assert!(plain.tls.is_none() && plain.sasl.is_none());
        let sasl = Security::from_properties(&props(
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\nsasl.username=u\nsasl.password=p",
        ))
        .expect("sasl");
        assert_eq!(
            sasl.sasl.expect("sasl").mechanism,
            SaslMechanism::ScramSha512
        );
        for (text, needle) in [
            ("security.protocol=TLS", "security.protocol=TLS"),
            ("security.protocol=SSL", "ssl.truststore.location"),
            (
                "security.protocol=SASL_PLAINTEXT",
                "sasl.mechanism is needed",
            ),
            (
                "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=GSSAPI",
                "sasl.mechanism=GSSAPI",
            ),
            (
                "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN",
                "user name and password",
            ),
            (
                "security.protocol=SSL\nssl.truststore.type=JKS\nssl.truststore.location=x",
                "PEM stores only",
            ),
        ] {
            let error = Security::from_properties(&props(text))
                .expect_err(text)
                .to_string();
            assert!(error.contains(needle), "{text}: {error}");
        }
    }
}
