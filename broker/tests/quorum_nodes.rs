//! Three combined `gregor` processes (`process.roles=broker,controller`) forming one
//! metadata quorum (`controller.quorum.voters` of three), against the real binary
//! (`support/cluster.rs`): they are formatted with one cluster id (what `gregor format`
//! writes, tested first), elect an active controller, agree on
//! one metadata log, and every node's image follows it; the active controller is killed
//! (SIGKILL), another is elected and commits, and the killed node catches up on restart.
//!
//! Each node's broker registers itself with the active controller; a CreateTopics sent to a
//! node whose controller is not the active one is forwarded in an Envelope. What this
//! checks is the metadata only (topics and their ids in every node's Metadata), not the
//! replication of partition data (`tests/cluster.rs`). Waits poll with generous deadlines
//! (no timed assertions).

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use gregor_protocol::messages::create_topics_request::{CreatableTopic, CreateTopicsRequest};
use gregor_protocol::messages::create_topics_response::CreateTopicsResponse;
use gregor_protocol::messages::default_principal_data::DefaultPrincipalData;
use gregor_protocol::messages::envelope_request::EnvelopeRequest;
use gregor_protocol::messages::metadata_request::MetadataRequest;
use gregor_protocol::{Decodable, Encodable, Request, Uuid, error_code as error};

use support::RawClient;
use support::cluster::{Cluster, Node};

/// How long a test waits for something the nodes do on their own.
const DEADLINE: Duration = Duration::from_secs(120);

/// Runs `gregor` with `args` and returns its exit success and output.
fn gregor(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_gregor"))
        .args(args)
        .output()
        .expect("run gregor");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// Creates `name` through `node`'s broker listener (the ordinary CreateTopics handler).
fn create_topic(node: &Node, name: &str) {
    let mut client = RawClient::connect(node.addr()).expect("broker listener");
    let request = CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: name.into(),
            num_partitions: 1,
            replication_factor: 1,
            ..Default::default()
        }],
        timeout_ms: 30_000,
        validate_only: false,
        ..Default::default()
    };
    let response = client.call(&request, 7).expect("CreateTopics");
    let result = &response.topics[0];
    assert_eq!(
        result.error_code,
        error::NONE,
        "CreateTopics {name} on node {}: {:?}",
        node.id,
        result.error_message
    );
}

/// Waits until every running node lists `name` with one id, and returns it.
fn wait_for_topic_everywhere(cluster: &Cluster, name: &str) -> Uuid {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let ids: Vec<Option<Uuid>> = cluster
            .nodes
            .iter()
            .filter(|n| n.is_serving())
            .map(|n| n.topic_id(name))
            .collect();
        if let Some(Some(first)) = ids.first()
            && ids.iter().all(|id| id == &Some(*first))
        {
            assert_ne!(*first, Uuid::nil());
            return *first;
        }
        assert!(
            Instant::now() < deadline,
            "the nodes do not agree on topic {name}: {ids:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A whole request frame without its size: what an Envelope carries.
fn inner_frame<R: Request>(request: &R, version: i16, correlation_id: i32) -> bytes::Bytes {
    let mut buf = bytes::BytesMut::new();
    gregor_protocol::frame::encode_request(&mut buf, request, version, correlation_id, Some("c"))
        .expect("encode");
    buf.split_off(4).freeze()
}

/// Kafka's serialized default principal (an int16 version, then `DefaultPrincipalData`).
fn principal_bytes(name: &str) -> bytes::Bytes {
    let data = DefaultPrincipalData {
        r#type: "User".into(),
        name: name.into(),
        token_authenticated: false,
        ..Default::default()
    };
    let mut buf = bytes::BytesMut::new();
    buf.extend_from_slice(&0i16.to_be_bytes());
    data.encode_to(&mut buf, 0).expect("encode the principal");
    buf.freeze()
}

fn create_request(name: &str) -> CreateTopicsRequest {
    CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: name.into(),
            num_partitions: 1,
            replication_factor: 1,
            ..Default::default()
        }],
        timeout_ms: 30_000,
        ..Default::default()
    }
}

