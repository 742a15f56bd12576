//! The rustls server configuration of an SSL or SASL_SSL listener, from Kafka's `ssl.*` keys
//! (Kafka's `DefaultSslEngineFactory`).
//!
//! - Keystore: `ssl.keystore.type` `PEM` (certificate chain and private key in the file at
//!   `ssl.keystore.location`, or inline in `ssl.keystore.certificate.chain` and
//!   `ssl.keystore.key`; an encrypted PKCS#8 key is decrypted with `ssl.key.password`) or
//!   `PKCS12` (`ssl.keystore.location`, `ssl.keystore.password`). Kafka's default type, JKS,
//!   is a Java format this broker does not read: the error says to convert it.
//! - Truststore (the CAs client certificates must chain to): `ssl.truststore.type` `PEM`
//!   (`ssl.truststore.location` or inline `ssl.truststore.certificates`) or `PKCS12`.
//! - `ssl.client.auth`: `none`, `requested` (a certificate is asked for, a client without
//!   one is anonymous) or `required` (the handshake fails without a valid certificate).
//!   On a SASL_SSL listener only the listener-prefixed key counts, as in Kafka.
//! - `ssl.enabled.protocols` (`TLSv1.2`, `TLSv1.3`; Kafka's default is both) and
//!   `ssl.cipher.suites` (IANA names, as Java names them; empty for all).

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedCipherSuite};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::settings::ListenerKeys;
use crate::config::{ConfigError, SecurityProtocol};

/// `ssl.client.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate is asked for.
    None,
    /// Asked for, not required.
    Requested,
    /// Required.
    Required,
}

fn err(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Security {
        key: key.to_string(),
        message: message.into(),
    }
}

