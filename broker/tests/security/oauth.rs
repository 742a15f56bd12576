//! SASL/OAUTHBEARER with Kafka's unsecured-JWS validator, and re-authentication (KIP-368):
//! confluent-kafka (librdkafka's own unsecured JWTs, and a bad token from an oauth_cb),
//! librdkafka re-authenticating under `connections.max.reauth.ms`, and exact requests for
//! what Kafka's `SaslServerAuthenticator` and `SocketServer` decide: the JSON error
//! challenge, `session_lifetime_ms`, the close of a connection whose session expired, the
//! same principal and mechanism on re-authentication, at most one start a second.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use bytes::Bytes;
use gregor_protocol::messages::metadata_request::MetadataRequest;
use gregor_protocol::messages::sasl_authenticate_request::SaslAuthenticateRequest;
use gregor_protocol::messages::sasl_handshake_request::SaslHandshakeRequest;

use crate::SecureBroker;
use crate::support::{ClientOutput, RawClient, python};

const CLOSE: Duration = Duration::from_secs(20);

const OAUTH_JAAS: &str = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule \
     required unsecuredLoginStringClaim_sub=\"admin\";";

/// A broker whose SASL_PLAINTEXT listener takes PLAIN and OAUTHBEARER, with `extra` keys.
fn broker(extra: &[(&str, &str)]) -> SecureBroker {
    let mut keys = vec![
        (
            "listener.name.sasl_plaintext.sasl.enabled.mechanisms",
            "PLAIN,OAUTHBEARER",
        ),
        (
            "listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config",
            OAUTH_JAAS,
        ),
    ];
    keys.extend_from_slice(extra);
    SecureBroker::start(&keys)
}