/// CreateTopics forwarded in an Envelope to the active controller's controller listener
/// (as a broker forwards a client's request, KIP-590), and the envelope's refusals.
fn create_topic_in_envelope(active: &Node, name: &str) {
    let mut client = RawClient::connect(active.controller_addr()).expect("controller listener");
    let envelope = EnvelopeRequest {
        request_data: inner_frame(&create_request(name), 7, 4242),
        request_principal: Some(principal_bytes("alice")),
        client_host_address: vec![127, 0, 0, 9].into(),
        ..Default::default()
    };
    let response = client.call(&envelope, 0).expect("Envelope");
    assert_eq!(response.error_code, error::NONE);
    let mut data = response.response_data.expect("the forwarded response");
    let header = gregor_protocol::frame::decode_response_header(
        &mut data,
        gregor_protocol::ApiKey::CreateTopics,
        7,
    )
    .expect("the inner response header");
    assert_eq!(header.correlation_id, 4242);
    let inner = CreateTopicsResponse::decode(&mut data, 7).expect("the inner response");
    assert_eq!(inner.topics[0].name.to_string(), name);
    assert_eq!(
        inner.topics[0].error_code,
        error::NONE,
        "{:?}",
        inner.topics[0].error_message
    );

    // Metadata is not forwardable.
    let not_forwardable = EnvelopeRequest {
        request_data: inner_frame(&MetadataRequest::default(), 12, 1),
        ..envelope.clone()
    };
    let response = client.call(&not_forwardable, 0).expect("Envelope");
    assert_eq!(response.error_code, error::INVALID_REQUEST);
    assert!(response.response_data.is_none());
    // No principal to act as.
    let anonymous = EnvelopeRequest {
        request_principal: None,
        ..envelope.clone()
    };
    let response = client.call(&anonymous, 0).expect("Envelope");
    assert_eq!(
        response.error_code,
        error::PRINCIPAL_DESERIALIZATION_FAILURE
    );
    // An address that is neither IPv4 nor IPv6.
    let bad_address = EnvelopeRequest {
        client_host_address: vec![1, 2, 3].into(),
        ..envelope
    };
    let response = client.call(&bad_address, 0).expect("Envelope");
    assert_eq!(response.error_code, error::INVALID_REQUEST);
}

fn meta_properties(dir: &Path) -> String {
    fs::read_to_string(dir.join("meta.properties")).expect("meta.properties")
}

#[test]
fn an_unformatted_cluster_node_refuses_to_start_and_format_writes_kafka_meta_properties() {
    // Node 1 of a three-node cluster, on a directory nothing formatted.
    let cluster = Cluster::combined(3);
    let work = tempfile::tempdir().expect("a work directory");
    let data = work.path().join("data");
    let formatted = cluster.node(1).data.path().display().to_string();
    let properties = cluster
        .properties(1)
        .replace(&formatted, &data.display().to_string());
    let config_path = work.path().join("server.properties");
    fs::write(&config_path, properties).expect("write server.properties");
    // A node of a cluster must not make up a cluster id of its own.
    let output = Command::new(env!("CARGO_BIN_EXE_gregor"))
        .arg(&config_path)
        .output()
        .expect("run gregor");
    assert!(!output.status.success());
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(text.contains("No `meta.properties` found in"), "{text}");
    assert!(text.contains("gregor format"), "{text}");
    assert!(!data.join("meta.properties").exists());

    let (ok, cluster_id) = gregor(&["random-uuid"]);
    assert!(ok, "{cluster_id}");
    let cluster_id = cluster_id.trim().to_string();
    assert_eq!(cluster_id.len(), 22);
    let config = config_path.display().to_string();
    let (ok, text) = gregor(&["format", "--cluster-id", &cluster_id, "--config", &config]);
    assert!(ok, "{text}");
    let written = meta_properties(&data);
    assert!(
        written.contains(&format!("cluster.id={cluster_id}\n")),
        "{written}"
    );
    assert!(written.contains("node.id=1\n"), "{written}");
    assert!(written.contains("version=1\n"), "{written}");
    assert!(written.contains("directory.id="), "{written}");
    // Formatted already: refused, unless told to leave it alone.
    let (ok, text) = gregor(&["format", "-t", &cluster_id, "-c", &config]);
    assert!(!ok);
    assert!(
        text.contains("is already formatted. Use --ignore-formatted"),
        "{text}"
    );
    let (ok, text) = gregor(&[
        "format",
        "-t",
        &cluster_id,
        "-c",
        &config,
        "--ignore-formatted",
    ]);
    assert!(ok, "{text}");
    assert_eq!(meta_properties(&data), written);
    // Another cluster's id is refused even then.
    let (_, other) = gregor(&["random-uuid"]);
    let (ok, text) = gregor(&["format", "-t", other.trim(), "-c", &config, "-g"]);
    assert!(!ok);
    assert!(text.contains("Invalid cluster.id in:"), "{text}");
    let (ok, text) = gregor(&["format", "-t", "not-a-uuid", "-c", &config]);
    assert!(!ok);
    assert!(
        text.contains("does not appear to be a valid UUID"),
        "{text}"
    );
}