/// The IANA names of the cipher suites rustls (with ring) implements, Java's names too.
const SUITES: &[(&str, rustls::CipherSuite)] = &[
    (
        "TLS_AES_128_GCM_SHA256",
        rustls::CipherSuite::TLS13_AES_128_GCM_SHA256,
    ),
    (
        "TLS_AES_256_GCM_SHA384",
        rustls::CipherSuite::TLS13_AES_256_GCM_SHA384,
    ),
    (
        "TLS_CHACHA20_POLY1305_SHA256",
        rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        rustls::CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
];

/// The cipher suites of `ssl.cipher.suites` (all of the provider's when blank).
pub(super) fn cipher_suites(
    keys: &ListenerKeys<'_>,
    all: &[SupportedCipherSuite],
) -> Result<Vec<SupportedCipherSuite>, ConfigError> {
    let Some((key, value)) = keys.non_blank("ssl.cipher.suites") else {
        return Ok(all.to_vec());
    };
    let mut out = Vec::new();
    for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let suite = SUITES
            .iter()
            .find(|(iana, _)| iana.eq_ignore_ascii_case(name))
            .and_then(|(_, id)| all.iter().find(|s| s.suite() == *id));
        match suite {
            Some(suite) => out.push(*suite),
            None => {
                let known: Vec<&str> = SUITES.iter().map(|(n, _)| *n).collect();
                return Err(err(
                    &key,
                    format!(
                        "cipher suite {name} is not supported (supported: {})",
                        known.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(out)
}

/// The TLS versions of `ssl.enabled.protocols`.
pub(super) fn protocol_versions(
    keys: &ListenerKeys<'_>,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, ConfigError> {
    let Some((key, value)) = keys.non_blank("ssl.enabled.protocols") else {
        return Ok(vec![&rustls::version::TLS13, &rustls::version::TLS12]);
    };
    let mut out = Vec::new();
    for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match name {
            "TLSv1.3" => out.push(&rustls::version::TLS13),
            "TLSv1.2" => out.push(&rustls::version::TLS12),
            "TLSv1" | "TLSv1.1" | "SSLv3" => tracing::warn!(
                "{key}: {name} is not supported (obsolete, and disabled by current JDKs too); \
                 ignoring it"
            ),
            other => {
                return Err(err(
                    &key,
                    format!("unknown protocol {other} (expected TLSv1.2 or TLSv1.3)"),
                ));
            }
        }
    }
    if out.is_empty() {
        return Err(err(
            &key,
            "no supported protocol enabled (TLSv1.2, TLSv1.3)",
        ));
    }
    Ok(out)
}

/// `ssl.client.auth` of this listener.
pub fn client_auth(
    keys: &ListenerKeys<'_>,
    protocol: SecurityProtocol,
) -> Result<ClientAuth, ConfigError> {
    // ChannelBuilders: on SASL_SSL only the listener-prefixed ssl.client.auth applies.
    let found = if protocol == SecurityProtocol::SaslSsl {
        keys.get_prefixed("ssl.client.auth")
    } else {
        keys.get("ssl.client.auth")
    };
    let Some((key, value)) = found else {
        return Ok(ClientAuth::None);
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "none" | "" => Ok(ClientAuth::None),
        "requested" => Ok(ClientAuth::Requested),
        "required" => Ok(ClientAuth::Required),
        _ => Err(ConfigError::InvalidValue {
            key,
            value: value.to_string(),
            expected: "one of required, requested, none".to_string(),
        }),
    }
}

fn store_type(keys: &ListenerKeys<'_>, key: &str) -> Result<(String, String), ConfigError> {
    let (written, value) = keys
        .non_blank(key)
        .unwrap_or_else(|| (key.to_string(), "JKS"));
    let upper = value.trim().to_ascii_uppercase();
    match upper.as_str() {
        "PEM" | "PKCS12" => Ok((written, upper)),
        "JKS" => Err(err(
            &written,
            format!(
                "JKS{} is a Java keystore format this broker does not read; convert it with \
                 `keytool -importkeystore -deststoretype PKCS12` and set {key}=PKCS12, or use PEM",
                if keys.non_blank(key).is_none() {
                    " (Kafka's default)"
                } else {
                    ""
                }
            ),
        )),
        other => Err(err(
            &written,
            format!("unsupported store type {other} (expected PEM or PKCS12)"),
        )),
    }
}

fn read_file(key: &str, path: &str) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path.trim()).map_err(|e| err(key, format!("cannot read {}: {e}", path.trim())))
}

fn pem_certs(key: &str, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem).collect();
    let certs = certs.map_err(|e| err(key, format!("invalid PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(err(
            key,
            "no PEM certificate (-----BEGIN CERTIFICATE-----) found",
        ));
    }
    Ok(certs)
}

fn pem_key(
    key: &str,
    pem: &[u8],
    password: Option<(String, &str)>,
) -> Result<PrivateKeyDer<'static>, ConfigError> {
    let text = String::from_utf8_lossy(pem);
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        let Some((_, password)) = password else {
            return Err(err(
                key,
                "the private key is encrypted but ssl.key.password is not set",
            ));
        };
        let (label, der) = pkcs8::der::pem::decode_vec(text.trim().as_bytes())
            .map_err(|e| err(key, format!("invalid PEM private key: {e}")))?;
        if label != "ENCRYPTED PRIVATE KEY" {
            return Err(err(key, format!("unexpected PEM block {label}")));
        }
        let info = pkcs8::EncryptedPrivateKeyInfo::try_from(der.as_slice())
            .map_err(|e| err(key, format!("invalid encrypted private key: {e}")))?;
        let plain = info.decrypt(password).map_err(|e| {
            err(
                key,
                format!("the private key could not be decrypted with ssl.key.password: {e}"),
            )
        })?;
        return Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            plain.as_bytes().to_vec(),
        )));
    }
    PrivateKeyDer::from_pem_slice(pem)
        .map_err(|e| err(key, format!("no usable PEM private key found: {e}")))
}

