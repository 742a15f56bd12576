//! ACLs (issue 13, authorization) with confluent-kafka over SASL_PLAINTEXT/PLAIN: the
//! StandardAuthorizer's decisions (literal and prefixed patterns, DENY beats ALLOW, no ACL
//! denies, super users bypass), CreateAcls/DescribeAcls/DeleteAcls and their errors, and
//! ACLs kept across a restart (the metadata log).

use gregor_protocol::error_code;
use gregor_protocol::messages::describe_acls_request::DescribeAclsRequest;
use serde_json::{Value, json};

use crate::SecureBroker;
use crate::support::{DataDir, RawClient, TopicSpec, python};

const AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

/// One run of the ACL driver as `user` (its password is `<user>-secret`); `None` when the
/// clients are missing.
fn run(b: &SecureBroker, user: &str, args: &[&str]) -> Option<Value> {
    let bootstrap = b.sasl_plaintext.to_string();
    let password = format!("{user}-secret");
    let mut all = vec![
        "--bootstrap",
        bootstrap.as_str(),
        "--security-protocol",
        "SASL_PLAINTEXT",
        "--mechanism",
        "PLAIN",
        "--username",
        user,
        "--password",
        password.as_str(),
    ];
    all.extend_from_slice(args);
    let out = python("acls_confluent.py", &all)?;
    out.assert_success();
    Some(out.json())
}

fn acl(kind: &str, name: &str, pattern: &str, op: &str, permission: &str) -> Value {
    json!({"type": kind, "name": name, "pattern": pattern, "principal": "User:alice",
           "host": "*", "operation": op, "permission": permission})
}

fn any_filter() -> String {
    json!({"type": "ANY", "name": null, "pattern": "ANY", "principal": null, "host": null,
           "operation": "ANY", "permission": "ANY"})
    .to_string()
}

