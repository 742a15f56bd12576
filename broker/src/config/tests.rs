use std::path::{Path, PathBuf};

use super::*;

/// The settings of Kafka 4.x's `config/server.properties` (the quickstart file), with
/// comments of our own.
const KAFKA_4_SERVER_PROPERTIES: &str = r#"# The keys and values of Kafka 4.x's quickstart config/server.properties
# (the comments are ours; the file's comment syntax is exercised all the same).

# Roles and identity of this node
process.roles=broker,controller

node.id=1

controller.quorum.bootstrap.servers=localhost:9093

# Where the node listens, and what it tells clients
listeners=PLAINTEXT://:9092,CONTROLLER://:9093

inter.broker.listener.name=PLAINTEXT

advertised.listeners=PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093

controller.listener.names=CONTROLLER

listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL

# Socket server tuning (accepted, no effect here)
num.network.threads=3

num.io.threads=8

socket.send.buffer.bytes=102400

socket.receive.buffer.bytes=102400

socket.request.max.bytes=104857600

# Data directories and log defaults
log.dirs=/tmp/kraft-combined-logs

num.partitions=1

num.recovery.threads.per.data.dir=1

# Internal topics (single node: replication 1)
offsets.topic.replication.factor=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1

# Retention and segments
log.retention.hours=168

log.segment.bytes=1073741824

log.retention.check.interval.ms=300000
"#;

/// The settings of Kafka 3.x's `config/kraft/server.properties` (static voters), with
/// comments of our own.
const KAFKA_3_KRAFT_SERVER_PROPERTIES: &str = r#"# The keys and values of Kafka 3.x's config/kraft/server.properties
# (the comments are ours).

# Roles and identity of this node
process.roles=broker,controller

node.id=1

controller.quorum.voters=1@localhost:9093

# Where the node listens, and what it tells clients
listeners=PLAINTEXT://:9092,CONTROLLER://:9093

inter.broker.listener.name=PLAINTEXT

advertised.listeners=PLAINTEXT://localhost:9092

controller.listener.names=CONTROLLER

listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL

# Socket server tuning (accepted, no effect here)
num.network.threads=3
num.io.threads=8
socket.send.buffer.bytes=102400
socket.receive.buffer.bytes=102400
socket.request.max.bytes=104857600

# Data directories and log defaults
log.dirs=/tmp/kraft-combined-logs
num.partitions=1
num.recovery.threads.per.data.dir=1

# Internal topics (single node: replication 1)
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1

# Retention and segments
log.retention.hours=168
log.segment.bytes=1073741824
log.retention.check.interval.ms=300000
"#;

/// The minimal KRaft file.
const MINIMAL: &str = "\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@localhost:9093
listeners=PLAINTEXT://:9092,CONTROLLER://:9093
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=/tmp/kraft-combined-logs
";

fn listener(name: &str, host: &str, port: u16) -> Listener {
    Listener {
        name: name.to_string(),
        host: host.to_string(),
        port,
    }
}

fn parse(text: &str) -> Config {
    Config::parse(text).unwrap_or_else(|err| panic!("{err}\n--- in ---\n{text}"))
}

fn parse_err(text: &str) -> ConfigError {
    match Config::parse(text) {
        Ok(config) => panic!("expected an error, got {config:?}\n--- for ---\n{text}"),
        Err(err) => err,
    }
}

/// The error message of `extra` added to `node.id=1`.
fn error_with(extra: &str) -> String {
    parse_err(&format!("node.id=1\n{extra}\n")).to_string()
}

/// Asserts the defaults that no fixture sets.
fn assert_untouched_defaults(c: &Config) {
    assert_eq!(c.default_replication_factor, 1);
    assert_eq!(c.min_insync_replicas, 1);
    assert!(c.auto_create_topics_enable);
    assert!(c.delete_topic_enable);
    assert_eq!(c.message_max_bytes, 1_048_588);
    assert_eq!(c.fetch_max_bytes, 57_671_680);
    assert_eq!(c.max_incremental_fetch_session_cache_slots, 1000);
    assert_eq!(c.compression_type, CompressionType::Producer);
    assert_eq!(
        (
            c.compression_gzip_level,
            c.compression_lz4_level,
            c.compression_zstd_level
        ),
        (-1, 9, 3)
    );
    assert_eq!(c.log_cleanup_policy, vec![CleanupPolicy::Delete]);
    assert_eq!(c.log_roll_ms, 168 * 3_600_000);
    assert_eq!(c.log_retention_bytes, -1);
    assert_eq!(c.log_flush_interval_messages, i64::MAX);
    assert_eq!(c.log_flush_interval_ms, None);
    assert_eq!(c.log_flush_scheduler_interval_ms, i64::MAX);
    assert_eq!(c.effective_log_flush_interval_ms(), i64::MAX);
    assert_eq!(c.log_index_size_max_bytes, 10_485_760);
    assert_eq!(c.log_index_interval_bytes, 4096);
    assert_eq!(c.log_message_timestamp_type, TimestampType::CreateTime);
    assert_eq!(c.log_message_timestamp_before_max_ms, i64::MAX);
    assert_eq!(c.log_message_timestamp_after_max_ms, 3_600_000);
    assert_eq!(c.offsets_topic_num_partitions, 50);
    assert_eq!(c.offsets_topic_segment_bytes, 104_857_600);
    assert_eq!(c.offsets_retention_minutes, 10_080);
    assert_eq!(c.offsets_retention_check_interval_ms, 600_000);
    assert_eq!(c.offset_metadata_max_bytes, 4096);
    assert_eq!(c.group_initial_rebalance_delay_ms, 3000);
    assert_eq!(c.group_min_session_timeout_ms, 6000);
    assert_eq!(c.group_max_session_timeout_ms, 1_800_000);
    assert_eq!(c.group_max_size, i32::MAX);
    assert_eq!(c.transaction_state_log_num_partitions, 50);
    assert_eq!(c.transaction_state_log_segment_bytes, 104_857_600);
    assert_eq!(c.transaction_max_timeout_ms, 900_000);
    assert_eq!(c.transactional_id_expiration_ms, 604_800_000);
    assert_eq!(c.transaction_abort_timed_out_cleanup_interval_ms, 10_000);
    assert_eq!(c.transaction_remove_expired_cleanup_interval_ms, 3_600_000);
    assert_eq!(c.producer_id_expiration_ms, 86_400_000);
    assert_eq!(c.producer_id_expiration_check_interval_ms, 600_000);
    assert_eq!(c.connections_max_idle_ms, 600_000);
    assert_eq!(c.max_connections, i32::MAX);
    assert!(c.listener_max_connections.is_empty());
    assert_eq!(c.max_connections_per_ip, i32::MAX);
    assert!(c.max_connections_per_ip_overrides.is_empty());
    assert_eq!(c.queued_max_request_bytes, 268_435_456);
    assert_eq!(c.broker_rack, None);
    assert_eq!(c.metadata_log_dir, None);
}