/// The certificate chain and private key of the keystore.
pub(super) fn keystore(
    keys: &ListenerKeys<'_>,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), ConfigError> {
    let location = keys.non_blank("ssl.keystore.location");
    if location.is_none()
        && keys.non_blank("ssl.keystore.certificate.chain").is_none()
        && keys.non_blank("ssl.keystore.key").is_none()
    {
        return Err(err(
            "ssl.keystore.location",
            "a TLS listener needs a keystore: ssl.keystore.location, or \
             ssl.keystore.certificate.chain and ssl.keystore.key",
        ));
    }
    let (type_key, kind) = store_type(keys, "ssl.keystore.type")?;
    let password = keys.get("ssl.key.password");
    match kind.as_str() {
        "PEM" => {
            let chain = keys.non_blank("ssl.keystore.certificate.chain");
            let inline_key = keys.non_blank("ssl.keystore.key");
            match (chain, inline_key, location) {
                (Some((chain_key, chain)), Some((key_key, key)), None) => Ok((
                    pem_certs(&chain_key, chain.as_bytes())?,
                    pem_key(&key_key, key.as_bytes(), password)?,
                )),
                (None, None, Some((key, path))) => {
                    let pem = read_file(&key, path)?;
                    Ok((pem_certs(&key, &pem)?, pem_key(&key, &pem, password)?))
                }
                (None, None, None) => Err(err(
                    "ssl.keystore.location",
                    "a TLS listener needs a keystore: ssl.keystore.location, or \
                     ssl.keystore.certificate.chain and ssl.keystore.key",
                )),
                (Some(_), Some(_), Some((key, _))) => Err(err(
                    &key,
                    "set either ssl.keystore.location or the inline ssl.keystore.certificate.chain \
                     and ssl.keystore.key, not both",
                )),
                (Some((k, _)), None, _) | (None, Some((k, _)), _) => Err(err(
                    &k,
                    "ssl.keystore.certificate.chain and ssl.keystore.key go together",
                )),
            }
        }
        _ => {
            let Some((key, path)) = location else {
                return Err(err(
                    "ssl.keystore.location",
                    format!("{type_key}=PKCS12 needs ssl.keystore.location"),
                ));
            };
            let data = read_file(&key, path)?;
            let store_password = keys.get("ssl.keystore.password").map_or("", |(_, v)| v);
            let store = p12_keystore::KeyStore::from_pkcs12(&data, store_password)
                .map_err(|e| err(&key, format!("cannot read the PKCS12 keystore: {e}")))?;
            let Some((_, chain)) = store.private_key_chain() else {
                return Err(err(&key, "the PKCS12 keystore holds no private key entry"));
            };
            let certs = chain
                .chain()
                .iter()
                .map(|c| CertificateDer::from(c.as_der().to_vec()))
                .collect();
            let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(chain.key().to_vec()));
            Ok((certs, key_der))
        }
    }
}

/// The CAs of the truststore, if one is configured.
pub(super) fn truststore(keys: &ListenerKeys<'_>) -> Result<Option<RootCertStore>, ConfigError> {
    let location = keys.non_blank("ssl.truststore.location");
    let inline = keys.non_blank("ssl.truststore.certificates");
    if location.is_none() && inline.is_none() {
        return Ok(None);
    }
    let (_, kind) = store_type(keys, "ssl.truststore.type")?;
    let (key, certs) = match (inline, location) {
        (Some((key, pem)), None) => {
            let certs = pem_certs(&key, pem.as_bytes())?;
            (key, certs)
        }
        (None, Some((key, path))) => {
            let data = read_file(&key, path)?;
            let certs = if kind == "PEM" {
                pem_certs(&key, &data)?
            } else {
                let password = keys.get("ssl.truststore.password").map_or("", |(_, v)| v);
                let store = p12_keystore::KeyStore::from_pkcs12(&data, password)
                    .map_err(|e| err(&key, format!("cannot read the PKCS12 truststore: {e}")))?;
                let mut certs = Vec::new();
                for (_, entry) in store.entries() {
                    match entry {
                        p12_keystore::KeyStoreEntry::Certificate(c) => {
                            certs.push(CertificateDer::from(c.as_der().to_vec()))
                        }
                        p12_keystore::KeyStoreEntry::PrivateKeyChain(chain) => certs.extend(
                            chain
                                .chain()
                                .iter()
                                .map(|c| CertificateDer::from(c.as_der().to_vec())),
                        ),
                        p12_keystore::KeyStoreEntry::Secret(_) => {}
                    }
                }
                if certs.is_empty() {
                    return Err(err(&key, "the PKCS12 truststore holds no certificate"));
                }
                certs
            };
            (key, certs)
        }
        (Some(_), Some((key, _))) => {
            return Err(err(
                &key,
                "set either ssl.truststore.location or ssl.truststore.certificates, not both",
            ));
        }
        (None, None) => unreachable!("checked above"),
    };
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| err(&key, format!("unusable trusted certificate: {e}")))?;
    }
    Ok(Some(roots))
}

