//! SCRAM-SHA-256/512: credentials created with AlterUserScramCredentials (stored as
//! `UserScramCredentialRecord`s in the metadata log), used by confluent-kafka and
//! kafka-python over SASL_SSL, refused with Kafka's message for a wrong password, and
//! still there after a restart.

use bytes::Bytes;
use gregor_broker::security::sasl::ScramMechanism;
use gregor_broker::security::sasl::scram::salted_password;
use gregor_protocol::messages::alter_user_scram_credentials_request::{
    AlterUserScramCredentialsRequest, ScramCredentialDeletion, ScramCredentialUpsertion,
};

use crate::SecureBroker;
use crate::support::{RawClient, python};
use crate::tls::assert_roundtrip;

fn upsertion(
    user: &str,
    mechanism: ScramMechanism,
    password: &str,
    iterations: i32,
) -> ScramCredentialUpsertion {
    let salt = b"0123456789abcdef0123".to_vec();
    let salted = salted_password(
        mechanism,
        password.as_bytes(),
        &salt,
        iterations.max(1) as u32,
    );
    ScramCredentialUpsertion {
        name: user.into(),
        mechanism: mechanism.type_code(),
        iterations,
        salt: Bytes::from(salt),
        salted_password: Bytes::from(salted),
        ..Default::default()
    }
}

fn roundtrip(
    b: &SecureBroker,
    driver: &str,
    mechanism: &str,
    password: &str,
    tag: &str,
) -> crate::support::ClientOutput {
    let bootstrap = b.sasl_ssl.to_string();
    let ca = b.pki.path("ca.pem");
    let args = [
        "--bootstrap",
        bootstrap.as_str(),
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
        "--security-protocol",
        "SASL_SSL",
        "--ca",
        ca.as_str(),
        "--mechanism",
        mechanism,
        "--username",
        "alice",
        "--password",
        password,
    ];
    python(driver, &args).expect("the Python clients")
}

#[test]
fn scram_credentials_from_the_metadata_log_authenticate_and_survive_a_restart() {
    let mut b = SecureBroker::start(&[(
        "listener.name.sasl_ssl.sasl.enabled.mechanisms",
        "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
    )]);
    if crate::support::python_client_versions().is_none() && !crate::support::clients_required() {
        println!("skipped: no Python clients");
        return;
    }
    let mut admin = RawClient::connect(b.broker.addr()).unwrap();
    let response = admin
        .call(
            &AlterUserScramCredentialsRequest {
                deletions: vec![ScramCredentialDeletion {
                    name: "nobody".into(),
                    mechanism: ScramMechanism::Sha512.type_code(),
                    ..Default::default()
                }],
                upsertions: vec![
                    upsertion("alice", ScramMechanism::Sha512, "alice-scram", 8192),
                    upsertion("bob", ScramMechanism::Sha256, "x", 100),
                ],
                ..Default::default()
            },
            0,
        )
        .unwrap();
    let results: Vec<(String, i16, Option<String>)> = response
        .results
        .iter()
        .map(|r| {
            (
                r.user.to_string(),
                r.error_code,
                r.error_message.as_ref().map(|m| m.to_string()),
            )
        })
        .collect();
    assert_eq!(
        results,
        [
            ("alice".to_string(), 0, None),
            (
                "nobody".to_string(),
                91,
                Some("Attempt to delete a user credential that does not exist".to_string())
            ),
            (
                "bob".to_string(),
                93,
                Some("Too few iterations".to_string())
            ),
        ]
    );
    // A second mechanism for alice, in its own request (one alteration per user per request).
    let response = admin
        .call(
            &AlterUserScramCredentialsRequest {
                upsertions: vec![upsertion(
                    "alice",
                    ScramMechanism::Sha256,
                    "alice-256",
                    4096,
                )],
                ..Default::default()
            },
            0,
        )
        .unwrap();
    assert_eq!(response.results[0].error_code, 0);

    let out = roundtrip(
        &b,
        "secure_roundtrip_confluent.py",
        "SCRAM-SHA-512",
        "alice-scram",
        "scram-confluent",
    );
    assert_roundtrip(&out, "scram-confluent", 20);
    let out = roundtrip(
        &b,
        "secure_roundtrip_kafka_python.py",
        "SCRAM-SHA-256",
        "alice-256",
        "scram-kafka-python",
    );
    assert_roundtrip(&out, "scram-kafka-python", 20);
    assert!(b.broker.log_text().contains("authenticated as User:alice"));

    // A wrong password: Kafka's generic SCRAM failure, nothing served.
    let bootstrap = b.sasl_ssl.to_string();
    let ca = b.pki.path("ca.pem");
    let out = python(
        "secure_roundtrip_confluent.py",
        &[
            "--bootstrap",
            bootstrap.as_str(),
            "--metadata-only",
            "--timeout",
            "15",
            "--security-protocol",
            "SASL_SSL",
            "--ca",
            ca.as_str(),
            "--mechanism",
            "SCRAM-SHA-512",
            "--username",
            "alice",
            "--password",
            "wrong",
        ],
    )
    .unwrap();
    assert!(!out.success(), "{out:?}");
    assert!(
        out.stderr.contains(
            "Authentication failed during authentication due to invalid credentials with SASL \
             mechanism SCRAM-SHA-512"
        ),
        "{out:?}"
    );

    // The credentials are records of the metadata log: a restart replays them.
    b.restart();
    let out = roundtrip(
        &b,
        "secure_roundtrip_confluent.py",
        "SCRAM-SHA-512",
        "alice-scram",
        "scram-after-restart",
    );
    assert_roundtrip(&out, "scram-after-restart", 20);
    assert_eq!(
        describe(&b, None),
        [("alice".to_string(), 0, vec![(1, 4096), (2, 8192)])]
    );
}

