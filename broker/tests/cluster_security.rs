//! TLS and SASL between the nodes of a cluster (issue 15), with the StandardAuthorizer on:
//!
//! * three combined nodes whose CONTROLLER and inter-broker (`INTERNAL`) listeners are SSL
//!   with `ssl.client.auth=required`: the quorum elects a leader, the brokers register,
//!   an RF 3 topic created through the controller gets all three replicas in sync
//!   (followers fetch over TLS), and the nodes' principal `User:CN=node` passes the
//!   authorizer as a super user;
//! * three combined nodes whose CONTROLLER and INTERNAL listeners are SASL_SSL with PLAIN:
//!   an RF 3 topic produced with acks=all and consumed by confluent-kafka over SASL_SSL;
//!   a fourth node (a broker) whose password is wrong stays out of the cluster, says so in
//!   its log and does not crash.
//!
//! The harness's PLAINTEXT listener stays for its own readiness checks (as
//! `User:ANONYMOUS`, a super user here too).

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use support::cluster::{Cluster, Role, broker_ids_listed_by, topic_metadata, wait_for};
use support::{free_port, python_with_timeout};

const AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";
const PLAIN_MODULE: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";
const SETTLE: Duration = Duration::from_secs(90);

/// A CA and one certificate every node uses, for server and client authentication
/// (`CN=node`, for 127.0.0.1 and localhost): `ca.pem`, `node.pem` (chain and key).
fn node_pki(dir: &Path) {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "gregor cluster CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("node key");
    let mut node = CertificateParams::new(Vec::<String>::new()).expect("node params");
    node.distinguished_name = rcgen::DistinguishedName::new();
    node.distinguished_name.push(DnType::CommonName, "node");
    node.subject_alt_names = vec![
        SanType::DnsName("localhost".try_into().expect("dns name")),
        SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
    ];
    node.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let cert = node.signed_by(&key, &issuer).expect("node certificate");
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).expect("ca.pem");
    std::fs::write(
        dir.join("node.pem"),
        format!("{}{}{}", cert.pem(), ca_cert.pem(), key.serialize_pem()),
    )
    .expect("node.pem");
}

/// A cluster of `roles` with an `INTERNAL` inter-broker listener on a port of each node's
/// own, the CONTROLLER and INTERNAL listeners mapped to `protocol`, TLS files from `pki`.
fn secured_cluster(roles: &[Role], protocol: &str, pki: &Path) -> (Cluster, Vec<u16>) {
    let mut cluster = Cluster::new(roles);
    let mut internal_ports = Vec::new();
    for node in 1..=roles.len() as i32 {
        let (plaintext, controller) = {
            let n = cluster.node(node);
            (n.data.ports.plaintext, n.data.ports.controller)
        };
        let internal = free_port();
        internal_ports.push(internal);
        let mut listeners =
            format!("PLAINTEXT://127.0.0.1:{plaintext},INTERNAL://127.0.0.1:{internal}");
        if roles[node as usize - 1].is_controller() {
            listeners.push_str(&format!(",CONTROLLER://127.0.0.1:{controller}"));
        }
        cluster.set_node(node, "listeners", &listeners);
        cluster.set_node(
            node,
            "advertised.listeners",
            &format!("PLAINTEXT://127.0.0.1:{plaintext},INTERNAL://127.0.0.1:{internal}"),
        );
    }
    let path = |name: &str| pki.join(name).to_string_lossy().into_owned();
    cluster
        .set("inter.broker.listener.name", "INTERNAL")
        .set(
            "listener.security.protocol.map",
            &format!("CONTROLLER:{protocol},INTERNAL:{protocol},PLAINTEXT:PLAINTEXT"),
        )
        .set("ssl.keystore.type", "PEM")
        .set("ssl.keystore.location", &path("node.pem"))
        .set("ssl.truststore.type", "PEM")
        .set("ssl.truststore.location", &path("ca.pem"))
        .set("authorizer.class.name", AUTHORIZER);
    (cluster, internal_ports)
}

/// Waits until brokers `ids` each list exactly `ids`.
fn wait_for_brokers(cluster: &Cluster, ids: &[i32]) {
    wait_for("the brokers registered and unfenced", SETTLE, || {
        ids.iter()
            .all(|&id| broker_ids_listed_by(cluster.node(id).addr()).as_deref() == Some(ids))
            .then_some(())
    });
}

/// Creates `topic` (one partition, RF 3) through broker 1's PLAINTEXT listener (forwarded
/// to the active controller over the controller listener) and waits until its three
/// replicas are in sync: the followers fetch over the inter-broker listener.
fn create_rf3_topic_in_sync(cluster: &Cluster, topic: &str) {
    let bootstrap = cluster.node(1).addr().to_string();
    let Some(out) = support::load::run_create_topic(&bootstrap, topic, 1, 3, &[]) else {
        return;
    };
    out.assert_success();
    wait_for("three replicas in sync", SETTLE, || {
        let metadata = topic_metadata(cluster.node(1).addr(), topic)?;
        let partition = metadata.topics.first()?.partitions.first()?;
        (partition.replica_nodes.len() == 3 && partition.isr_nodes.len() == 3).then_some(())
    });
}

