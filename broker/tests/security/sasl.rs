//! SASL listeners: PLAIN with the real clients over SASL_PLAINTEXT and SASL_SSL, bad
//! credentials refused with Kafka's message, and the SASL state machine request by request
//! (Kafka's `SaslServerAuthenticator`): nothing served before authentication, the v0
//! handshake's bare tokens, UNSUPPORTED_SASL_MECHANISM, ILLEGAL_SASL_STATE.

use std::time::Duration;

use bytes::Bytes;
use gregor_protocol::messages::metadata_request::MetadataRequest;
use gregor_protocol::messages::sasl_authenticate_request::SaslAuthenticateRequest;
use gregor_protocol::messages::sasl_handshake_request::SaslHandshakeRequest;

use crate::support::{RawClient, ReadOutcome, kcat, python};
use crate::tls::assert_roundtrip;
use crate::{SecureBroker, support_api_versions};

const CLOSE: Duration = Duration::from_secs(20);

fn all_topics() -> MetadataRequest {
    MetadataRequest {
        topics: None,
        ..Default::default()
    }
}

fn handshake(mechanism: &str) -> SaslHandshakeRequest {
    SaslHandshakeRequest {
        mechanism: mechanism.into(),
    }
}

fn authenticate(token: &'static [u8]) -> SaslAuthenticateRequest {
    SaslAuthenticateRequest {
        auth_bytes: Bytes::from_static(token),
        ..Default::default()
    }
}

#[test]
fn plain_over_sasl_plaintext_and_sasl_ssl_serves_the_real_clients() {
    let b = SecureBroker::start(&[]);
    let plain = b.sasl_plaintext.to_string();
    let ssl = b.sasl_ssl.to_string();
    let ca = b.pki.path("ca.pem");
    let creds = [
        "--mechanism",
        "PLAIN",
        "--username",
        "alice",
        "--password",
        "alice-secret",
    ];
    for (driver, tag) in [
        ("secure_roundtrip_confluent.py", "plain-confluent"),
        ("secure_roundtrip_kafka_python.py", "plain-kafka-python"),
    ] {
        let mut args = vec![
            "--bootstrap",
            plain.as_str(),
            "--topic",
            "secure",
            "--count",
            "20",
            "--tag",
            tag,
            "--group",
            tag,
            "--security-protocol",
            "SASL_PLAINTEXT",
        ];
        args.extend_from_slice(&creds);
        let Some(out) = python(driver, &args) else {
            return;
        };
        assert_roundtrip(&out, tag, 20);
        let tag = format!("{tag}-ssl");
        let mut args = vec![
            "--bootstrap",
            ssl.as_str(),
            "--topic",
            "secure",
            "--count",
            "20",
            "--tag",
            &tag,
            "--group",
            &tag,
            "--security-protocol",
            "SASL_SSL",
            "--ca",
            ca.as_str(),
        ];
        args.extend_from_slice(&creds);
        let out = python(driver, &args).expect("driver");
        assert_roundtrip(&out, &tag, 20);
    }
    assert!(b.broker.log_text().contains("authenticated as User:alice"));
    // kcat: metadata over SASL_PLAINTEXT.
    let Some(out) = kcat(&[
        "-b",
        &plain,
        "-X",
        "security.protocol=SASL_PLAINTEXT",
        "-X",
        "sasl.mechanisms=PLAIN",
        "-X",
        "sasl.username=admin",
        "-X",
        "sasl.password=admin-secret",
        "-L",
        "-t",
        "secure",
    ]) else {
        return;
    };
    out.assert_success();
    assert!(out.stdout.contains("topic \"secure\""), "{out:?}");
}

#[test]
fn wrong_password_and_unknown_user_get_kafkas_message_and_nothing_served() {
    let b = SecureBroker::start(&[]);
    let plain = b.sasl_plaintext.to_string();
    for driver in [
        "secure_roundtrip_confluent.py",
        "secure_roundtrip_kafka_python.py",
    ] {
        for (user, password) in [("alice", "wrong"), ("nobody", "alice-secret")] {
            let args = [
                "--bootstrap",
                plain.as_str(),
                "--metadata-only",
                "--timeout",
                "15",
                "--security-protocol",
                "SASL_PLAINTEXT",
                "--mechanism",
                "PLAIN",
                "--username",
                user,
                "--password",
                password,
            ];
            let Some(out) = python(driver, &args) else {
                return;
            };
            assert!(!out.success(), "{driver} {user}: {out:?}");
            assert!(
                out.stdout.contains("Invalid username or password")
                    || out.stderr.contains("Invalid username or password"),
                "{driver} {user}: {out:?}"
            );
        }
    }
    // With kcat the metadata request fails too.
    let Some(out) = kcat(&[
        "-b",
        &plain,
        "-X",
        "security.protocol=SASL_PLAINTEXT",
        "-X",
        "sasl.mechanisms=PLAIN",
        "-X",
        "sasl.username=alice",
        "-X",
        "sasl.password=wrong",
        "-m",
        "10",
        "-L",
    ]) else {
        return;
    };
    assert!(!out.success(), "{out:?}");
    assert!(
        b.broker
            .log_text()
            .contains("Authentication failed: Invalid username or password")
    );
}