/// One user of a DescribeUserScramCredentials response: (user, error code,
/// [(mechanism, iterations)]).
type Described = (String, i16, Vec<(i8, i32)>);

/// DescribeUserScramCredentials of `users` (all with `None`).
fn describe(b: &SecureBroker, users: Option<&[&str]>) -> Vec<Described> {
    use gregor_protocol::messages::describe_user_scram_credentials_request::{
        DescribeUserScramCredentialsRequest, UserName,
    };
    let mut client = RawClient::connect(b.broker.addr()).unwrap();
    let request = DescribeUserScramCredentialsRequest {
        users: users.map(|u| {
            u.iter()
                .map(|n| UserName {
                    name: (*n).into(),
                    ..Default::default()
                })
                .collect()
        }),
        ..Default::default()
    };
    let response = client.call(&request, 0).unwrap();
    assert_eq!(response.error_code, 0);
    response
        .results
        .iter()
        .map(|r| {
            (
                r.user.to_string(),
                r.error_code,
                r.credential_infos
                    .iter()
                    .map(|c| (c.mechanism, c.iterations))
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn gregor_bootstrap_scram_adds_credentials_when_the_log_is_formatted() {
    // No metadata log yet: gregor formats it, with the credential of the key.
    let data = crate::support::DataDir::builder()
        .without_metadata_log()
        .build();
    let b = SecureBroker::start_on(
        data,
        &[
            (
                "listener.name.sasl_ssl.sasl.enabled.mechanisms",
                "SCRAM-SHA-512",
            ),
            (
                "gregor.bootstrap.scram",
                "SCRAM-SHA-512=[name=boot,password=\"boot,secret\",iterations=4096]",
            ),
        ],
    );
    let bootstrap = b.sasl_ssl.to_string();
    let ca = b.pki.path("ca.pem");
    let run = |password: &str| {
        python(
            "secure_roundtrip_confluent.py",
            &[
                "--bootstrap",
                bootstrap.as_str(),
                "--metadata-only",
                "--timeout",
                "15",
                "--security-protocol",
                "SASL_SSL",
                "--ca",
                ca.as_str(),
                "--mechanism",
                "SCRAM-SHA-512",
                "--username",
                "boot",
                "--password",
                password,
            ],
        )
    };
    let Some(out) = run("boot,secret") else {
        return;
    };
    out.assert_success();
    assert!(out.stdout.contains("\"topics\""), "{out:?}");
    let out = run("wrong").unwrap();
    assert!(!out.success(), "{out:?}");
    assert_eq!(
        describe(&b, None),
        [("boot".to_string(), 0, vec![(2, 4096)])]
    );
}