// ----- Whole files -----

#[test]
fn kafka_4_quickstart_file_parses_unchanged() {
    let c = parse(KAFKA_4_SERVER_PROPERTIES);
    assert_eq!(c.node_id, 1);
    assert_eq!(
        c.process_roles,
        vec![ProcessRole::Broker, ProcessRole::Controller]
    );
    assert!(c.is_broker() && c.is_controller());
    assert!(c.controller_quorum_voters.is_empty());
    assert_eq!(
        c.controller_quorum_bootstrap_servers,
        vec![HostPort {
            host: "localhost".into(),
            port: 9093
        }]
    );
    assert_eq!(
        c.listeners,
        vec![
            listener("PLAINTEXT", "", 9092),
            listener("CONTROLLER", "", 9093)
        ]
    );
    assert_eq!(
        c.advertised_listeners,
        vec![
            listener("PLAINTEXT", "localhost", 9092),
            listener("CONTROLLER", "localhost", 9093)
        ]
    );
    assert_eq!(
        c.broker_advertised_listeners().collect::<Vec<_>>(),
        vec![&listener("PLAINTEXT", "localhost", 9092)]
    );
    assert_eq!(c.controller_listener_names, vec!["CONTROLLER"]);
    assert_eq!(c.inter_broker_listener_name, "PLAINTEXT");
    assert_eq!(c.listener_security_protocol_map.len(), 5);
    assert_eq!(
        c.security_protocol_for("CONTROLLER"),
        Some(SecurityProtocol::Plaintext)
    );
    assert_eq!(
        c.security_protocol_for("sasl_ssl"),
        Some(SecurityProtocol::SaslSsl)
    );
    assert_eq!(c.socket_request_max_bytes, 104_857_600);
    assert_eq!(c.log_dirs, vec![PathBuf::from("/tmp/kraft-combined-logs")]);
    assert_eq!(c.num_partitions, 1);
    assert_eq!(c.offsets_topic_replication_factor, 1);
    assert_eq!(c.transaction_state_log_replication_factor, 1);
    assert_eq!(c.log_retention_ms, 168 * 3_600_000);
    assert_eq!(c.log_segment_bytes, 1_073_741_824);
    assert_eq!(c.log_retention_check_interval_ms, 300_000);
    assert_untouched_defaults(&c);
    assert_eq!(c.unknown_keys, Vec::<String>::new());
    assert_eq!(
        c.ignored_keys,
        vec![
            "num.io.threads",
            "num.network.threads",
            "num.recovery.threads.per.data.dir",
            "share.coordinator.state.topic.min.isr",
            "share.coordinator.state.topic.replication.factor",
            "socket.receive.buffer.bytes",
            "socket.send.buffer.bytes",
        ]
    );
    // Commented-out keys are not read.
    assert_eq!(c.get("log.flush.interval.ms"), None);
    assert_eq!(c.get("num.io.threads"), Some("8"));
}

#[test]
fn kafka_3_kraft_file_parses_unchanged() {
    let c = parse(KAFKA_3_KRAFT_SERVER_PROPERTIES);
    assert_eq!(
        c.controller_quorum_voters,
        vec![QuorumVoter {
            id: 1,
            host: "localhost".into(),
            port: 9093
        }]
    );
    assert_eq!(
        c.advertised_listeners,
        vec![listener("PLAINTEXT", "localhost", 9092)]
    );
    // The controller listener is advertised from `listeners`, as in Kafka 4.
    assert_eq!(
        c.advertised_listener_for("CONTROLLER"),
        Some(&listener("CONTROLLER", "localhost", 9093))
    );
    assert!(c.unknown_keys.is_empty());
    assert_eq!(c.ignored_keys.len(), 5);
    assert_untouched_defaults(&c);
}

#[test]
fn minimal_file() {
    let c = parse(MINIMAL);
    assert_eq!(c.node_id, 1);
    assert_eq!(
        c.process_roles,
        vec![ProcessRole::Broker, ProcessRole::Controller]
    );
    assert_eq!(c.controller_quorum_voters.len(), 1);
    assert_eq!(
        c.broker_listeners().collect::<Vec<_>>(),
        vec![&listener("PLAINTEXT", "", 9092)]
    );
    assert_eq!(
        c.controller_listeners().collect::<Vec<_>>(),
        vec![&listener("CONTROLLER", "", 9093)]
    );
    // Default advertised listeners: the non-controller listeners, empty host as localhost.
    assert_eq!(
        c.advertised_listeners,
        vec![listener("PLAINTEXT", "localhost", 9092)]
    );
    assert_eq!(
        c.advertised_listener_for("plaintext"),
        Some(&listener("PLAINTEXT", "localhost", 9092))
    );
    assert_eq!(
        c.advertised_listener_for("CONTROLLER"),
        Some(&listener("CONTROLLER", "localhost", 9093))
    );
    assert_eq!(c.advertised_listener_for("EXTERNAL"), None);
    assert_eq!(c.listener_security_protocol_map.len(), 2);
    assert_eq!(c.security_protocol_for("SSL"), None);
    assert_eq!(c.inter_broker_listener_name, "PLAINTEXT");
    assert_eq!(c.primary_log_dir(), Path::new("/tmp/kraft-combined-logs"));
    assert_eq!(
        c.effective_metadata_log_dir(),
        Path::new("/tmp/kraft-combined-logs")
    );
    // Kafka 4.x defaults for everything else.
    assert_eq!(c.num_partitions, 1);
    assert_eq!(c.socket_request_max_bytes, 104_857_600);
    assert_eq!(c.log_segment_bytes, 1_073_741_824);
    assert_eq!(c.log_retention_ms, 604_800_000);
    assert_eq!(c.log_retention_check_interval_ms, 300_000);
    assert_eq!(c.offsets_topic_replication_factor, 3);
    assert_eq!(c.transaction_state_log_replication_factor, 3);
    assert_untouched_defaults(&c);
    assert!(c.unknown_keys.is_empty() && c.ignored_keys.is_empty());
}

