//! Listener security: a configuration that names TLS, SASL or an authorizer must not start
//! (exit code 2, a message naming the listener and its protocol or the key), because the
//! broker enforces PLAINTEXT only; PLAINTEXT-only configurations start as before.

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
    assert!(
        log.contains("refusing to start"),
        "no refusal in the log for {extra:?}\n{log}"
    );
    let plaintext = SocketAddr::from(([127, 0, 0, 1], data.ports.plaintext));
    assert!(
        TcpStream::connect_timeout(&plaintext, Duration::from_millis(200)).is_err(),
        "something listens on the PLAINTEXT port after the refusal"
    );
}

#[test]
fn a_sasl_listener_with_plain_users_is_refused_not_served_without_authentication() {
    // The configuration: PLAINTEXT next to SASL_PLAINTEXT, PLAIN enabled, JAAS users.
    let data = fixture();
    let sasl_port = free_port();
    let listener = format!("SASL_PLAINTEXT://127.0.0.1:{sasl_port}");
    let listeners = listeners_with(&data, &listener);
    assert_refused(
        &data,
        &[
            ("listeners", listeners.as_str()),
            ("sasl.enabled.mechanisms", "PLAIN"),
            (
                "listener.name.sasl_plaintext.plain.sasl.jaas.config",
                "org.apache.kafka.common.security.plain.PlainLoginModule required \
                 username=\"admin\" password=\"admin-secret\" user_admin=\"admin-secret\";",
            ),
        ],
        &[
            &format!("listener {listener} uses security protocol SASL_PLAINTEXT"),
            "sasl.enabled.mechanisms=PLAIN asks for SASL authentication",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config=... asks for SASL authentication",
        ],
    );
    let sasl = SocketAddr::from(([127, 0, 0, 1], sasl_port));
    assert!(TcpStream::connect_timeout(&sasl, Duration::from_millis(200)).is_err());
}

#[test]
fn every_unimplemented_protocol_and_security_setting_is_refused() {
    let data = fixture();
    let port = free_port();
    let ssl = listeners_with(&data, &format!("SSL://127.0.0.1:{port}"));
    let sasl_ssl = listeners_with(&data, &format!("SASL_SSL://127.0.0.1:{port}"));
    let external = listeners_with(&data, &format!("EXTERNAL://127.0.0.1:{port}"));
    let external_ssl = format!("listener EXTERNAL://127.0.0.1:{port} uses security protocol SSL");
    let cases: Vec<(Extra<'_>, Vec<String>)> = vec![
        (
            vec![("listeners", ssl.as_str())],
            vec![format!(
                "listener SSL://127.0.0.1:{port} uses security protocol SSL"
            )],
        ),
        (
            vec![("listeners", sasl_ssl.as_str())],
            vec![format!(
                "listener SASL_SSL://127.0.0.1:{port} uses security protocol SASL_SSL"
            )],
        ),
        // A listener whose protocol comes from the map.
        (
            vec![
                ("listeners", external.as_str()),
                (
                    "listener.security.protocol.map",
                    "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,EXTERNAL:SSL",
                ),
            ],
            vec![external_ssl.clone()],
        ),
        // The controller listener counts too.
        (
            vec![(
                "listener.security.protocol.map",
                "CONTROLLER:SASL_SSL,PLAINTEXT:PLAINTEXT",
            )],
            vec![format!(
                "listener CONTROLLER://127.0.0.1:{} uses security protocol SASL_SSL",
                data.ports.controller
            )],
        ),
        (
            vec![(
                "authorizer.class.name",
                "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            )],
            vec!["asks for ACL authorization".to_string()],
        ),
        (
            vec![("ssl.client.auth", "required")],
            vec!["ssl.client.auth=required asks for TLS client authentication".to_string()],
        ),
        (
            vec![("ssl.keystore.location", "/etc/kafka/server.keystore.p12")],
            vec!["ssl.keystore.location=/etc/kafka/server.keystore.p12 asks for TLS".to_string()],
        ),
        (
            vec![("sasl.enabled.mechanisms", "SCRAM-SHA-512")],
            vec!["sasl.enabled.mechanisms=SCRAM-SHA-512 asks for SASL authentication".to_string()],
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
