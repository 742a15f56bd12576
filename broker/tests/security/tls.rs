//! SSL listeners with the real clients: server-only TLS, mutual TLS with the principal from
//! the client certificate, a client without a (valid) certificate refused, PKCS12 stores.

use std::time::Duration;

use crate::SecureBroker;
use crate::support::{Broker, Json, kcat, python};

/// Asserts a secure_roundtrip driver produced and consumed (as a group) all `count` records.
pub fn assert_roundtrip(output: &crate::support::ClientOutput, tag: &str, count: usize) {
    output.assert_success();
    let json = output.json();
    let consumed: Vec<String> = json
        .get("consumed")
        .and_then(Json::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let expected: Vec<String> = (0..count).map(|i| format!("{tag}-{i}")).collect();
    let mut sorted = consumed.clone();
    sorted.sort_by_key(|v| v.rsplit('-').next().and_then(|n| n.parse::<usize>().ok()));
    assert_eq!(sorted, expected, "{output:?}");
    let committed = json
        .get("committed")
        .and_then(|c| c.get("0"))
        .and_then(Json::as_i64);
    assert!(
        committed.is_some_and(|c| c >= count as i64),
        "committed offset: {json:?}"
    );
}

fn driver_args<'a>(bootstrap: &'a str, tag: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--bootstrap",
        bootstrap,
        "--topic",
        "secure",
        "--count",
        "20",
        "--tag",
        tag,
        "--group",
        tag,
        "--timeout",
        "60",
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn ssl_listener_serves_kcat_confluent_kafka_and_kafka_python() {
    let b = SecureBroker::start(&[]);
    let bootstrap = b.ssl.to_string();
    let ca = b.pki.path("ca.pem");
    let tls = ["--security-protocol", "SSL", "--ca", ca.as_str()];
    for (driver, tag) in [
        ("secure_roundtrip_confluent.py", "ssl-confluent"),
        ("secure_roundtrip_kafka_python.py", "ssl-kafka-python"),
    ] {
        let Some(out) = python(driver, &driver_args(&bootstrap, tag, &tls)) else {
            return;
        };
        assert_roundtrip(&out, tag, 20);
    }
    // kcat (librdkafka 2.0.2): produce lines from a file, read them back.
    let input = b.pki.dir().join("kcat-input.txt");
    std::fs::write(&input, "kcat-0\nkcat-1\nkcat-2\n").unwrap();
    let input = input.to_string_lossy().into_owned();
    let ssl = ["-X", "security.protocol=SSL", "-X"];
    let ca_opt = format!("ssl.ca.location={ca}");
    let produce = [
        &ssl[..],
        &[
            ca_opt.as_str(),
            "-b",
            &bootstrap,
            "-P",
            "-t",
            "secure",
            "-l",
            &input,
        ],
    ]
    .concat();
    let Some(out) = kcat(&produce) else { return };
    out.assert_success();
    let consume = [
        &ssl[..],
        &[
            ca_opt.as_str(),
            "-b",
            &bootstrap,
            "-C",
            "-t",
            "secure",
            "-o",
            "beginning",
            "-e",
            "-f",
            "%s\\n",
        ],
    ]
    .concat();
    let out = kcat(&consume).expect("kcat");
    out.assert_success();
    let lines: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("kcat-"))
        .collect();
    assert_eq!(lines, ["kcat-0", "kcat-1", "kcat-2"], "{out:?}");
    // A client speaking plain TCP to the TLS port gets a TLS alert (content type 21), no
    // Kafka response, and the connection is closed.
    let mut raw = crate::support::RawClient::connect(b.ssl).unwrap();
    raw.send(&crate::support_api_versions(), 3).unwrap();
    let mut answer = Vec::new();
    raw.stream()
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let _ = std::io::Read::read_to_end(raw.stream(), &mut answer);
    assert_eq!(answer.first(), Some(&21), "{answer:?}");
}

#[test]
fn mutual_tls_maps_the_client_certificate_to_the_principal() {
    let b = SecureBroker::start(&[]);
    let bootstrap = b.mtls.to_string();
    let (ca, cert, key) = (
        b.pki.path("ca.pem"),
        b.pki.path("client-cert.pem"),
        b.pki.path("client-key.pem"),
    );
    let tls = [
        "--security-protocol",
        "SSL",
        "--ca",
        ca.as_str(),
        "--cert",
        cert.as_str(),
        "--key",
        key.as_str(),
    ];
    for (driver, tag) in [
        ("secure_roundtrip_confluent.py", "mtls-confluent"),
        ("secure_roundtrip_kafka_python.py", "mtls-kafka-python"),
    ] {
        let Some(out) = python(driver, &driver_args(&bootstrap, tag, &tls)) else {
            return;
        };
        assert_roundtrip(&out, tag, 20);
    }
    // RULE:^CN=([^,]*),OU=eng,.*$/$1/L on CN=Alice,OU=eng,O=acme.
    assert!(
        b.broker
            .wait_for_log("on MTLS is User:alice", Duration::from_secs(10))
            .is_some(),
        "{}",
        b.broker.log_text()
    );
    // Server-only TLS leaves the connection anonymous: no principal line for SSL.
    assert!(!b.broker.log_text().contains("on SSL is User:"));
}