#[test]
fn kafka_3_broker_only_and_controller_only_files() {
    let broker = parse(
        "process.roles=broker\nnode.id=2\ncontroller.quorum.voters=1@localhost:9093\n\
         listeners=PLAINTEXT://localhost:9092\ninter.broker.listener.name=PLAINTEXT\n\
         advertised.listeners=PLAINTEXT://localhost:9092\ncontroller.listener.names=CONTROLLER\n\
         listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL\n\
         log.dirs=/tmp/kraft-broker-logs\n",
    );
    assert_eq!(broker.process_roles, vec![ProcessRole::Broker]);
    assert_eq!(broker.controller_listeners().count(), 0);
    assert_eq!(broker.advertised_listener_for("CONTROLLER"), None);

    let controller = parse(
        "process.roles=controller\nnode.id=1\ncontroller.quorum.voters=1@localhost:9093\n\
         listeners=CONTROLLER://:9093\ncontroller.listener.names=CONTROLLER\n\
         log.dirs=/tmp/kraft-controller-logs\n",
    );
    assert_eq!(controller.process_roles, vec![ProcessRole::Controller]);
    assert!(controller.advertised_listeners.is_empty());
    assert_eq!(controller.broker_listeners().count(), 0);
    // Default map plus CONTROLLER as PLAINTEXT, as Kafka's effective map.
    assert_eq!(
        controller.security_protocol_for("CONTROLLER"),
        Some(SecurityProtocol::Plaintext)
    );
    assert_eq!(controller.listener_security_protocol_map.len(), 5);
}

#[test]
fn embedded_default_is_the_kraft_quickstart() {
    let c = Config::embedded_default();
    assert_eq!(c.node_id, 1);
    assert_eq!(
        c.process_roles,
        vec![ProcessRole::Broker, ProcessRole::Controller]
    );
    assert_eq!(
        c.controller_quorum_voters,
        vec![QuorumVoter {
            id: 1,
            host: "localhost".into(),
            port: 9093
        }]
    );
    assert_eq!(
        c.listeners,
        vec![
            listener("PLAINTEXT", "", 9092),
            listener("CONTROLLER", "", 9093)
        ]
    );
    assert_eq!(c.controller_listener_names, vec!["CONTROLLER"]);
    assert_eq!(
        c.security_protocol_for("CONTROLLER"),
        Some(SecurityProtocol::Plaintext)
    );
    assert_eq!(
        c.advertised_listener_for("PLAINTEXT"),
        Some(&listener("PLAINTEXT", "localhost", 9092))
    );
    assert_eq!(c.log_dirs, vec![PathBuf::from("/tmp/kraft-combined-logs")]);
    assert_eq!(c.num_partitions, 1);
    assert_eq!(c.offsets_topic_replication_factor, 1);
    assert_eq!(c.transaction_state_log_replication_factor, 1);
    assert_untouched_defaults(&c);
    assert!(c.unknown_keys.is_empty());
    assert!(c.ignored_keys.is_empty());
    assert_eq!(c, parse(EMBEDDED_DEFAULT));
}

// ----- Defaults -----

#[test]
fn defaults_of_a_file_with_only_node_id() {
    let c = parse("node.id=7");
    assert_eq!(c.node_id, 7);
    assert_eq!(
        c.process_roles,
        vec![ProcessRole::Broker, ProcessRole::Controller]
    );
    assert!(c.controller_quorum_voters.is_empty());
    assert!(c.controller_quorum_bootstrap_servers.is_empty());
    assert_eq!(c.listeners, vec![listener("PLAINTEXT", "", 9092)]);
    assert_eq!(
        c.advertised_listeners,
        vec![listener("PLAINTEXT", "localhost", 9092)]
    );
    assert!(c.controller_listener_names.is_empty());
    let map: Vec<(&str, SecurityProtocol)> = c
        .listener_security_protocol_map
        .iter()
        .map(|(name, protocol)| (name.as_str(), *protocol))
        .collect();
    assert_eq!(
        map,
        vec![
            ("PLAINTEXT", SecurityProtocol::Plaintext),
            ("SASL_PLAINTEXT", SecurityProtocol::SaslPlaintext),
            ("SASL_SSL", SecurityProtocol::SaslSsl),
            ("SSL", SecurityProtocol::Ssl),
        ]
    );
    assert_eq!(c.inter_broker_listener_name, "PLAINTEXT");
    assert_eq!(c.log_dirs, vec![PathBuf::from("/tmp/kafka-logs")]);
    assert_eq!(c.num_partitions, 1);
    assert_eq!(c.socket_request_max_bytes, 104_857_600);
    assert_eq!(c.log_segment_bytes, 1_073_741_824);
    assert_eq!(c.log_retention_ms, 604_800_000);
    assert_eq!(c.log_retention_check_interval_ms, 300_000);
    assert_eq!(c.offsets_topic_replication_factor, 3);
    assert_eq!(c.transaction_state_log_replication_factor, 3);
    assert_untouched_defaults(&c);
}

#[test]
fn broker_id_is_a_synonym_of_node_id() {
    assert_eq!(parse("broker.id=3").node_id, 3);
    assert_eq!(parse("broker.id=3\nnode.id=3").node_id, 3);
    // Kafka's unset broker.id is -1.
    assert_eq!(parse("broker.id=-1\nnode.id=4").node_id, 4);
    assert_eq!(
        parse_err("broker.id=3\nnode.id=4").to_string(),
        "node.id (4) and broker.id (3) must be equal when both are set"
    );
}

#[test]
fn controller_listener_gets_plaintext_only_with_the_default_map_and_no_tls() {
    let c = parse(
        "node.id=1\nlisteners=PLAINTEXT://:9092,CONTROLLER://:9093\ncontroller.listener.names=CONTROLLER",
    );
    assert_eq!(
        c.security_protocol_for("CONTROLLER"),
        Some(SecurityProtocol::Plaintext)
    );
    // An explicit map without CONTROLLER: no mapping, so the listener is refused.
    let err = error_with(
        "listeners=PLAINTEXT://:9092,CONTROLLER://:9093\ncontroller.listener.names=CONTROLLER\n\
         listener.security.protocol.map=PLAINTEXT:PLAINTEXT",
    );
    assert_eq!(
        err,
        "listener \"CONTROLLER://:9093\" in listeners: unknown security protocol (add it to listener.security.protocol.map)"
    );
    // With an SSL listener, Kafka does not add the PLAINTEXT mapping either.
    let err = error_with(
        "listeners=SSL://:9094,CONTROLLER://:9093\ncontroller.listener.names=CONTROLLER\n\
         security.inter.broker.protocol=SSL",
    );
    assert!(err.contains("unknown security protocol"), "{err}");
}