#[test]
fn a_request_before_authentication_closes_the_connection_unanswered() {
    let b = SecureBroker::start(&[]);
    // Metadata first.
    let mut client = RawClient::connect(b.sasl_plaintext).unwrap();
    client.send(&all_topics(), 12).unwrap();
    assert!(client.is_closed_by_peer(CLOSE));
    // ApiVersions is answered; Metadata next still closes.
    let mut client = RawClient::connect(b.sasl_plaintext).unwrap();
    let versions = client.call(&support_api_versions(), 3).unwrap();
    assert_eq!(versions.error_code, 0);
    client.send(&all_topics(), 12).unwrap();
    assert!(client.is_closed_by_peer(CLOSE));
    // After the handshake, before SaslAuthenticate.
    let mut client = RawClient::connect(b.sasl_plaintext).unwrap();
    let response = client.call(&handshake("PLAIN"), 1).unwrap();
    assert_eq!(response.error_code, 0);
    client.send(&all_topics(), 12).unwrap();
    assert!(client.is_closed_by_peer(CLOSE));
    // A SaslAuthenticate without a handshake.
    let mut client = RawClient::connect(b.sasl_plaintext).unwrap();
    client
        .send(&authenticate(b"\0alice\0alice-secret"), 2)
        .unwrap();
    assert!(client.is_closed_by_peer(CLOSE));
    let log = b.broker.log_text();
    assert!(
        log.contains("Unexpected Kafka request of type Metadata during SASL handshake."),
        "{log}"
    );
}

#[test]
fn handshake_v1_then_authenticate_at_every_version() {
    let b = SecureBroker::start(&[]);
    for version in 0..=2 {
        let mut client = RawClient::connect(b.sasl_plaintext).unwrap();
        let response = client.call(&handshake("PLAIN"), 1).unwrap();
        assert_eq!(response.error_code, 0);
        let mechanisms: Vec<String> = response.mechanisms.iter().map(|m| m.to_string()).collect();
        assert_eq!(mechanisms, ["PLAIN"]);
        let response = client
            .call(&authenticate(b"\0alice\0alice-secret"), version)
            .unwrap();
        assert_eq!(response.error_code, 0, "v{version}: {response:?}");
        assert_eq!(response.error_message, None);
        assert_eq!(response.session_lifetime_ms, 0);
        // Authenticated: requests are served.
        let metadata = client.call(&all_topics(), 12).unwrap();
        assert!(
            metadata
                .topics
                .iter()
                .any(|t| t.name.as_deref() == Some("secure"))
        );
        // A second exchange is out of place: Kafka's KafkaApis answers ILLEGAL_SASL_STATE.
        let again = client
            .call(&authenticate(b"\0alice\0alice-secret"), version)
            .unwrap();
        assert_eq!(again.error_code, 34);
        assert_eq!(
            again.error_message.as_deref(),
            Some("SaslAuthenticate request received after successful authentication")
        );
        assert_eq!(client.call(&handshake("PLAIN"), 1).unwrap().error_code, 34);
    }
    // A wrong password: SASL_AUTHENTICATION_FAILED with Kafka's message, then closed.
    let mut client = RawClient::connect(b.sasl_plaintext).unwrap();
    client.call(&handshake("PLAIN"), 1).unwrap();
    let response = client.call(&authenticate(b"\0alice\0nope"), 2).unwrap();
    assert_eq!(response.error_code, 58);
    assert_eq!(
        response.error_message.as_deref(),
        Some("Authentication failed: Invalid username or password")
    );
    assert!(client.is_closed_by_peer(CLOSE));
}

#[test]
fn unsupported_mechanism_is_refused_with_the_enabled_ones() {
    let b = SecureBroker::start(&[]);
    let mut client = RawClient::connect(b.sasl_plaintext).unwrap();
    let response = client.call(&handshake("GSSAPI"), 1).unwrap();
    assert_eq!(response.error_code, 33);
    let mechanisms: Vec<String> = response.mechanisms.iter().map(|m| m.to_string()).collect();
    assert_eq!(mechanisms, ["PLAIN"]);
    assert!(client.is_closed_by_peer(CLOSE));
}

#[test]
fn handshake_v0_takes_bare_tokens() {
    let b = SecureBroker::start(&[]);
    let mut client = RawClient::connect(b.sasl_plaintext).unwrap();
    let response = client.call(&handshake("PLAIN"), 0).unwrap();
    assert_eq!(response.error_code, 0);
    // The token as a bare size-prefixed frame, no Kafka header; the answer is one too.
    client.send_raw_frame(b"\0alice\0alice-secret").unwrap();
    match client.read_outcome(CLOSE) {
        ReadOutcome::Frame(frame) => assert!(frame.is_empty(), "{frame:?}"),
        other => panic!("no answer to the bare token: {other:?}"),
    }
    let metadata = client.call(&all_topics(), 12).unwrap();
    assert!(
        metadata
            .topics
            .iter()
            .any(|t| t.name.as_deref() == Some("secure"))
    );
    // A wrong bare token closes the connection unanswered, as Kafka does.
    let mut client = RawClient::connect(b.sasl_plaintext).unwrap();
    client.call(&handshake("PLAIN"), 0).unwrap();
    client.send_raw_frame(b"\0alice\0bad").unwrap();
    assert!(client.is_closed_by_peer(CLOSE));
}
