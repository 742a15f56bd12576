//! Listener security: a configuration whose TLS or SASL settings cannot be served (no
//! keystore, an unreadable file, an unimplemented mechanism, no PLAIN users), or that names
//! an authorizer other than the StandardAuthorizer, must not start (exit code 2, a message naming the key), and nothing is
//! bound; PLAINTEXT-only configurations start as before. Served TLS and SASL listeners are
//! tested in `tests/security.rs`.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::support::{Broker, DataDir, TopicSpec, free_port};
use crate::{api_versions_request, connect};

/// Extra `server.properties` keys of one case.
type Extra<'a> = Vec<(&'a str, &'a str)>;

fn fixture() -> DataDir {
    DataDir::builder()
        .topic(TopicSpec::new("t", 1).records(3))
        .build()
}

/// The ports of `data`, with one more listener `extra` (`NAME://127.0.0.1:port`) added.
fn listeners_with(data: &DataDir, extra: &str) -> String {
    format!(
        "PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{},{extra}",
        data.ports.plaintext, data.ports.controller
    )
}

/// Starts the broker with `extra` keys and asserts it refuses to start: exit code 2, each of
/// `expected` in its log, and no port of it ever accepted a connection.
fn assert_refused(data: &DataDir, extra: &[(&str, &str)], expected: &[&str]) {
    let mut broker = Broker::spawn(data, extra, &[("RUST_LOG", "info")]);
    let status = broker
        .wait_exit(Duration::from_secs(20))
        .unwrap_or_else(|| {
            panic!(
                "gregor started with {extra:?} instead of refusing\n{}",
                broker.log_text()
            )
        });
    let log = broker.log_text();
    assert_eq!(status.code(), Some(2), "exit status for {extra:?}\n{log}");
    for needle in expected {
        assert!(
            log.contains(needle),
            "{needle:?} missing from the log for {extra:?}\n{log}"
        );
    }
    let plaintext = SocketAddr::from(([127, 0, 0, 1], data.ports.plaintext));
    assert!(
        TcpStream::connect_timeout(&plaintext, Duration::from_millis(200)).is_err(),
        "something listens on the PLAINTEXT port after the refusal"
    );
}

#[test]
fn security_settings_that_cannot_be_served_are_refused_naming_the_key() {
    let data = fixture();
    let port = free_port();
    let ssl = listeners_with(&data, &format!("SSL://127.0.0.1:{port}"));
    let sasl = listeners_with(&data, &format!("SASL_PLAINTEXT://127.0.0.1:{port}"));
    let external = listeners_with(&data, &format!("EXTERNAL://127.0.0.1:{port}"));
    let missing = data.path().join("no-such-keystore.pem");
    let missing = missing.to_string_lossy().to_string();
    let cases: Vec<(Extra<'_>, Vec<String>)> = vec![
        (
            vec![("listeners", ssl.as_str())],
            vec!["a TLS listener needs a keystore".to_string()],
        ),
        // A listener whose protocol comes from the map, its keystore file missing.
        (
            vec![
                ("listeners", external.as_str()),
                (
                    "listener.security.protocol.map",
                    "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,EXTERNAL:SSL",
                ),
                ("listener.name.external.ssl.keystore.type", "PEM"),
                (
                    "listener.name.external.ssl.keystore.location",
                    missing.as_str(),
                ),
            ],
            vec![format!(
                "listener.name.external.ssl.keystore.location: cannot read {missing}"
            )],
        ),
        (
            vec![
                ("listeners", ssl.as_str()),
                ("ssl.keystore.location", "/x.jks"),
            ],
            vec!["ssl.keystore.type: JKS (Kafka's default) is a Java keystore format".to_string()],
        ),
        (
            vec![
                ("listeners", ssl.as_str()),
                (
                    "ssl.cipher.suites",
                    "TLS_AES_128_GCM_SHA256,TLS_RSA_WITH_AES_128_CBC_SHA",
                ),
            ],
            vec![
                "ssl.cipher.suites: cipher suite TLS_RSA_WITH_AES_128_CBC_SHA is not supported"
                    .to_string(),
            ],
        ),
        (
            vec![
                ("listeners", ssl.as_str()),
                ("ssl.enabled.protocols", "TLSv1.4"),
            ],
            vec!["ssl.enabled.protocols: unknown protocol TLSv1.4".to_string()],
        ),
        // Kafka's default mechanism, GSSAPI, is not implemented.
        (
            vec![("listeners", sasl.as_str())],
            vec!["GSSAPI (Kafka's default; set sasl.enabled.mechanisms) is not one".to_string()],
        ),
        (
            vec![
                ("listeners", sasl.as_str()),
                ("sasl.enabled.mechanisms", "PLAIN"),
            ],
            vec!["listener.name.sasl_plaintext.plain.sasl.jaas.config is not set".to_string()],
        ),
        (
            // Only Kafka's StandardAuthorizer is implemented (crate::authorizer).
            vec![(
                "authorizer.class.name",
                "kafka.security.authorizer.AclAuthorizer",
            )],
            vec![
                "authorizer.class.name: kafka.security.authorizer.AclAuthorizer is not supported"
                    .to_string(),
                "refusing to start".to_string(),
            ],
        ),
    ];
    for (extra, expected) in &cases {
        let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
        assert_refused(&data, extra, &expected);
    }
}

#[test]
fn plaintext_only_configurations_start_and_serve_as_before() {
    let data = fixture();
    // Tuning keys of TLS and SASL ask for nothing: accepted (as in Kafka), with a warning.
    let mut broker = Broker::start_with(
        &data,
        &[
            ("ssl.enabled.protocols", "TLSv1.3"),
            ("ssl.client.auth", "none"),
        ],
    );
    let mut client = connect(&broker);
    let response = client
        .call(&api_versions_request(), 3)
        .expect("ApiVersions");
    assert_eq!(response.error_code, 0);
    assert!(
        broker
            .wait_for_log(
                "\"ssl.enabled.protocols\" has no effect",
                Duration::from_secs(5)
            )
            .is_some(),
        "no warning for the inert key\n{}",
        broker.log_text()
    );
    assert!(!broker.log_text().contains("refusing to start"));
    assert!(broker.stop().success());
}