#[test]
fn retention_and_roll_precedence() {
    let c = parse("node.id=1\nlog.retention.hours=1");
    assert_eq!(c.log_retention_ms, 3_600_000);
    let c = parse("node.id=1\nlog.retention.hours=1\nlog.retention.minutes=2");
    assert_eq!(c.log_retention_ms, 120_000);
    let c = parse("node.id=1\nlog.retention.hours=1\nlog.retention.minutes=2\nlog.retention.ms=5");
    assert_eq!(c.log_retention_ms, 5);
    assert_eq!(parse("node.id=1\nlog.retention.ms=-1").log_retention_ms, -1);
    assert_eq!(
        parse("node.id=1\nlog.retention.hours=-5").log_retention_ms,
        -1
    );
    assert_eq!(parse("node.id=1\nlog.retention.ms=0").log_retention_ms, 0);
    assert_eq!(
        parse("node.id=1\nlog.retention.bytes=-1").log_retention_bytes,
        -1
    );
    assert_eq!(parse("node.id=1\nlog.roll.hours=2").log_roll_ms, 7_200_000);
    assert_eq!(
        parse("node.id=1\nlog.roll.hours=2\nlog.roll.ms=1000").log_roll_ms,
        1000
    );
    let c = parse("node.id=1\nlog.flush.interval.ms=1000\nlog.flush.scheduler.interval.ms=500");
    assert_eq!(c.log_flush_interval_ms, Some(1000));
    assert_eq!(c.effective_log_flush_interval_ms(), 1000);
    assert_eq!(c.log_flush_scheduler_interval_ms, 500);
}

#[test]
fn typed_values() {
    let c = parse(
        "node.id=1\nauto.create.topics.enable=FALSE\ndelete.topic.enable = false \n\
         log.message.timestamp.type=LogAppendTime\ncompression.type=zstd\n\
         log.cleanup.policy=compact, delete\nbroker.rack=rack-1\ndefault.replication.factor=3\n\
         metadata.log.dir=/var/meta\nlog.dir=/a,/b\nlog.flush.interval.messages=10000\n\
         message.max.bytes=+2000\n",
    );
    assert!(!c.auto_create_topics_enable);
    assert!(!c.delete_topic_enable);
    assert_eq!(c.log_message_timestamp_type, TimestampType::LogAppendTime);
    assert_eq!(c.compression_type, CompressionType::Zstd);
    assert_eq!(
        c.log_cleanup_policy,
        vec![CleanupPolicy::Compact, CleanupPolicy::Delete]
    );
    assert_eq!(c.broker_rack.as_deref(), Some("rack-1"));
    assert_eq!(c.default_replication_factor, 3);
    assert_eq!(c.effective_metadata_log_dir(), Path::new("/var/meta"));
    assert_eq!(c.log_dirs, vec![PathBuf::from("/a"), PathBuf::from("/b")]);
    assert_eq!(c.primary_log_dir(), Path::new("/a"));
    assert_eq!(c.log_flush_interval_messages, 10_000);
    assert_eq!(c.message_max_bytes, 2000);
    // log.dirs wins over log.dir.
    let c = parse("node.id=1\nlog.dir=/a\nlog.dirs=/c, /d");
    assert_eq!(c.log_dirs, vec![PathBuf::from("/c"), PathBuf::from("/d")]);
    assert!(c.unknown_keys.is_empty() && c.ignored_keys.is_empty());
    // A blank rack is no rack.
    assert_eq!(parse("node.id=1\nbroker.rack=").broker_rack, None);
}

// ----- Listeners -----

#[test]
fn listener_forms() {
    let c = parse(
        "node.id=1\nlisteners=plaintext://localhost:9092,EXTERNAL://[::1]:9094,INTERNAL://10.0.0.1:9095,CONTROLLER://:0\n\
         listener.security.protocol.map=PLAINTEXT:PLAINTEXT,EXTERNAL:SASL_SSL,internal:ssl,CONTROLLER:PLAINTEXT\n\
         controller.listener.names=controller\nadvertised.listeners=PLAINTEXT://broker1.example.com:19092,EXTERNAL://[2001:db8::1]:9094\n",
    );
    assert_eq!(
        c.listeners,
        vec![
            listener("PLAINTEXT", "localhost", 9092),
            listener("EXTERNAL", "::1", 9094),
            listener("INTERNAL", "10.0.0.1", 9095),
            listener("CONTROLLER", "", 0),
        ]
    );
    assert_eq!(c.controller_listener_names, vec!["CONTROLLER"]);
    assert_eq!(c.broker_listeners().count(), 3);
    assert_eq!(
        c.security_protocol_for("internal"),
        Some(SecurityProtocol::Ssl)
    );
    assert_eq!(
        c.advertised_listener_for("EXTERNAL"),
        Some(&listener("EXTERNAL", "2001:db8::1", 9094))
    );
    // INTERNAL is not advertised: advertised.listeners is explicit.
    assert_eq!(c.advertised_listener_for("INTERNAL"), None);
    assert_eq!(c.listeners[1].to_string(), "EXTERNAL://[::1]:9094");
    assert_eq!(c.listeners[1].bind_address(), "[::1]:9094");
    assert_eq!(c.listeners[0].bind_address(), "localhost:9092");
    assert_eq!(c.listeners[3].to_string(), "CONTROLLER://:0");
    assert_eq!(c.listeners[3].bind_address(), "0.0.0.0:0");
    assert!(c.listeners[3].is_wildcard_host());
}

#[test]
fn ipv4_and_ipv6_listeners_may_share_a_port() {
    let c = parse(
        "node.id=1\nlisteners=PLAINTEXT://127.0.0.1:9092,V6://[::1]:9092\n\
         listener.security.protocol.map=PLAINTEXT:PLAINTEXT,V6:PLAINTEXT\n",
    );
    assert_eq!(c.listeners.len(), 2);
}

