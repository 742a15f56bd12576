//! Connection creation rates with the real binary (Kafka's `ConnectionQuotas`, KIP-612):
//! a `connection_creation_rate` on `ip=127.0.0.1` gets the connections of a burst from
//! that address past the rate closed without an answer while another address
//! (127.0.0.2) connects freely; `max.connection.creation.rate` delays connections past the
//! broker-wide rate and refuses none.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use gregor_protocol::error_code as error;
use gregor_protocol::messages::api_versions_request::ApiVersionsRequest;

use super::support::{Broker, DataDir, RawClient};
use super::{Entity, alter, entry};

/// A connection from `source` (any port) to `broker`, std-blocking.
fn connect_from(source: Ipv4Addr, broker: SocketAddr) -> TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(IpAddr::V4(source), 0)).unwrap();
        let stream = socket.connect(broker).await.expect("connect");
        let stream = stream.into_std().unwrap();
        stream.set_nonblocking(false).unwrap();
        stream
    })
}

/// Whether a new connection from `source` is served: ApiVersions answered, or the
/// connection closed (or reset) without an answer.
fn served(source: Ipv4Addr, broker: SocketAddr) -> bool {
    let mut client = RawClient::from_stream(connect_from(source, broker)).unwrap();
    match client.call(&ApiVersionsRequest::default(), 2) {
        Ok(response) => {
            assert_eq!(response.error_code, error::NONE);
            true
        }
        Err(_) => false,
    }
}

#[test]
fn an_ip_over_its_connection_creation_rate_is_refused_and_other_addresses_are_not() {
    let data = DataDir::builder().build();
    let broker = Broker::start(&data);
    let mut admin = RawClient::connect(broker.addr()).unwrap();
    let localhost: Entity = vec![("ip", Some("127.0.0.1"))];
    let set = alter(
        &mut admin,
        1,
        vec![entry(
            &localhost,
            &[("connection_creation_rate", Some(2.0))],
        )],
        false,
    );
    assert_eq!(set.entries[0].error_code, error::NONE, "{set:?}");

    // 2 a second over at least 10 s: about 20 connections of a burst go through, the next
    // ones are closed unanswered.
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..60 {
        if served(Ipv4Addr::LOCALHOST, broker.addr()) {
            accepted += 1;
        } else {
            refused += 1;
            if refused == 3 {
                break;
            }
        }
    }
    assert!(refused == 3, "accepted {accepted}, refused {refused}");
    assert!(accepted >= 10, "accepted {accepted}, refused {refused}");
    // Another address has no quota: a burst of its own goes through.
    let other = Ipv4Addr::new(127, 0, 0, 2);
    for i in 0..30 {
        assert!(served(other, broker.addr()), "connection {i} from {other}");
    }
    // The connection opened before the quota is still served.
    assert!(admin.call(&ApiVersionsRequest::default(), 2).is_ok());
}

#[test]
fn the_broker_connection_creation_rate_delays_connections_and_refuses_none() {
    let data = DataDir::builder().build();
    let broker = Broker::start_with(&data, &[("max.connection.creation.rate", "2")]);
    // About 20 connections fit in the first window; each one past them waits about half a
    // second in the acceptor (2 a second), so 26 take well over a second and all succeed.
    let started = Instant::now();
    for i in 0..26 {
        assert!(
            served(Ipv4Addr::LOCALHOST, broker.addr()),
            "connection {i} refused"
        );
    }
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "no connection was delayed: {:?}",
        started.elapsed()
    );
}