/// The rustls configuration of listener `listener`.
pub fn server_config(
    keys: &ListenerKeys<'_>,
    protocol: SecurityProtocol,
    listener: &str,
) -> Result<ServerConfig, ConfigError> {
    // ring has no post-quantum key exchange (hence the deprecation); aws-lc-rs has, but
    // needs cmake and a much longer build. The classical groups are what Kafka's JDK offers.
    #[allow(deprecated)]
    let base = rustls::crypto::ring::default_provider();
    let suites = cipher_suites(keys, &base.cipher_suites)?;
    let provider = Arc::new(CryptoProvider {
        cipher_suites: suites,
        ..base
    });
    let versions = protocol_versions(keys)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| {
            err(
                "ssl.cipher.suites",
                format!("no cipher suite left for the enabled protocols: {e}"),
            )
        })?;
    let auth = client_auth(keys, protocol)?;
    let roots = truststore(keys)?;
    let builder = match (auth, roots) {
        (ClientAuth::None, _) => builder.with_no_client_auth(),
        (_, None) => {
            return Err(err(
                "ssl.truststore.location",
                format!(
                    "ssl.client.auth is {} on listener {listener} but no truststore is set \
                     (ssl.truststore.location or ssl.truststore.certificates)",
                    if auth == ClientAuth::Required {
                        "required"
                    } else {
                        "requested"
                    }
                ),
            ));
        }
        (_, Some(roots)) => {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let verifier = if auth == ClientAuth::Requested {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier.build().map_err(|e| {
                err(
                    "ssl.truststore.location",
                    format!("cannot verify client certificates: {e}"),
                )
            })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let (chain, key) = keystore(keys)?;
    let key_name = keys
        .non_blank("ssl.keystore.location")
        .map_or_else(|| "ssl.keystore.key".to_string(), |(k, _)| k);
    builder
        .with_single_cert(chain, key)
        .map_err(|e| err(&key_name, format!("unusable certificate or key: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PKCS#8 key encrypted with PBES2 (PBKDF2-SHA256, AES-256-CBC), as `openssl pkcs8
    /// -topk8 -v2 aes256` writes it, in PEM.
    fn encrypted_pem(password: &str) -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let der = key.serialize_der();
        let info = pkcs8::PrivateKeyInfo::try_from(der.as_slice()).unwrap();
        let params =
            pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(2048, b"saltsalt", &[7; 16])
                .unwrap();
        let encrypted = info.encrypt_with_params(params, password).unwrap();
        pkcs8::der::pem::encode_string(
            "ENCRYPTED PRIVATE KEY",
            pkcs8::der::pem::LineEnding::LF,
            encrypted.as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn encrypted_pem_keys_take_ssl_key_password() {
        let pem = encrypted_pem("key-secret");
        let password = Some(("ssl.key.password".to_string(), "key-secret"));
        assert!(matches!(
            pem_key("ssl.keystore.key", pem.as_bytes(), password),
            Ok(PrivateKeyDer::Pkcs8(_))
        ));
        let wrong = Some(("ssl.key.password".to_string(), "nope"));
        let err = pem_key("ssl.keystore.key", pem.as_bytes(), wrong).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("ssl.keystore.key: the private key could not be decrypted"),
            "{err}"
        );
        let err = pem_key("ssl.keystore.key", pem.as_bytes(), None).unwrap_err();
        assert!(
            err.to_string().contains("ssl.key.password is not set"),
            "{err}"
        );
    }

    #[test]
    fn cipher_suites_and_protocols_map_kafka_names() {
        let props = std::collections::BTreeMap::from([
            (
                "ssl.cipher.suites".to_string(),
                "TLS_AES_256_GCM_SHA384, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".to_string(),
            ),
            (
                "ssl.enabled.protocols".to_string(),
                "TLSv1.2,TLSv1".to_string(),
            ),
        ]);
        let keys = ListenerKeys::new(&props, "SSL");
        #[allow(deprecated)]
        let all = rustls::crypto::ring::default_provider().cipher_suites;
        let suites = cipher_suites(&keys, &all).unwrap();
        assert_eq!(
            suites.iter().map(|s| s.suite()).collect::<Vec<_>>(),
            [
                rustls::CipherSuite::TLS13_AES_256_GCM_SHA384,
                rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
            ]
        );
        assert_eq!(protocol_versions(&keys).unwrap().len(), 1);
        let props = std::collections::BTreeMap::from([(
            "listener.name.ssl.ssl.cipher.suites".to_string(),
            "TLS_RSA_WITH_NULL_SHA".to_string(),
        )]);
        let err = cipher_suites(&ListenerKeys::new(&props, "SSL"), &all).unwrap_err();
        assert!(err.to_string().starts_with(
            "listener.name.ssl.ssl.cipher.suites: cipher suite TLS_RSA_WITH_NULL_SHA is not supported"
        ), "{err}");
    }
}