#[test]
fn listener_errors() {
    let cases = [
        (
            "listeners=FOO://x:1",
            "listener \"FOO://x:1\" in listeners: unknown security protocol (add it to listener.security.protocol.map)",
        ),
        (
            "listeners=FOO://x",
            "listener \"FOO://x\" in listeners: unknown security protocol (add it to listener.security.protocol.map)",
        ),
        (
            "listeners=PLAINTEXT://x",
            "listener \"PLAINTEXT://x\" in listeners: expected host:port",
        ),
        (
            "listeners=localhost:9092",
            "listener \"localhost:9092\" in listeners: expected NAME://host:port",
        ),
        (
            "listeners=://:9092",
            "listener \"://:9092\" in listeners: missing listener name before ://",
        ),
        (
            "listeners=PLAINTEXT://:70000",
            "listener \"PLAINTEXT://:70000\" in listeners: port 70000 out of range (0 to 65535)",
        ),
        (
            "listeners=PLAINTEXT://:-1",
            "listener \"PLAINTEXT://:-1\" in listeners: port -1 out of range (0 to 65535)",
        ),
        (
            "listeners=PLAINTEXT://:http",
            "listener \"PLAINTEXT://:http\" in listeners: invalid port \"http\": expected a number",
        ),
        (
            "listeners=PLAINTEXT://[::1:9092",
            "listener \"PLAINTEXT://[::1:9092\" in listeners: missing ] after an IPv6 address",
        ),
        (
            "listeners=PLAINTEXT://ho/st:9092",
            "listener \"PLAINTEXT://ho/st:9092\" in listeners: invalid character '/' in host \"ho/st\"",
        ),
        (
            "listeners=PLAINTEXT://:9092,plaintext://:9093",
            "listener \"plaintext://:9093\" in listeners: duplicate listener name PLAINTEXT",
        ),
        (
            "listeners=PLAINTEXT://:9092,SSL://:9092",
            "listener \"PLAINTEXT://:9092\" in listeners: port 9092 is used by another listener (only an IPv4 and an IPv6 address may share a port)",
        ),
        (
            "listeners=PLAINTEXT://:9092\nadvertised.listeners=PLAINTEXT://a:1,PLAINTEXT://b:2",
            "listener \"PLAINTEXT://b:2\" in advertised.listeners: duplicate listener name PLAINTEXT",
        ),
        (
            "listeners=PLAINTEXT://:9092\nadvertised.listeners=SSL://host:9093",
            "listener \"SSL://host:9093\" in advertised.listeners: listener name SSL is not defined in listeners (defined: PLAINTEXT)",
        ),
        (
            "advertised.listeners=PLAINTEXT://0.0.0.0:9092",
            "listener \"PLAINTEXT://0.0.0.0:9092\" in advertised.listeners: cannot advertise the non-routable address 0.0.0.0 (set advertised.listeners)",
        ),
        (
            "listeners=PLAINTEXT://0.0.0.0:9092",
            "listener \"PLAINTEXT://0.0.0.0:9092\" in advertised.listeners: cannot advertise the non-routable address 0.0.0.0 (set advertised.listeners)",
        ),
    ];
    for (extra, expected) in cases {
        assert_eq!(error_with(extra), expected, "for {extra}");
    }
    // 0.0.0.0 is fine to bind when something routable is advertised.
    let c = parse(
        "node.id=1\nlisteners=PLAINTEXT://0.0.0.0:9092\nadvertised.listeners=PLAINTEXT://:9092",
    );
    assert_eq!(
        c.advertised_listeners,
        vec![listener("PLAINTEXT", "localhost", 9092)]
    );
}

#[test]
fn role_and_listener_consistency_errors() {
    let cases = [
        (
            "process.roles=broker\nlisteners=PLAINTEXT://:9092,CONTROLLER://:9093\ncontroller.listener.names=CONTROLLER",
            "listeners must not contain the controller listener CONTROLLER without the controller role",
        ),
        (
            "listeners=PLAINTEXT://:9092\ncontroller.listener.names=CONTROLLER",
            "controller.listener.names contains CONTROLLER, which is not in listeners (required with the controller role)",
        ),
        (
            "process.roles=controller\nlisteners=PLAINTEXT://:9092,CONTROLLER://:9093\ncontroller.listener.names=CONTROLLER",
            "with process.roles=controller, listeners may only contain controller listeners (found PLAINTEXT)",
        ),
        (
            "listeners=CONTROLLER://:9093\ncontroller.listener.names=CONTROLLER",
            "there must be at least one broker listener in listeners and advertised.listeners (perhaps all of them are in controller.listener.names?)",
        ),
        (
            "listeners=EXTERNAL://:9092\nlistener.security.protocol.map=EXTERNAL:PLAINTEXT",
            "the inter-broker listener PLAINTEXT (inter.broker.listener.name or security.inter.broker.protocol) must be one of the advertised broker listeners: EXTERNAL",
        ),
        (
            "inter.broker.listener.name=PLAINTEXT\nsecurity.inter.broker.protocol=PLAINTEXT",
            "only one of inter.broker.listener.name and security.inter.broker.protocol may be set",
        ),
        (
            "inter.broker.listener.name=INTERNAL",
            "invalid value \"INTERNAL\" for inter.broker.listener.name: expected a listener name of listener.security.protocol.map",
        ),
        (
            "security.inter.broker.protocol=TLS",
            "invalid value \"TLS\" for security.inter.broker.protocol: expected one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL",
        ),
        (
            "listeners=PLAINTEXT://:9092,CONTROLLER://:9093\ncontroller.listener.names=CONTROLLER,PLAINTEXT",
            "controller.listener.names must not contain the inter-broker listener PLAINTEXT",
        ),
        (
            "controller.quorum.voters=2@localhost:9093\nlisteners=PLAINTEXT://:9092,CONTROLLER://:9093\ncontroller.listener.names=CONTROLLER",
            "with the controller role, node.id 1 must be one of controller.quorum.voters",
        ),
        (
            "process.roles=broker\ncontroller.listener.names=CONTROLLER\nlistener.security.protocol.map=PLAINTEXT:PLAINTEXT",
            "invalid value \"CONTROLLER\" for controller.listener.names: expected listener names with a security protocol (add it to listener.security.protocol.map)",
        ),
    ];
    for (extra, expected) in cases {
        assert_eq!(error_with(extra), expected, "for {extra}");
    }
    // The inter-broker listener named by protocol.
    let c = parse("node.id=1\nlisteners=SSL://:9093\nsecurity.inter.broker.protocol=ssl\n");
    assert_eq!(c.inter_broker_listener_name, "SSL");
    // A broker-only node does not need to be a voter.
    let c = parse(
        "node.id=5\nprocess.roles=broker\ncontroller.quorum.voters=1@c1:9093,2@c2:9093,3@[::1]:9093\n\
         controller.listener.names=CONTROLLER",
    );
    assert_eq!(c.controller_quorum_voters[2].host, "::1");
}

// ----- Errors of single values -----

#[test]
fn missing_node_id() {
    let err = parse_err("process.roles=broker,controller\n");
    assert!(matches!(err, ConfigError::Missing { key: "node.id" }));
    assert_eq!(err.to_string(), "missing required key node.id");
}