#[test]
fn mutual_tls_without_a_trusted_client_certificate_serves_nothing() {
    let b = SecureBroker::start(&[]);
    let bootstrap = b.mtls.to_string();
    let ca = b.pki.path("ca.pem");
    let (other_cert, other_key) = (
        b.pki.path("other-client-cert.pem"),
        b.pki.path("other-client-key.pem"),
    );
    let none = ["--security-protocol", "SSL", "--ca", ca.as_str()];
    let untrusted = [
        "--security-protocol",
        "SSL",
        "--ca",
        ca.as_str(),
        "--cert",
        other_cert.as_str(),
        "--key",
        other_key.as_str(),
    ];
    for driver in [
        "secure_roundtrip_confluent.py",
        "secure_roundtrip_kafka_python.py",
    ] {
        for tls in [&none[..], &untrusted[..]] {
            let mut args = vec![
                "--bootstrap",
                bootstrap.as_str(),
                "--metadata-only",
                "--timeout",
                "15",
            ];
            args.extend_from_slice(tls);
            let Some(out) = python(driver, &args) else {
                return;
            };
            assert!(
                !out.success(),
                "{driver} was served without a trusted certificate: {out:?}"
            );
            assert!(!out.stdout.contains("\"topics\""), "{out:?}");
        }
    }
    assert!(
        b.broker
            .wait_for_log("TLS handshake with", Duration::from_secs(10))
            .is_some()
    );
}

#[test]
fn pkcs12_keystore_and_truststore_serve_mutual_tls() {
    let pki = crate::pki::Pki::generate();
    // The server's key and chain, and the CA, as PKCS12 files (what keytool and openssl write).
    let mut keystore = p12_keystore::KeyStore::new();
    let chain = p12_keystore::PrivateKeyChain::new(
        &pki.server_key_der,
        [1u8, 2, 3, 4],
        [
            p12_keystore::Certificate::from_der(&pki.server_cert_der).unwrap(),
            p12_keystore::Certificate::from_der(&pki.ca_der).unwrap(),
        ],
    );
    keystore.add_entry(
        "gregor",
        p12_keystore::KeyStoreEntry::PrivateKeyChain(chain),
    );
    let keystore_path = pki.dir().join("server.p12");
    std::fs::write(
        &keystore_path,
        keystore.writer("store-secret").write().unwrap(),
    )
    .unwrap();
    let mut truststore = p12_keystore::KeyStore::new();
    truststore.add_entry(
        "ca",
        p12_keystore::KeyStoreEntry::Certificate(
            p12_keystore::Certificate::from_der(&pki.ca_der).unwrap(),
        ),
    );
    let truststore_path = pki.dir().join("trust.p12");
    std::fs::write(
        &truststore_path,
        truststore.writer("trust-secret").write().unwrap(),
    )
    .unwrap();

    let data = crate::support::DataDir::builder()
        .topic(crate::support::TopicSpec::new("secure", 1))
        .build();
    let port = crate::support::free_port();
    let listeners = format!(
        "PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{},SSL://127.0.0.1:{port}",
        data.ports.plaintext, data.ports.controller
    );
    let advertised = format!(
        "PLAINTEXT://127.0.0.1:{},SSL://127.0.0.1:{port}",
        data.ports.plaintext
    );
    let (ks, ts) = (
        keystore_path.to_string_lossy().into_owned(),
        truststore_path.to_string_lossy().into_owned(),
    );
    let broker = Broker::start_with(
        &data,
        &[
            ("listeners", &listeners),
            ("advertised.listeners", &advertised),
            ("ssl.keystore.type", "PKCS12"),
            ("ssl.keystore.location", &ks),
            ("ssl.keystore.password", "store-secret"),
            ("ssl.truststore.type", "PKCS12"),
            ("ssl.truststore.location", &ts),
            ("ssl.truststore.password", "trust-secret"),
            ("ssl.client.auth", "required"),
            ("ssl.enabled.protocols", "TLSv1.3"),
        ],
    );
    let bootstrap = format!("127.0.0.1:{port}");
    let (ca, cert, key) = (
        pki.path("ca.pem"),
        pki.path("client-cert.pem"),
        pki.path("client-key.pem"),
    );
    let args = [
        "--bootstrap",
        bootstrap.as_str(),
        "--metadata-only",
        "--security-protocol",
        "SSL",
        "--ca",
        ca.as_str(),
        "--cert",
        cert.as_str(),
        "--key",
        key.as_str(),
    ];
    let Some(out) = python("secure_roundtrip_kafka_python.py", &args) else {
        return;
    };
    out.assert_success();
    let topics = out.json();
    assert!(
        topics
            .get("topics")
            .and_then(Json::as_array)
            .is_some_and(|t| t.iter().any(|v| v.as_str() == Some("secure"))),
        "{out:?}\n{}",
        broker.log_text()
    );
}
