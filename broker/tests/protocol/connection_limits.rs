//! Connection limits as Kafka's `SocketServer` applies them: `connections.max.idle.ms`,
//! `max.connections` (broker-wide and per listener: new connections wait),
//! `max.connections.per.ip` and its overrides (the connection past the limit is closed), and
//! a broker out of file descriptors that keeps serving and accepts again once they free up.

use std::net::TcpStream;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::client::RawClient;
use crate::support::{Broker, DataDir, ReadOutcome, TopicSpec};
use crate::{CLOSE_TIMEOUT, api_versions_request, assert_serves_fresh_client, connect, error};

fn data() -> DataDir {
    DataDir::builder().topic(TopicSpec::new("t", 1)).build()
}

/// A client that connected and got its ApiVersions answered: counted by the broker. A
/// connection refused for its address (the harness's readiness probe may still be counted
/// for a moment) is retried until [`CLOSE_TIMEOUT`].
fn served_client(broker: &Broker) -> RawClient {
    let deadline = Instant::now() + CLOSE_TIMEOUT;
    loop {
        let mut client = connect(broker);
        match client.call(&api_versions_request(), 3) {
            Ok(response) => {
                assert_eq!(response.error_code, error::NONE);
                return client;
            }
            Err(err) => assert!(
                Instant::now() < deadline,
                "no connection was served: {err}\n{}",
                broker.log_text()
            ),
        }
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_idle_connection_is_closed_and_an_active_one_is_not() {
    let data = data();
    let broker = Broker::start_with(&data, &[("connections.max.idle.ms", "3000")]);
    let mut idle = served_client(&broker);
    let mut active = served_client(&broker);
    // Requests every 200 ms keep `active` open well past the idle limit.
    let until = Instant::now() + Duration::from_millis(4500);
    while Instant::now() < until {
        let response = active
            .call(&api_versions_request(), 3)
            .expect("the active connection is served");
        assert_eq!(response.error_code, error::NONE);
        thread::sleep(Duration::from_millis(200));
    }
    assert!(
        idle.is_closed_by_peer(CLOSE_TIMEOUT),
        "the idle connection is still open\n{}",
        broker.log_text()
    );
    let response = active
        .call(&api_versions_request(), 3)
        .expect("still served");
    assert_eq!(response.error_code, error::NONE);
}

#[test]
fn a_negative_idle_limit_never_closes() {
    let data = data();
    let broker = Broker::start_with(&data, &[("connections.max.idle.ms", "-1")]);
    let mut client = served_client(&broker);
    assert!(matches!(
        client.read_outcome(Duration::from_millis(1500)),
        ReadOutcome::TimedOut
    ));
    assert!(client.call(&api_versions_request(), 3).is_ok());
}

#[test]
fn the_connection_past_max_connections_per_ip_is_closed_at_once() {
    let data = data();
    let broker = Broker::start_with(&data, &[("max.connections.per.ip", "2")]);
    let first = served_client(&broker);
    let _second = served_client(&broker);
    let mut third = connect(&broker);
    assert!(
        third.is_closed_by_peer(CLOSE_TIMEOUT),
        "the third connection from 127.0.0.1 was kept\n{}",
        broker.log_text()
    );
    let line = broker
        .wait_for_log("rejected connection from 127.0.0.1", CLOSE_TIMEOUT)
        .expect("the rejection is logged");
    assert!(line.contains("maximum of 2 connections"), "{line}");
    // A closed connection gives its slot back.
    drop(first);
    let _again = served_client(&broker);
}

#[test]
fn an_override_replaces_the_per_ip_limit_for_its_address() {
    let data = data();
    // 0 is allowed with overrides: every other address is refused.
    let broker = Broker::start_with(
        &data,
        &[
            ("max.connections.per.ip", "0"),
            (
                "max.connections.per.ip.overrides",
                "10.1.2.3:5, 127.0.0.1:1",
            ),
        ],
    );
    let _only = served_client(&broker);
    let mut second = connect(&broker);
    assert!(
        second.is_closed_by_peer(CLOSE_TIMEOUT),
        "a second connection from 127.0.0.1 was kept\n{}",
        broker.log_text()
    );
}

#[test]
fn a_zero_per_ip_limit_without_overrides_is_refused_at_start_up() {
    let data = data();
    let mut broker = Broker::spawn(&data, &[("max.connections.per.ip", "0")], &[]);
    let status = broker.wait_exit(CLOSE_TIMEOUT).expect("gregor exits");
    assert!(!status.success());
    assert!(
        broker
            .log_text()
            .contains("max.connections.per.ip can be set to zero only if"),
        "{}",
        broker.log_text()
    );
}

/// With a limit of two, a third connection is accepted by the kernel but not served until
/// one of the two closes.
fn assert_third_connection_waits(extra: &[(&str, &str)]) {
    let data = data();
    let broker = Broker::start_with(&data, extra);
    let first = served_client(&broker);
    let _second = served_client(&broker);
    let mut third = connect(&broker);
    third
        .send(&api_versions_request(), 3)
        .expect("the kernel takes the request");
    assert!(
        matches!(
            third.read_outcome(Duration::from_millis(1000)),
            ReadOutcome::TimedOut
        ),
        "the third connection was served past the limit"
    );
    drop(first);
    let response = third
        .recv::<gregor_protocol::messages::api_versions_request::ApiVersionsRequest>()
        .expect("served once a slot is free");
    assert_eq!(response.body.error_code, error::NONE);
}

#[test]
fn a_connection_past_max_connections_waits_for_a_slot() {
    assert_third_connection_waits(&[("max.connections", "2")]);
}

#[test]
fn a_connection_past_the_listener_limit_waits_for_a_slot() {
    assert_third_connection_waits(&[("listener.name.plaintext.max.connections", "2")]);
}

/// Open descriptors of `pid`.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |dir| dir.count())
}

#[test]
fn out_of_file_descriptors_the_broker_serves_open_connections_and_recovers() {
    let data = data();
    let mut broker = Broker::start(&data);
    let pid = broker.pid().expect("the broker runs");
    let mut existing = served_client(&broker);
    let limit = open_fds(pid) + 16;
    let status = Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--nofile={limit}:{limit}"))
        .status()
        .expect("run prlimit");
    assert!(status.success(), "prlimit failed");
    // Idle connections until the broker cannot accept any more (the kernel still completes
    // the handshakes: they wait in the backlog).
    let idle: Vec<TcpStream> = (0..40)
        .map(|_| TcpStream::connect(broker.addr()).expect("connect"))
        .collect();
    let line = broker
        .wait_for_log("failed: Too many open files", CLOSE_TIMEOUT)
        .unwrap_or_else(|| panic!("no accept failure logged\n{}", broker.log_text()));
    assert!(line.contains("accept on PLAINTEXT"), "{line}");
    // The open connection is served while the broker is out of descriptors.
    let response = existing
        .call(&api_versions_request(), 3)
        .expect("an open connection is served");
    assert_eq!(response.error_code, error::NONE);
    // Once the idle connections close, accepting resumes.
    drop(idle);
    assert_serves_fresh_client(&mut broker);
}

/// IncrementalAlterConfigs SET of `key` on broker 1's BROKER resource; its error code.
fn set_broker_config(client: &mut RawClient, key: &str, value: &str) -> i16 {
    use gregor_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig, IncrementalAlterConfigsRequest,
    };
    let request = IncrementalAlterConfigsRequest {
        resources: vec![AlterConfigsResource {
            resource_type: 4, // BROKER
            resource_name: "1".into(),
            configs: vec![AlterableConfig {
                name: key.into(),
                config_operation: 0, // SET
                value: Some(value.into()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        validate_only: false,
        ..Default::default()
    };
    let response = client.call(&request, 1).expect("IncrementalAlterConfigs");
    response.responses[0].error_code
}

#[test]
fn max_connections_per_ip_changes_without_a_restart() {
    // A dynamic broker config, as Kafka's DynamicListenerConfig allows: connections already
    // open stay, the next one is counted against the new limit.
    let data = data();
    let broker = Broker::start(&data);
    let mut admin = served_client(&broker);
    let _second = served_client(&broker);
    assert_eq!(
        set_broker_config(&mut admin, "max.connections.per.ip", "2"),
        error::NONE
    );
    let mut third = connect(&broker);
    assert!(
        third.is_closed_by_peer(CLOSE_TIMEOUT),
        "the third connection was kept after the limit went down to 2\n{}",
        broker.log_text()
    );
    assert_eq!(
        set_broker_config(&mut admin, "max.connections.per.ip", "5"),
        error::NONE
    );
    let _third = served_client(&broker);
}