#[test]
fn value_errors_name_key_value_and_expectation() {
    let cases = [
        (
            "log.segment.bytes=abc",
            "invalid value \"abc\" for log.segment.bytes: expected an integer",
        ),
        (
            "log.segment.bytes=13",
            "invalid value \"13\" for log.segment.bytes: expected an integer >= 14",
        ),
        (
            "log.segment.bytes=4294967296",
            "invalid value \"4294967296\" for log.segment.bytes: expected an integer between 14 and 2147483647",
        ),
        (
            "log.segment.bytes=",
            "invalid value \"\" for log.segment.bytes: expected an integer",
        ),
        (
            "log.segment.bytes=1.5",
            "invalid value \"1.5\" for log.segment.bytes: expected an integer",
        ),
        (
            "message.max.bytes=-1",
            "invalid value \"-1\" for message.max.bytes: expected an integer >= 0",
        ),
        (
            "max.incremental.fetch.session.cache.slots=-1",
            "invalid value \"-1\" for max.incremental.fetch.session.cache.slots: expected an integer >= 0",
        ),
        (
            "num.partitions=0",
            "invalid value \"0\" for num.partitions: expected an integer >= 1",
        ),
        (
            "socket.request.max.bytes=0",
            "invalid value \"0\" for socket.request.max.bytes: expected an integer >= 1",
        ),
        (
            "socket.request.max.bytes=-5",
            "invalid value \"-5\" for socket.request.max.bytes: expected an integer >= 1",
        ),
        (
            "log.retention.ms=99999999999999999999",
            "invalid value \"99999999999999999999\" for log.retention.ms: expected an integer between -9223372036854775808 and 9223372036854775807",
        ),
        (
            "log.roll.hours=0",
            "invalid value \"0\" for log.roll.hours: expected an integer >= 1",
        ),
        (
            "log.index.size.max.bytes=3",
            "invalid value \"3\" for log.index.size.max.bytes: expected an integer >= 4",
        ),
        (
            "offsets.topic.replication.factor=0",
            "invalid value \"0\" for offsets.topic.replication.factor: expected an integer between 1 and 32767",
        ),
        (
            "default.replication.factor=40000",
            "invalid value \"40000\" for default.replication.factor: expected an integer between 1 and 32767",
        ),
        (
            "log.retention.bytes=ten",
            "invalid value \"ten\" for log.retention.bytes: expected an integer",
        ),
        (
            "auto.create.topics.enable=yes",
            "invalid value \"yes\" for auto.create.topics.enable: expected true or false",
        ),
        (
            "log.message.timestamp.type=createtime",
            "invalid value \"createtime\" for log.message.timestamp.type: expected one of CreateTime, LogAppendTime",
        ),
        (
            "compression.type=brotli",
            "invalid value \"brotli\" for compression.type: expected one of uncompressed, zstd, lz4, snappy, gzip, producer",
        ),
        (
            "log.cleanup.policy=delete,shred",
            "invalid value \"shred\" for log.cleanup.policy: expected one of delete, compact",
        ),
        (
            "process.roles=broker,zookeeper",
            "invalid value \"zookeeper\" for process.roles: expected one of broker, controller",
        ),
        (
            "process.roles=broker,broker",
            "invalid value \"broker,broker\" for process.roles: expected broker and/or controller, each once",
        ),
        (
            "process.roles=",
            "invalid value \"\" for process.roles: expected broker and/or controller",
        ),
        (
            "log.dirs=",
            "invalid value \"\" for log.dirs: expected at least one directory",
        ),
        (
            "log.dirs=/a,/b,/a",
            "invalid value \"/a\" for log.dirs: expected distinct directories (listed twice)",
        ),
        (
            "controller.quorum.voters=localhost:9093",
            "invalid value \"localhost:9093\" for controller.quorum.voters: expected id@host:port (missing the id@ prefix)",
        ),
        (
            "controller.quorum.voters=x@localhost:9093",
            "invalid value \"x@localhost:9093\" for controller.quorum.voters: expected id@host:port (invalid node id \"x\")",
        ),
        (
            "controller.quorum.voters=1@localhost:9093,1@other:9093",
            "invalid value \"1@other:9093\" for controller.quorum.voters: expected distinct voter ids (1 appears twice)",
        ),
        (
            "controller.quorum.bootstrap.servers=:9093",
            "invalid value \":9093\" for controller.quorum.bootstrap.servers: expected host:port (missing host)",
        ),
        (
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,EXTERNAL:TLS",
            "invalid value \"EXTERNAL:TLS\" for listener.security.protocol.map: expected LISTENER_NAME:PROTOCOL with a protocol among PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL",
        ),
        (
            "listener.security.protocol.map=PLAINTEXT",
            "invalid value \"PLAINTEXT\" for listener.security.protocol.map: expected LISTENER_NAME:PROTOCOL with a protocol among PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL",
        ),
        (
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,plaintext:SSL",
            "invalid value \"plaintext:SSL\" for listener.security.protocol.map: expected each listener name once (PLAINTEXT appears twice)",
        ),
        (
            "group.min.session.timeout.ms=10000\ngroup.max.session.timeout.ms=5000",
            "group.max.session.timeout.ms (5000) must not be less than group.min.session.timeout.ms (10000)",
        ),
        (
            "log.flush.interval.ms=-1",
            "invalid value \"-1\" for log.flush.interval.ms: expected an integer >= 0",
        ),
    ];
    for (extra, expected) in cases {
        assert_eq!(error_with(extra), expected, "for {extra}");
    }
    assert_eq!(
        parse_err("node.id=-2").to_string(),
        "invalid value \"-2\" for node.id: expected an integer >= 0"
    );
    assert_eq!(
        parse_err("node.id=one").to_string(),
        "invalid value \"one\" for node.id: expected an integer"
    );
    // Variants carry the parts.
    match parse_err("node.id=1\nnum.partitions=x") {
        ConfigError::InvalidValue {
            key,
            value,
            expected,
        } => {
            assert_eq!(
                (key.as_str(), value.as_str(), expected.as_str()),
                ("num.partitions", "x", "an integer")
            );
        }
        other => panic!("{other:?}"),
    }
}

// ----- Unknown and ignored keys -----

#[test]
fn unknown_and_ignored_keys() {
    let c = parse(
        "node.id=1\nfoo.bar=1\nzookeeper.connect=localhost:2181\nnum.io.threads=8\n\
         log.cleaner.threads=2\nssl.keystore.location=/k\nlistener.name.external.ssl.keystore.type=PKCS12\n\
         share.coordinator.threads=1\nlog.segment.byte=1\n",
    );
    assert_eq!(
        c.unknown_keys,
        vec!["foo.bar", "log.segment.byte", "zookeeper.connect"]
    );
    assert_eq!(
        c.ignored_keys,
        vec![
            "listener.name.external.ssl.keystore.type",
            "num.io.threads",
            "share.coordinator.threads",
            "ssl.keystore.location",
        ]
    );
    assert!(is_ignored_key("socket.send.buffer.bytes"));
    assert!(!is_ignored_key("log.segment.bytes"));
    // Ignored values are not checked.
    assert_eq!(
        parse("node.id=1\nnum.io.threads=many").ignored_keys,
        vec!["num.io.threads"]
    );
    // Used keys are neither ignored nor unknown, even when they lose to another key.
    let c = parse("node.id=1\nlog.dir=/x\nlog.dirs=/y\nlog.retention.hours=1\nlog.retention.ms=5");
    assert!(c.unknown_keys.is_empty() && c.ignored_keys.is_empty());
}