fn b64(json: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// An unsecured JWS for `sub`, expiring `life` seconds from now.
fn token(sub: &str, life: f64) -> String {
    let now = now_secs();
    // Whole milliseconds, rounded down: the broker rounds a claim to ms (Kafka's
    // `convertClaimTimeInSecondsToMs`), so printing `now + life` to 3 places could make the
    // token outlive `life` by a millisecond.
    let exp = ((now + life) * 1000.0).floor() / 1000.0;
    let claims = format!(r#"{{"sub":"{sub}","iat":{:.3},"exp":{exp:.3}}}"#, now - 1.0);
    format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(&claims))
}

fn client_first(token: &str) -> Bytes {
    Bytes::from(format!("n,,\x01auth=Bearer {token}\x01\x01"))
}

fn handshake(mechanism: &str) -> SaslHandshakeRequest {
    SaslHandshakeRequest {
        mechanism: mechanism.into(),
    }
}

fn authenticate(bytes: Bytes) -> SaslAuthenticateRequest {
    SaslAuthenticateRequest {
        auth_bytes: bytes,
        ..Default::default()
    }
}

fn plain(user: &str, password: &str) -> Bytes {
    Bytes::from(format!("\0{user}\0{password}"))
}

fn metadata_ok(client: &mut RawClient) {
    let metadata = client
        .call(
            &MetadataRequest {
                topics: None,
                ..Default::default()
            },
            12,
        )
        .expect("metadata served");
    assert!(
        metadata
            .topics
            .iter()
            .any(|t| t.name.as_deref() == Some("secure"))
    );
}

/// Handshake v1 and one SaslAuthenticate v2: the session lifetime.
fn login(client: &mut RawClient, mechanism: &str, token: Bytes) -> i64 {
    assert_eq!(client.call(&handshake(mechanism), 1).unwrap().error_code, 0);
    let response = client.call(&authenticate(token), 2).unwrap();
    assert_eq!(response.error_code, 0, "{response:?}");
    response.session_lifetime_ms
}

fn oauth_driver(b: &SecureBroker, args: &[&str]) -> Option<ClientOutput> {
    let bootstrap = b.sasl_plaintext.to_string();
    let mut all = vec!["--bootstrap", bootstrap.as_str(), "--timeout", "40"];
    all.extend_from_slice(args);
    python("oauth_confluent.py", &all)
}

#[test]
fn confluent_kafka_produces_and_consumes_with_an_unsecured_jwt_and_a_bad_token_is_refused() {
    let b = broker(&[]);
    let Some(out) = oauth_driver(
        &b,
        &[
            "--topic",
            "secure",
            "--count",
            "20",
            "--tag",
            "oauth",
            "--oauth-config",
            "principal=alice",
        ],
    ) else {
        return;
    };
    out.assert_success();
    let json = out.json();
    assert_eq!(
        json["consumed"].as_array().map(|a| a.len()),
        Some(20),
        "{out:?}"
    );
    assert!(b.broker.log_text().contains("authenticated as User:alice"));
    // A token that is no JWS: the JSON challenge, the client's \x01, then
    // SASL_AUTHENTICATION_FAILED with the challenge as the message.
    let out = oauth_driver(&b, &["--metadata-only", "--token", "not.a.jwt"]).expect("driver");
    assert!(!out.success(), "{out:?}");
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(text.contains("invalid_token"), "{out:?}");
    let log = b.broker.log_text();
    assert!(
        log.contains(
            "failed authentication with mechanism OAUTHBEARER: {\"status\":\"invalid_token\"}"
        ),
        "{log}"
    );
}

#[test]
fn librdkafka_reauthenticates_and_keeps_producing_past_the_session_lifetime() {
    let b = broker(&[("connections.max.reauth.ms", "2000")]);
    let Some(out) = oauth_driver(
        &b,
        &["--topic", "secure", "--produce-for", "8", "--tag", "reauth"],
    ) else {
        return;
    };
    out.assert_success();
    let json = out.json();
    assert_eq!(
        json["failures"].as_array().map(|a| a.len()),
        Some(0),
        "{out:?}"
    );
    assert!(json["produced"].as_i64().unwrap_or(0) >= 10, "{out:?}");
    let log = b.broker.log_text();
    let reauths = log.matches("re-authenticated as User:alice").count();
    assert!(
        reauths >= 2,
        "{reauths} re-authentications in 8 s of 2 s sessions: {log}"
    );
    assert!(!log.contains("expired without re-authentication"), "{log}");
}

#[test]
fn raw_oauthbearer_exchange_json_challenge_and_token_lifetime() {
    let b = broker(&[]);
    // A refused token: the challenge, then the failure on \x01.
    let mut client = RawClient::connect(b.sasl_plaintext).unwrap();
    assert_eq!(
        client
            .call(&handshake("OAUTHBEARER"), 1)
            .unwrap()
            .error_code,
        0
    );
    let expired = client
        .call(&authenticate(client_first(&token("alice", -60.0))), 2)
        .unwrap();
    assert_eq!(expired.error_code, 0);
    assert_eq!(&expired.auth_bytes[..], br#"{"status":"invalid_token"}"#);
    let failed = client
        .call(&authenticate(Bytes::from_static(b"\x01")), 2)
        .unwrap();
    assert_eq!(failed.error_code, 58);
    assert_eq!(
        failed.error_message.as_deref(),
        Some(r#"{"status":"invalid_token"}"#)
    );
    assert!(client.is_closed_by_peer(CLOSE));
    // A malformed first message fails at once with Kafka's generic message.
    let mut client = RawClient::connect(b.sasl_plaintext).unwrap();
    client.call(&handshake("OAUTHBEARER"), 1).unwrap();
    let failed = client
        .call(&authenticate(Bytes::from_static(b"n,,auth")), 2)
        .unwrap();
    assert_eq!(failed.error_code, 58);
    assert_eq!(
        failed.error_message.as_deref(),
        Some(
            "Authentication failed during authentication due to invalid credentials with SASL mechanism OAUTHBEARER"
        )
    );
    // No connections.max.reauth.ms: the session lasts as long as the token.
    let mut client = RawClient::connect(b.sasl_plaintext).unwrap();
    let lifetime = login(
        &mut client,
        "OAUTHBEARER",
        client_first(&token("bob", 600.0)),
    );
    assert!((1..=600_000).contains(&lifetime), "{lifetime}");
    metadata_ok(&mut client);
    // PLAIN has no credential lifetime: 0, no expiry, and a SaslHandshake after it is
    // answered by the handlers (ILLEGAL_SASL_STATE).
    let mut client = RawClient::connect(b.sasl_plaintext).unwrap();
    assert_eq!(
        login(&mut client, "PLAIN", plain("alice", "alice-secret")),
        0
    );
    assert_eq!(client.call(&handshake("PLAIN"), 1).unwrap().error_code, 34);
    metadata_ok(&mut client);
}

#[test]
fn a_client_that_does_not_reauthenticate_is_closed_at_its_first_request_after_expiry() {
    let b = broker(&[("connections.max.reauth.ms", "2000")]);
    let mut client = RawClient::connect(b.sasl_plaintext).unwrap();
    assert_eq!(
        login(&mut client, "PLAIN", plain("alice", "alice-secret")),
        2000
    );
    metadata_ok(&mut client);
    // The OAUTHBEARER session is the smaller of the limit and the token's life.
    let mut short = RawClient::connect(b.sasl_plaintext).unwrap();
    let lifetime = login(&mut short, "OAUTHBEARER", client_first(&token("bob", 1.5)));
    assert!((1..=1500).contains(&lifetime), "{lifetime}");
    std::thread::sleep(Duration::from_millis(3000));
    for c in [&mut client, &mut short] {
        c.send(
            &MetadataRequest {
                topics: None,
                ..Default::default()
            },
            12,
        )
        .unwrap();
        assert!(c.is_closed_by_peer(CLOSE));
    }
    let log = b.broker.log_text();
    assert!(
        log.contains("the SASL session of User:alice expired without re-authentication"),
        "{log}"
    );
    // A v0 handshake (bare tokens) cannot re-authenticate: its SaslHandshake goes to the
    // handlers, and its session expires all the same.
    let mut v0 = RawClient::connect(b.sasl_plaintext).unwrap();
    assert_eq!(v0.call(&handshake("PLAIN"), 0).unwrap().error_code, 0);
    v0.send_raw_frame(b"\0alice\0alice-secret").unwrap();
    assert!(matches!(
        v0.read_outcome(CLOSE),
        crate::support::ReadOutcome::Frame(f) if f.is_empty()
    ));
    assert_eq!(v0.call(&handshake("PLAIN"), 1).unwrap().error_code, 34);
    std::thread::sleep(Duration::from_millis(2500));
    v0.send(&handshake("PLAIN"), 1).unwrap();
    assert!(v0.is_closed_by_peer(CLOSE));
}

#[test]
fn reauthentication_keeps_the_principal_and_mechanism() {
    let b = broker(&[("connections.max.reauth.ms", "60000")]);
    let mut client = RawClient::connect(b.sasl_plaintext).unwrap();
    assert_eq!(
        login(&mut client, "PLAIN", plain("alice", "alice-secret")),
        60000
    );
    metadata_ok(&mut client);
    // Re-authenticating as the same user renews the session.
    assert_eq!(
        login(&mut client, "PLAIN", plain("alice", "alice-secret")),
        60000
    );
    metadata_ok(&mut client);
    // A second start within a second is no re-authentication: ILLEGAL_SASL_STATE.
    assert_eq!(client.call(&handshake("PLAIN"), 1).unwrap().error_code, 34);
    metadata_ok(&mut client);
    std::thread::sleep(Duration::from_millis(1100));
    // Another principal is refused and the connection closed.
    assert_eq!(client.call(&handshake("PLAIN"), 1).unwrap().error_code, 0);
    let changed = client
        .call(&authenticate(plain("admin", "admin-secret")), 2)
        .unwrap();
    assert_eq!(changed.error_code, 58);
    assert_eq!(
        changed.error_message.as_deref(),
        Some("Cannot change principals during re-authentication from User.alice: User.admin")
    );
    assert!(client.is_closed_by_peer(CLOSE));
    // Another mechanism: the handshake is answered, its token fails.
    let mut client = RawClient::connect(b.sasl_plaintext).unwrap();
    login(&mut client, "PLAIN", plain("alice", "alice-secret"));
    assert_eq!(
        client
            .call(&handshake("OAUTHBEARER"), 1)
            .unwrap()
            .error_code,
        0
    );
    let other = client
        .call(&authenticate(client_first(&token("alice", 600.0))), 2)
        .unwrap();
    assert_eq!(other.error_code, 58);
    assert_eq!(
        other.error_message.as_deref(),
        Some(
            "SASL mechanism 'OAUTHBEARER' requested by client is not supported for \
             re-authentication of mechanism 'PLAIN'"
        )
    );
    assert!(client.is_closed_by_peer(CLOSE));
    // OAUTHBEARER re-authentication with a fresh token for the same subject.
    let mut client = RawClient::connect(b.sasl_plaintext).unwrap();
    login(
        &mut client,
        "OAUTHBEARER",
        client_first(&token("carol", 600.0)),
    );
    login(
        &mut client,
        "OAUTHBEARER",
        client_first(&token("carol", 600.0)),
    );
    metadata_ok(&mut client);
    let log = b.broker.log_text();
    assert!(log.contains("re-authenticated as User:carol"), "{log}");
}