fn no_panic(cluster: &Cluster) {
    for node in &cluster.nodes {
        let log = node.all_logs();
        assert!(
            !log.contains("panicked"),
            "node {} panicked:\n{log}",
            node.id
        );
    }
}

#[test]
fn ssl_controller_and_inter_broker_listeners_with_mutual_tls() {
    let pki = tempfile::tempdir().expect("temporary directory");
    node_pki(pki.path());
    let (mut cluster, _) = secured_cluster(&[Role::Combined; 3], "SSL", pki.path());
    cluster
        .set("ssl.client.auth", "required")
        .set("super.users", "User:CN=node;User:ANONYMOUS");
    cluster.start_nodes();
    // Registered and unfenced: the quorum elected a leader over TLS, and the brokers
    // registered and heartbeat with it over TLS.
    wait_for_brokers(&cluster, &[1, 2, 3]);
    create_rf3_topic_in_sync(&cluster, "tls-replicated");
    no_panic(&cluster);
}

#[test]
fn sasl_ssl_between_nodes_serves_a_real_client_and_keeps_a_wrong_password_out() {
    let pki = tempfile::tempdir().expect("temporary directory");
    node_pki(pki.path());
    let roles = [Role::Combined, Role::Combined, Role::Combined, Role::Broker];
    let (mut cluster, internal) = secured_cluster(&roles, "SASL_SSL", pki.path());
    let jaas = |password: &str| {
        format!(
            "{PLAIN_MODULE} required username=\"broker\" password=\"{password}\" \
             user_broker=\"broker-secret\" user_alice=\"alice-secret\";"
        )
    };
    cluster
        .set("sasl.mechanism.controller.protocol", "PLAIN")
        .set("sasl.mechanism.inter.broker.protocol", "PLAIN")
        .set("listener.name.controller.sasl.enabled.mechanisms", "PLAIN")
        .set("listener.name.internal.sasl.enabled.mechanisms", "PLAIN")
        .set(
            "listener.name.controller.plain.sasl.jaas.config",
            &jaas("broker-secret"),
        )
        .set(
            "listener.name.internal.plain.sasl.jaas.config",
            &jaas("broker-secret"),
        )
        .set("super.users", "User:broker;User:alice;User:ANONYMOUS");
    cluster
        .set_node(
            4,
            "listener.name.controller.plain.sasl.jaas.config",
            &jaas("wrong"),
        )
        .set_node(
            4,
            "listener.name.internal.plain.sasl.jaas.config",
            &jaas("wrong"),
        );
    cluster.start_some(&[1, 2, 3]);
    wait_for_brokers(&cluster, &[1, 2, 3]);
    create_rf3_topic_in_sync(&cluster, "sasl-replicated");

    // confluent-kafka over the SASL_SSL INTERNAL listener: acks=all on RF 3.
    let bootstrap = internal[..3]
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    let ca = pki.path().join("ca.pem").to_string_lossy().into_owned();
    let args = [
        "--bootstrap",
        &bootstrap,
        "--topic",
        "sasl-replicated",
        "--count",
        "50",
        "--tag",
        "internode",
        "--group",
        "internode-group",
        "--security-protocol",
        "SASL_SSL",
        "--ca",
        &ca,
        "--mechanism",
        "PLAIN",
        "--username",
        "alice",
        "--password",
        "alice-secret",
    ];
    let Some(out) = python_with_timeout("secure_roundtrip_confluent.py", &args, SETTLE) else {
        return;
    };
    out.assert_success();
    let json = out.json();
    let consumed = json
        .get("consumed")
        .and_then(|c| c.as_array())
        .map_or(0, Vec::len);
    assert_eq!(consumed, 50, "{out:?}");
    // Every replica has the records: the high watermark moved only with all in sync.
    let metadata = topic_metadata(cluster.node(1).addr(), "sasl-replicated").expect("metadata");
    assert_eq!(metadata.topics[0].partitions[0].isr_nodes.len(), 3);

    // A broker with a wrong password: refused by the controllers, logged, still running.
    cluster.spawn_node(4);
    let refused = cluster
        .node(4)
        .process()
        .wait_for_log("does not accept this node", SETTLE);
    assert!(refused.is_some(), "{}", cluster.node(4).log_text());
    let log = cluster.node(4).log_text();
    assert!(
        log.contains("Authentication failed: Invalid username or password"),
        "{log}"
    );
    std::thread::sleep(Duration::from_secs(3));
    let pid = cluster.node(4).process().pid().expect("a pid").to_string();
    let alive = std::process::Command::new("kill")
        .args(["-0", &pid])
        .status()
        .expect("kill -0");
    assert!(
        alive.success(),
        "node 4 exited:\n{}",
        cluster.node(4).log_text()
    );
    assert_eq!(
        broker_ids_listed_by(cluster.node(1).addr()).as_deref(),
        Some(&[1, 2, 3][..])
    );
    no_panic(&cluster);
}