#[test]
fn three_controllers_agree_on_one_metadata_log_and_survive_the_active_one_killed() {
    // Formatted with one cluster id (as `gregor format` does: the test above), started
    // together, and every broker registered.
    let mut cluster = Cluster::combined(3);
    cluster.start();
    let active = cluster.wait_for_active_controller();
    create_topic(cluster.node(active), "first");
    let first = wait_for_topic_everywhere(&cluster, "first");
    // A node whose controller is not the active one forwards the request (KIP-590).
    let follower = active % 3 + 1;
    create_topic(cluster.node(follower), "forwarded");
    wait_for_topic_everywhere(&cluster, "forwarded");
    create_topic_in_envelope(cluster.node(active), "enveloped");
    wait_for_topic_everywhere(&cluster, "enveloped");

    // The active controller dies; the other two elect a new one, which commits.
    cluster.kill9(active);
    let next = cluster.wait_for_active_controller();
    assert_ne!(next, active);
    create_topic(cluster.node(next), "second");
    let second = wait_for_topic_everywhere(&cluster, "second");
    assert_ne!(first, second);

    // The killed node comes back and catches up with what it missed.
    cluster.restart(active);
    let deadline = Instant::now() + DEADLINE;
    loop {
        let ids = (
            cluster.node(active).topic_id("first"),
            cluster.node(active).topic_id("second"),
        );
        if ids == (Some(first), Some(second)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the restarted node did not catch up: {ids:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(wait_for_topic_everywhere(&cluster, "first"), first);
    assert_eq!(wait_for_topic_everywhere(&cluster, "second"), second);
}

#[test]
fn a_single_node_controller_serves_envelopes_and_refuses_them_without_cluster_action() {
    // No authorizer: any principal may send envelopes, and the forwarded request runs.
    let data = support::DataDir::builder().build();
    let broker = support::Broker::start(&data);
    let mut client = RawClient::connect(broker.controller_addr()).expect("controller listener");
    let envelope = EnvelopeRequest {
        request_data: inner_frame(&create_request("single"), 7, 7),
        request_principal: Some(principal_bytes("alice")),
        client_host_address: vec![0; 16].into(),
        ..Default::default()
    };
    let response = client.call(&envelope, 0).expect("Envelope");
    assert_eq!(response.error_code, error::NONE);
    let mut data_bytes = response.response_data.expect("the forwarded response");
    gregor_protocol::frame::decode_response_header(
        &mut data_bytes,
        gregor_protocol::ApiKey::CreateTopics,
        7,
    )
    .expect("header");
    let inner = CreateTopicsResponse::decode(&mut data_bytes, 7).expect("body");
    assert_eq!(inner.topics[0].error_code, error::NONE);
    drop(broker);

    // With the StandardAuthorizer, the anonymous principal lacks CLUSTER_ACTION.
    let data = support::DataDir::builder().build();
    let broker = support::Broker::start_with(
        &data,
        &[(
            "authorizer.class.name",
            "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        )],
    );
    let mut client = RawClient::connect(broker.controller_addr()).expect("controller listener");
    let response = client.call(&envelope, 0).expect("Envelope");
    assert_eq!(response.error_code, error::CLUSTER_AUTHORIZATION_FAILED);
    assert!(response.response_data.is_none());
}