// ----- Overrides -----

#[test]
fn overrides_apply_on_top_of_the_file() {
    let c = parse(MINIMAL)
        .with_overrides(&[
            ("node.id", "1"),
            ("num.partitions", "3"),
            ("log.dirs", "/data/a,/data/b"),
        ])
        .unwrap();
    assert_eq!(c.num_partitions, 3);
    assert_eq!(
        c.log_dirs,
        vec![PathBuf::from("/data/a"), PathBuf::from("/data/b")]
    );
    assert_eq!(c.get("num.partitions"), Some("3"));
    // Derived values are derived again: minutes now win over the default hours.
    let c = c
        .with_overrides(&[("log.retention.minutes".to_string(), "10".to_string())])
        .unwrap();
    assert_eq!(c.log_retention_ms, 600_000);
    // Overrides can add unknown keys, and are checked.
    let c = Config::embedded_default()
        .with_overrides(&[("custom.key", "x")])
        .unwrap();
    assert_eq!(c.unknown_keys, vec!["custom.key"]);
    let err = Config::embedded_default()
        .with_overrides(&[("log.segment.bytes", "abc")])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid value \"abc\" for log.segment.bytes: expected an integer"
    );
    let err = Config::embedded_default()
        .with_overrides(&[(" ", "x")])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid override \"=x\": expected key=value"
    );
    // Overriding listeners re-derives the advertised default.
    let c = parse("node.id=1")
        .with_overrides(&[("listeners", "PLAINTEXT://:19092")])
        .unwrap();
    assert_eq!(
        c.advertised_listeners,
        vec![listener("PLAINTEXT", "localhost", 19092)]
    );
}

#[test]
fn parse_override_arguments() {
    assert_eq!(
        parse_override("a.b=c").unwrap(),
        ("a.b".to_string(), "c".to_string())
    );
    assert_eq!(
        parse_override(" a = b=c").unwrap(),
        ("a".to_string(), " b=c".to_string())
    );
    assert_eq!(
        parse_override("a=").unwrap(),
        ("a".to_string(), String::new())
    );
    assert_eq!(
        parse_override("abc").unwrap_err().to_string(),
        "invalid override \"abc\": expected key=value"
    );
    assert!(parse_override("=x").is_err());
}

// ----- Properties syntax -----

#[test]
fn properties_separators_and_whitespace() {
    let c = parse(
        "node.id: 1\nnum.partitions 4\n   log.segment.bytes   =   2048   \n\tmessage.max.bytes\t:\t100\n\
         offsets.topic.num.partitions=\t 7\n",
    );
    assert_eq!(c.node_id, 1);
    assert_eq!(c.num_partitions, 4);
    assert_eq!(c.log_segment_bytes, 2048);
    assert_eq!(c.message_max_bytes, 100);
    assert_eq!(c.offsets_topic_num_partitions, 7);
    // `key value=x`: the value is `value=x`.
    let c = parse("node.id=1\nbroker.rack rack=a");
    assert_eq!(c.broker_rack.as_deref(), Some("rack=a"));
    // A key without value.
    let c = parse("node.id=1\nbroker.rack");
    assert_eq!(c.broker_rack, None);
    assert_eq!(c.get("broker.rack"), Some(""));
}

#[test]
fn properties_comments() {
    let c = parse(
        "# a comment\n! another comment\n   # indented comment\n  ! indented\n\
         #node.id=2\n!node.id=3\nnode.id=1\n# C:\\users\\unicode \\uZZZZ in a comment\n\
         # comment ending with a backslash \\\nnum.partitions=2\n",
    );
    assert_eq!(c.node_id, 1);
    // A backslash at the end of a comment does not continue it.
    assert_eq!(c.num_partitions, 2);
    // `#` inside a value is not a comment.
    let c = parse("node.id=1\nbroker.rack=rack#1 !x");
    assert_eq!(c.broker_rack.as_deref(), Some("rack#1 !x"));
}

#[test]
fn properties_escapes() {
    let c = parse(
        "node.id=1\nbroker.rack=a\\tb\\u0041\\\\c\\=d\\:e\\ f\nmy\\=odd\\:key\\ name=v\ncustom.unicode=caf\\u00e9 \u{e9}\u{263a} \\\u{e9}\n",
    );
    assert_eq!(c.broker_rack.as_deref(), Some("a\tbA\\c=d:e f"));
    assert_eq!(c.get("my=odd:key name"), Some("v"));
    assert_eq!(c.get("custom.unicode"), Some("café é☺ é"));
    assert_eq!(c.unknown_keys, vec!["custom.unicode", "my=odd:key name"]);
}

#[test]
fn properties_line_continuations() {
    let c = parse(
        "node.id=1\nlisteners=PLAINTEXT://:9092,\\\n    CONTROLLER://:9093\ncontroller.listener.names=\\\n  CONTROLLER\n\
         log.dirs=/a,\\\n\t/b\nbroker.rack=ends-with-escaped-backslash\\\\\nnum.partitions=3\n",
    );
    assert_eq!(c.listeners.len(), 2);
    assert_eq!(c.controller_listener_names, vec!["CONTROLLER"]);
    assert_eq!(c.log_dirs, vec![PathBuf::from("/a"), PathBuf::from("/b")]);
    assert_eq!(
        c.broker_rack.as_deref(),
        Some("ends-with-escaped-backslash\\")
    );
    assert_eq!(c.num_partitions, 3);
    // A continuation line starting with `#` is part of the value, not a comment.
    let c = parse("node.id=1\nbroker.rack=a\\\n#b\n");
    assert_eq!(c.broker_rack.as_deref(), Some("a#b"));
}

#[test]
fn properties_line_endings_and_duplicates() {
    let c = parse("node.id=1\r\nnum.partitions=2\rnum.partitions=5\r\nlog.segment.bytes=100");
    assert_eq!(c.num_partitions, 5, "the last value of a key wins");
    assert_eq!(c.log_segment_bytes, 100);
}