#[test]
fn acls_decide_what_real_clients_may_do_and_survive_a_restart() {
    let data = DataDir::builder()
        .topic(TopicSpec::new("secure", 1))
        .topic(TopicSpec::new("acl-ok", 1))
        .topic(TopicSpec::new("acl-denied", 1))
        .build();
    // ANONYMOUS (the PLAINTEXT listener the harness uses) and admin are super users.
    let mut b = SecureBroker::start_on(
        data,
        &[
            ("authorizer.class.name", AUTHORIZER),
            ("super.users", "User:admin;User:ANONYMOUS"),
        ],
    );
    let acls = json!([
        acl("TOPIC", "acl-", "PREFIXED", "ALL", "ALLOW"),
        acl("TOPIC", "acl-denied", "LITERAL", "WRITE", "DENY"),
        acl("GROUP", "acl-g", "PREFIXED", "READ", "ALLOW"),
    ])
    .to_string();
    let Some(created) = run(&b, "admin", &["--action", "create", "--acls", &acls]) else {
        return;
    };
    assert_eq!(created["results"], json!([null, null, null]), "{created}");

    // alice is no super user and has no ALTER on the cluster.
    let more = json!([acl("TOPIC", "secure", "LITERAL", "READ", "ALLOW")]).to_string();
    let refused = run(&b, "alice", &["--action", "create", "--acls", &more]).unwrap();
    assert_eq!(
        refused["results"],
        json!(["CLUSTER_AUTHORIZATION_FAILED"]),
        "{refused}"
    );
    // librdkafka's describe_acls does not surface the response's error: alice sees nothing.
    let described = run(
        &b,
        "alice",
        &["--action", "describe", "--acls", &any_filter()],
    )
    .unwrap();
    assert_eq!(described["acls"], json!([]), "{described}");

    let described = run(
        &b,
        "admin",
        &["--action", "describe", "--acls", &any_filter()],
    )
    .unwrap();
    assert_eq!(
        described["acls"].as_array().unwrap().len(),
        3,
        "{described}"
    );

    // All-topics metadata leaves out the topics alice may not DESCRIBE (the prefixed ALL
    // implies DESCRIBE); the super user sees all.
    let meta = run(&b, "alice", &["--action", "metadata"]).unwrap();
    assert_eq!(meta["topics"], json!(["acl-denied", "acl-ok"]), "{meta}");
    let meta = run(&b, "admin", &["--action", "metadata"]).unwrap();
    assert_eq!(
        meta["topics"],
        json!(["acl-denied", "acl-ok", "secure"]),
        "{meta}"
    );

    // The prefixed ALLOW lets alice write acl-ok; the DENY wins on acl-denied; a topic no
    // ACL names is denied.
    let ok = run(&b, "alice", &["--action", "produce", "--topic", "acl-ok"]).unwrap();
    assert_eq!(ok, json!({"delivered": 5, "errors": []}));
    for topic in ["acl-denied", "secure"] {
        let denied = run(&b, "alice", &["--action", "produce", "--topic", topic]).unwrap();
        assert_eq!(denied["delivered"], 0, "{topic}: {denied}");
        assert_eq!(
            denied["errors"],
            json!(["TOPIC_AUTHORIZATION_FAILED"]),
            "{topic}: {denied}"
        );
    }
    // The super user needs no ACL.
    let admin = run(&b, "admin", &["--action", "produce", "--topic", "secure"]).unwrap();
    assert_eq!(admin, json!({"delivered": 5, "errors": []}));

    // Groups: READ on acl-g* only.
    let consumed = run(
        &b,
        "alice",
        &[
            "--action", "consume", "--topic", "acl-ok", "--group", "acl-g1",
        ],
    )
    .unwrap();
    assert_eq!(consumed, json!({"consumed": 5, "error": null}));
    let denied = run(
        &b,
        "alice",
        &[
            "--action", "consume", "--topic", "acl-ok", "--group", "other",
        ],
    )
    .unwrap();
    assert_eq!(denied["error"], "GROUP_AUTHORIZATION_FAILED", "{denied}");

    // The ACLs are in the metadata log.
    b.restart();
    let after = run(
        &b,
        "admin",
        &["--action", "describe", "--acls", &any_filter()],
    )
    .unwrap();
    assert_eq!(after["acls"], described["acls"]);
    let denied = run(
        &b,
        "alice",
        &["--action", "produce", "--topic", "acl-denied"],
    )
    .unwrap();
    assert_eq!(denied["errors"], json!(["TOPIC_AUTHORIZATION_FAILED"]));

    // Deleting the DENY (a filter of its exact pattern) lets the prefixed ALLOW through.
    let filter = json!([{"type": "TOPIC", "name": "acl-denied", "pattern": "LITERAL",
                         "principal": null, "host": null, "operation": "ANY",
                         "permission": "DENY"}])
    .to_string();
    let deleted = run(&b, "admin", &["--action", "delete", "--acls", &filter]).unwrap();
    assert_eq!(
        deleted["deleted"],
        json!([[acl("TOPIC", "acl-denied", "LITERAL", "WRITE", "DENY")]]),
        "{deleted}"
    );
    let ok = run(
        &b,
        "alice",
        &["--action", "produce", "--topic", "acl-denied"],
    )
    .unwrap();
    assert_eq!(ok, json!({"delivered": 5, "errors": []}));
    let left = run(
        &b,
        "admin",
        &["--action", "describe", "--acls", &any_filter()],
    )
    .unwrap();
    assert_eq!(left["acls"].as_array().unwrap().len(), 2, "{left}");
}

#[test]
fn without_an_authorizer_the_acl_apis_answer_security_disabled() {
    let b = SecureBroker::start(&[]);
    let acls = json!([acl("TOPIC", "t", "LITERAL", "READ", "ALLOW")]).to_string();
    let Some(created) = run(&b, "alice", &["--action", "create", "--acls", &acls]) else {
        return;
    };
    assert_eq!(
        created["results"],
        json!(["SECURITY_DISABLED"]),
        "{created}"
    );
    // librdkafka's describe_acls drops the response's error: the exact response here.
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], b.data.ports.plaintext));
    let mut client = RawClient::connect(addr).unwrap();
    for version in 1..=3 {
        let response = client
            .call(
                &DescribeAclsRequest {
                    resource_type_filter: 1,
                    pattern_type_filter: 1,
                    operation: 1,
                    permission_type: 1,
                    ..Default::default()
                },
                version,
            )
            .unwrap();
        assert_eq!(response.error_code, error_code::SECURITY_DISABLED);
        assert_eq!(
            response.error_message.as_deref(),
            Some("No Authorizer is configured on the broker")
        );
    }
}