#[test]
fn properties_syntax_error_has_line_number() {
    let err = parse_err("node.id=1\n# fine\nbroker.rack=\\uZZZZ\n");
    assert!(
        matches!(err, ConfigError::Syntax { line: Some(3), .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "invalid properties syntax on line 3: Malformed \\uxxxx encoding: not hex."
    );
    let err = parse_err("node.id=1\nbroker.rack=\u{1F600}\n");
    assert!(
        matches!(err, ConfigError::Syntax { line: Some(2), .. }),
        "{err:?}"
    );
}

// ----- Files -----

#[test]
fn load_reads_a_file_and_names_it_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.properties");
    std::fs::write(&path, KAFKA_4_SERVER_PROPERTIES).unwrap();
    assert_eq!(
        Config::load(&path).unwrap(),
        parse(KAFKA_4_SERVER_PROPERTIES)
    );

    std::fs::write(&path, "node.id=1\nlog.segment.bytes=abc\n").unwrap();
    let err = Config::load(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: invalid value \"abc\" for log.segment.bytes: expected an integer",
            path.display()
        )
    );
    assert!(matches!(err.root(), ConfigError::InvalidValue { .. }));

    let missing = dir.path().join("missing.properties");
    let err = Config::load(&missing).unwrap_err();
    assert!(matches!(err, ConfigError::Io { .. }));
    assert!(
        err.to_string().starts_with(&format!(
            "cannot read configuration file {}: ",
            missing.display()
        )),
        "{err}"
    );

    // Not UTF-8: read as ISO-8859-1, as Java does.
    std::fs::write(&path, b"node.id=1\nbroker.rack=caf\xe9\n").unwrap();
    assert_eq!(
        Config::load(&path).unwrap().broker_rack.as_deref(),
        Some("café")
    );
}

#[test]
fn connection_limits_with_kafkas_checks() {
    let c = parse(
        "node.id=1\nlisteners=PLAINTEXT://:9092,EXTERNAL://:9094\n\
         listener.security.protocol.map=PLAINTEXT:PLAINTEXT,EXTERNAL:PLAINTEXT\n\
         max.connections=100\nlistener.name.external.max.connections=7\n\
         max.connections.per.ip=0\n\
         max.connections.per.ip.overrides= hostName:100 , 127.0.0.1:200,::1:3,hostName:5\n",
    );
    assert_eq!(c.max_connections, 100);
    assert_eq!(
        c.listener_max_connections,
        BTreeMap::from([("EXTERNAL".to_string(), 7)])
    );
    assert_eq!(c.max_connections_per_ip, 0);
    // Split at the last colon (IPv6 addresses unbracketed); a repeated host keeps its last.
    assert_eq!(
        c.max_connections_per_ip_overrides,
        vec![
            ("127.0.0.1".to_string(), 200),
            ("::1".to_string(), 3),
            ("hostName".to_string(), 5)
        ]
    );
    assert!(
        !c.ignored_keys
            .iter()
            .any(|k| k.starts_with("max.connections"))
    );

    let zero = error_with("max.connections.per.ip=0");
    assert!(zero.contains("can be set to zero only if"), "{zero}");
    assert!(error_with("max.connections=-1").contains("max.connections"));
    assert!(error_with("max.connections.per.ip=-1").contains("max.connections.per.ip"));
    assert!(error_with("listener.name.plaintext.max.connections=x").contains("an integer"));
    for bad in ["host", "host:x", "ho/st:1", ":1"] {
        let message = error_with(&format!("max.connections.per.ip.overrides={bad}"));
        assert!(
            message.contains("max.connections.per.ip.overrides"),
            "{bad}: {message}"
        );
    }
}

#[test]
fn queued_max_request_bytes_default_limit_and_kafka_check() {
    let c = parse("node.id=1\n");
    assert_eq!(c.queued_max_request_bytes, 256 << 20);
    // The default grows with socket.request.max.bytes so that any one request fits.
    let c = parse("node.id=1\nsocket.request.max.bytes=500000000\n");
    assert_eq!(c.queued_max_request_bytes, 500_000_000);
    // Kafka's -1 (and anything <= 0) means no limit.
    let c = parse("node.id=1\nqueued.max.request.bytes=-1\n");
    assert_eq!(c.queued_max_request_bytes, -1);
    let c = parse("node.id=1\nqueued.max.request.bytes=104857600\n");
    assert_eq!(c.queued_max_request_bytes, 104_857_600);
    assert!(
        !c.ignored_keys
            .iter()
            .any(|k| k == "queued.max.request.bytes")
    );
    let err = error_with("queued.max.request.bytes=1000");
    assert!(
        err.contains("queued.max.request.bytes (1000) must be larger or equal to socket.request.max.bytes (104857600)"),
        "{err}"
    );
    let err = error_with("queued.max.request.bytes=lots");
    assert!(err.contains("queued.max.request.bytes"), "{err}");
}

#[test]
fn compression_levels_are_parsed_with_kafkas_ranges() {
    let good = parse(
        "node.id=1\ncompression.gzip.level=9\ncompression.lz4.level=17\ncompression.zstd.level=-131072\n",
    );
    assert_eq!(
        (
            good.compression_gzip_level,
            good.compression_lz4_level,
            good.compression_zstd_level
        ),
        (9, 17, -131_072)
    );
    for bad in [
        "compression.gzip.level=0",
        "compression.gzip.level=10",
        "compression.lz4.level=0",
        "compression.lz4.level=18",
        "compression.zstd.level=23",
    ] {
        let message = error_with(bad);
        let key = bad.split('=').next().unwrap_or_default();
        assert!(message.contains(key), "{bad}: {message}");
    }
}

#[test]
fn a_node_is_in_a_cluster_unless_it_is_its_own_only_voter() {
    assert!(!Config::embedded_default().is_cluster());
    let combined = "process.roles=broker,controller\ncontroller.listener.names=CONTROLLER\n\
                    listeners=PLAINTEXT://:9092,CONTROLLER://:9093\n";
    let alone = parse(&format!(
        "node.id=1\n{combined}controller.quorum.voters=1@localhost:9093\n"
    ));
    assert!(!alone.is_cluster());
    let three = parse(&format!(
        "node.id=1\n{combined}controller.quorum.voters=1@localhost:9093,2@localhost:9095,3@localhost:9097\n"
    ));
    assert!(three.is_cluster());
    let bootstrap = parse(&format!(
        "node.id=1\n{combined}controller.quorum.bootstrap.servers=localhost:9093\n"
    ));
    assert!(bootstrap.is_cluster());
    let broker_only = parse(
        "node.id=4\nprocess.roles=broker\ncontroller.listener.names=CONTROLLER\n\
         controller.quorum.voters=1@localhost:9093\n",
    );
    assert!(broker_only.is_cluster());
    let controller_only = parse(
        "node.id=1\nprocess.roles=controller\ncontroller.listener.names=CONTROLLER\n\
         listeners=CONTROLLER://:9093\ncontroller.quorum.voters=1@localhost:9093\n",
    );
    assert!(controller_only.is_cluster());
}
