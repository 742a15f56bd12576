//! Connections: pipelined requests of different APIs, many clients at once, slow clients;
//! bad input (each closes only its own connection, with a log line saying why); start-up and
//! shutdown.

use std::io::Write;
use std::thread;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use gregor_protocol::messages::api_versions_request::ApiVersionsRequest;
use gregor_protocol::messages::describe_topic_partitions_request::DescribeTopicPartitionsRequest;
use gregor_protocol::messages::fetch_request::FetchRequest;
use gregor_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use gregor_protocol::messages::request_header::RequestHeader;
use gregor_protocol::{ApiKey, RawTaggedField};

use crate::fetch::{check_simple_fetch, simple_fetch};
use crate::support::client::Pending;
use crate::support::{Broker, DataDir, ReadOutcome, TopicSpec};
use crate::{
    CLOSE_TIMEOUT, api_versions_request, assert_close_logged, assert_serves_fresh_client, connect,
    decode_frame, encoded, error, peer_of, raw_request,
};

/// `records`: 3 partitions of 300 records in batches of 20 over 8 KiB segments; `empty`
/// (one partition, no records); `other` (4 partitions of 2 records).
fn fixture() -> DataDir {
    DataDir::builder()
        .topic(
            TopicSpec::new("records", 3)
                .records(300)
                .batch_records(20)
                .segment_bytes(8 * 1024),
        )
        .topic(TopicSpec::new("empty", 1))
        .topic(TopicSpec::new("other", 4).records(2))
        .build()
}

/// Every topic, at `version` (auto-creation off where the version can say so).
fn all_topics(version: i16) -> MetadataRequest {
    MetadataRequest {
        topics: None,
        allow_auto_topic_creation: version < 4,
        ..Default::default()
    }
}

#[test]
fn pipelined_requests_of_different_apis_are_answered_in_order() {
    let data = fixture();
    let broker = Broker::start(&data);
    let mut client = connect(&broker);
    let records = data.topic("records");
    let empty = data.topic("empty");
    let long_poll = FetchRequest {
        max_wait_ms: 300,
        min_bytes: 1,
        ..simple_fetch(empty, 0, 0)
    };
    let named = MetadataRequest {
        topics: Some(vec![MetadataRequestTopic {
            name: Some("records".into()),
            ..Default::default()
        }]),
        ..Default::default()
    };
    // Eight requests of four APIs in one write; a long poll in the middle must not let the
    // requests behind it overtake it.
    let mut out = BytesMut::new();
    let mut sent = Vec::new();
    macro_rules! queue {
        ($request:expr, $version:expr) => {{
            let (pending, frame) = client.encode(&$request, $version);
            out.extend_from_slice(&frame);
            sent.push(pending);
        }};
    }
    queue!(api_versions_request(), 3);
    queue!(all_topics(12), 12);
    queue!(DescribeTopicPartitionsRequest::default(), 0);
    queue!(simple_fetch(records, 0, 0), 13);
    queue!(long_poll, 4);
    queue!(api_versions_request(), 0);
    queue!(named, 1);
    queue!(simple_fetch(records, 1, 290), 18);
    client.send_raw(&out).unwrap();
    for pending in sent {
        let frame = client.read_frame().unwrap();
        match pending.api_key {
            ApiKey::ApiVersions => {
                let body = decode_frame::<ApiVersionsRequest>(frame, pending);
                assert_eq!(body.error_code, error::NONE);
                assert_eq!(body.api_keys.len(), gregor_broker::handlers::HANDLED.len());
            }
            ApiKey::Metadata => {
                let body = decode_frame::<MetadataRequest>(frame, pending);
                let expected = if pending.version == 1 { 1 } else { 3 };
                assert_eq!(body.topics.len(), expected, "{pending:?}");
            }
            ApiKey::DescribeTopicPartitions => {
                let body = decode_frame::<DescribeTopicPartitionsRequest>(frame, pending);
                assert_eq!(body.topics.len(), 3);
            }
            ApiKey::Fetch => {
                let body = decode_frame::<FetchRequest>(frame, pending);
                match pending.version {
                    13 => assert_eq!(check_simple_fetch(&body, 13, records, 0, 0), 300),
                    4 => assert_eq!(check_simple_fetch(&body, 4, empty, 0, 0), 0),
                    18 => assert_eq!(check_simple_fetch(&body, 18, records, 1, 290), 10),
                    other => panic!("unexpected Fetch v{other}"),
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    // Fifty at once, every ApiVersions version in turn.
    let requests: Vec<(ApiVersionsRequest, i16)> =
        (0..50).map(|i| (api_versions_request(), i % 5)).collect();
    client.send_all(&requests).unwrap();
    for _ in 0..50 {
        let response = client.recv::<ApiVersionsRequest>().unwrap();
        assert_eq!(response.body.error_code, error::NONE);
    }
}

#[test]
fn many_clients_at_once() {
    let data = fixture();
    let broker = Broker::start(&data);
    let records = data.topic("records");
    let other = data.topic("other");
    thread::scope(|scope| {
        let workers: Vec<_> = (0..10)
            .map(|worker| {
                let broker = &broker;
                scope.spawn(move || {
                    let mut client = connect(broker);
                    for round in 0..15 {
                        let versions = client
                            .call(&api_versions_request(), (round % 5) as i16)
                            .unwrap();
                        assert_eq!(versions.error_code, error::NONE);
                        let version = [1, 9, 12, 13][round % 4];
                        let metadata = client.call(&all_topics(version), version).unwrap();
                        assert_eq!(metadata.topics.len(), 3);
                        let described = client
                            .call(&DescribeTopicPartitionsRequest::default(), 0)
                            .unwrap();
                        assert_eq!(described.topics.len(), 3);
                        let partition = ((worker + round) % 3) as i32;
                        let offset = ((worker * 37 + round * 11) % 300) as i64;
                        let version = [4, 12, 13, 18][(worker + round) % 4];
                        let fetched = client
                            .call(&simple_fetch(records, partition, offset), version)
                            .unwrap();
                        let n = check_simple_fetch(&fetched, version, records, partition, offset);
                        assert_eq!(n as i64, 300 - offset, "worker {worker} round {round}");
                        // Two pipelined requests.
                        client
                            .send(&simple_fetch(other, round as i32 % 4, 0), 12)
                            .unwrap();
                        client.send(&api_versions_request(), 3).unwrap();
                        let fetched = client.recv::<FetchRequest>().unwrap().body;
                        assert_eq!(
                            check_simple_fetch(&fetched, 12, other, round as i32 % 4, 0),
                            2
                        );
                        assert_eq!(
                            client.recv::<ApiVersionsRequest>().unwrap().body.error_code,
                            0
                        );
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().expect("a client thread");
        }
    });
}

#[test]
fn a_stalled_half_frame_does_not_block_other_clients() {
    let data = fixture();
    let broker = Broker::start(&data);
    let records = data.topic("records");
    let mut slow = connect(&broker);
    let (pending, frame) = slow.encode(&all_topics(12), 12);
    let half = frame.len() / 2;
    slow.send_raw(&frame[..half]).unwrap();
    // Others are served meanwhile, on several connections.
    for version in [4, 13] {
        let mut other = connect(&broker);
        let fetched = other.call(&simple_fetch(records, 2, 0), version).unwrap();
        assert_eq!(check_simple_fetch(&fetched, version, records, 2, 0), 300);
        assert_eq!(
            other.call(&api_versions_request(), 3).unwrap().error_code,
            0
        );
    }
    // The stalled client has had no answer, and gets it once its frame is complete.
    assert!(matches!(
        slow.read_outcome(Duration::from_millis(200)),
        ReadOutcome::TimedOut
    ));
    slow.send_raw(&frame[half..]).unwrap();
    let body = decode_frame::<MetadataRequest>(slow.read_frame().unwrap(), pending);
    assert_eq!(body.topics.len(), 3);
    // A frame written one byte at a time.
    let mut trickle = connect(&broker);
    let (pending, frame) = trickle.encode(&api_versions_request(), 3);
    for byte in frame.iter() {
        trickle.stream().write_all(&[*byte]).unwrap();
        thread::sleep(Duration::from_millis(5));
    }
    let body = decode_frame::<ApiVersionsRequest>(trickle.read_frame().unwrap(), pending);
    assert_eq!(body.error_code, error::NONE);
}

#[test]
fn null_client_ids_and_unknown_tagged_fields_are_accepted() {
    let data = fixture();
    let broker = Broker::start(&data);
    let records = data.topic("records");
    // A null client id (the header's client_id is a nullable string).
    let mut anonymous = connect(&broker);
    anonymous.set_client_id(None);
    assert_eq!(
        anonymous
            .call(&api_versions_request(), 3)
            .unwrap()
            .error_code,
        0
    );
    let fetched = anonymous.call(&simple_fetch(records, 0, 0), 4).unwrap();
    assert_eq!(check_simple_fetch(&fetched, 4, records, 0, 0), 300);
    anonymous.set_client_id(Some(""));
    assert_eq!(anonymous.call(&all_topics(1), 1).unwrap().topics.len(), 3);
    // Unknown tagged fields in a v2 request header and in the body are skipped.
    let mut client = connect(&broker);
    let header = RequestHeader {
        request_api_key: ApiKey::Metadata.key(),
        request_api_version: 12,
        correlation_id: 77,
        client_id: Some("tagged".into()),
        unknown_tagged_fields: vec![RawTaggedField {
            tag: 9,
            data: Bytes::from_static(b"abc"),
        }],
    };
    let body = MetadataRequest {
        unknown_tagged_fields: vec![RawTaggedField {
            tag: 4,
            data: Bytes::from_static(&[1, 2, 3, 4, 5]),
        }],
        ..all_topics(12)
    };
    let mut frame = encoded(&header, 2);
    frame.extend_from_slice(&encoded(&body, 12));
    client.send_raw_frame(&frame).unwrap();
    let pending = Pending {
        correlation_id: 77,
        api_key: ApiKey::Metadata,
        version: 12,
    };
    let response = decode_frame::<MetadataRequest>(client.read_frame().unwrap(), pending);
    assert_eq!(response.topics.len(), 3);
}

#[test]
fn a_client_that_does_not_read_its_responses_does_not_block_others() {
    let data = fixture();
    let broker = Broker::start(&data);
    let records = data.topic("records");
    // 300 pipelined reads of a whole partition (about 14 MB of responses), none read yet:
    // the broker's writes to this client block on the full socket buffers.
    let mut lazy = connect(&broker);
    let requests: Vec<(FetchRequest, i16)> = (0..300)
        .map(|i| (simple_fetch(records, i % 3, 0), 13))
        .collect();
    lazy.send_all(&requests).unwrap();
    thread::sleep(Duration::from_millis(200));
    for version in [4, 18] {
        let mut other = connect(&broker);
        let fetched = other.call(&simple_fetch(records, 1, 7), version).unwrap();
        assert_eq!(check_simple_fetch(&fetched, version, records, 1, 7), 293);
        assert_eq!(other.call(&all_topics(12), 12).unwrap().topics.len(), 3);
    }
    // Then every response arrives, in order.
    for i in 0..300 {
        let fetched = lazy.recv::<FetchRequest>().unwrap().body;
        assert_eq!(check_simple_fetch(&fetched, 13, records, i % 3, 0), 300);
    }
}

#[test]
fn requests_before_a_bad_frame_are_still_answered() {
    // Kafka reads one request at a time per connection (the channel is muted until the
    // response is sent), so pipelined requests ahead of a bad frame are answered before the
    // connection is closed.
    let data = fixture();
    let broker = Broker::start(&data);
    let records = data.topic("records");
    let mut client = connect(&broker);
    let peer = peer_of(&mut client);
    let (first, a) = client.encode(&api_versions_request(), 3);
    let (second, b) = client.encode(&simple_fetch(records, 2, 250), 12);
    let mut out = a.to_vec();
    out.extend_from_slice(&b);
    out.extend_from_slice(&raw_request(9999, 0, 99, 1, &[]));
    // A valid request after the bad one is never answered.
    out.extend_from_slice(&client.encode(&api_versions_request(), 3).1);
    client.send_raw(&out).unwrap();
    let body = decode_frame::<ApiVersionsRequest>(client.read_frame().unwrap(), first);
    assert_eq!(body.error_code, error::NONE);
    let body = decode_frame::<FetchRequest>(client.read_frame().unwrap(), second);
    assert_eq!(check_simple_fetch(&body, 12, records, 2, 250), 50);
    assert!(client.is_closed_by_peer(CLOSE_TIMEOUT));
    assert_close_logged(&broker, &peer, "unknown API key 9999");
}

/// Sends each case's bytes on a new connection and checks that the broker closes it, says
/// why in its log (the line must contain the case's text), and still serves a fresh client.
fn assert_each_closes(broker: &mut Broker, cases: &[(&str, Vec<u8>, &str)]) {
    for (name, bytes, why) in cases {
        let mut bad = connect(broker);
        let peer = peer_of(&mut bad);
        bad.send_raw(bytes)
            .unwrap_or_else(|e| panic!("{name}: sending: {e}"));
        assert!(
            bad.is_closed_by_peer(CLOSE_TIMEOUT),
            "{name}: the connection was not closed\n{}",
            broker.log_text()
        );
        assert_close_logged(broker, &peer, why);
        assert_serves_fresh_client(broker);
    }
}

#[test]
fn a_frame_above_socket_request_max_bytes_is_refused_from_its_size() {
    let data = fixture();
    let mut broker = Broker::start_with(&data, &[("socket.request.max.bytes", "1048576")]);
    // Only the size prefix is sent: the broker must not wait for the 100 MiB.
    assert_each_closes(
        &mut broker,
        &[
            (
                "100 MiB",
                (100i32 << 20).to_be_bytes().to_vec(),
                "frame size 104857600 is outside 0..=1048576",
            ),
            (
                "1 MiB + 1",
                ((1i32 << 20) + 1).to_be_bytes().to_vec(),
                "frame size 1048577",
            ),
            (
                "i32::MAX",
                i32::MAX.to_be_bytes().to_vec(),
                "socket.request.max.bytes",
            ),
        ],
    );
    // A request of exactly the limit is read (and refused for its content only).
    let mut client = connect(&broker);
    let peer = peer_of(&mut client);
    let mut frame = raw_request(ApiKey::ApiVersions.key(), 3, 9, 2, &[1, 1, 0]);
    let padding = (1 << 20) - (frame.len() - 4);
    frame.extend(std::iter::repeat_n(0u8, padding));
    frame[..4].copy_from_slice(&(1i32 << 20).to_be_bytes());
    client.send_raw(&frame).unwrap();
    match client.read_outcome(CLOSE_TIMEOUT) {
        // Trailing bytes after the body: answered or refused as malformed, never as too large.
        ReadOutcome::Frame(_) => {}
        ReadOutcome::Closed | ReadOutcome::Reset => {
            assert_close_logged(&broker, &peer, "malformed")
        }
        ReadOutcome::TimedOut => panic!("no answer to a frame of exactly socket.request.max.bytes"),
    }
    assert_serves_fresh_client(&mut broker);
}

#[test]
fn negative_sizes_and_frames_shorter_than_a_header_close_the_connection() {
    let data = fixture();
    let mut broker = Broker::start(&data);
    let short = |body: &[u8]| {
        let mut frame = (body.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(body);
        frame
    };
    assert_each_closes(
        &mut broker,
        &[
            (
                "size -2",
                vec![0xff, 0xff, 0xff, 0xfe],
                "frame size -2 is outside",
            ),
            (
                "size i32::MIN",
                i32::MIN.to_be_bytes().to_vec(),
                "frame size -2147483648",
            ),
            ("empty frame", short(&[]), "frame of 0 bytes is too short"),
            (
                "3 bytes",
                short(&[0, 18, 0]),
                "frame of 3 bytes is too short",
            ),
            // Key and version, then half a correlation id.
            ("6 bytes", short(&[0, 3, 0, 1, 0, 0]), "malformed request"),
            // Metadata v9 header (v2) without its client id and tag buffer.
            (
                "no client id",
                short(&[0, 3, 0, 9, 0, 0, 0, 1]),
                "malformed request",
            ),
        ],
    );
}

#[test]
fn unknown_api_keys_and_unsupported_versions_close_the_connection() {
    let data = fixture();
    let mut broker = Broker::start(&data);
    let metadata_body = encoded(&all_topics(12), 12);
    assert_each_closes(
        &mut broker,
        &[
            (
                "API key 9999",
                raw_request(9999, 0, 7, 1, &[]),
                "unknown API key 9999",
            ),
            (
                "API key -1",
                raw_request(-1, 0, 7, 1, &[]),
                "unknown API key -1",
            ),
            (
                "Metadata v99",
                raw_request(3, 99, 7, 2, &metadata_body),
                "unsupported Metadata version 99",
            ),
            (
                "Metadata v-1",
                raw_request(3, -1, 7, 1, &[]),
                "unsupported Metadata version -1",
            ),
            (
                "Fetch v19",
                // (The body as v18 encodes it; v19 is past the schema.)
                raw_request(
                    1,
                    19,
                    7,
                    2,
                    &encoded(&simple_fetch(data.topic("records"), 0, 0), 18),
                ),
                "unsupported Fetch version 19",
            ),
            (
                "DescribeTopicPartitions v1",
                raw_request(
                    75,
                    1,
                    7,
                    2,
                    &encoded(&DescribeTopicPartitionsRequest::default(), 0),
                ),
                "unsupported DescribeTopicPartitions version 1",
            ),
            // An API this broker does not serve (nor advertise).
            (
                "Produce v9",
                raw_request(0, 9, 7, 2, &[0, 0, 0, 0, 0, 0, 0, 0, 1, 0]),
                "Produce",
            ),
        ],
    );
}

#[test]
fn malformed_bodies_close_the_connection() {
    let data = fixture();
    let mut broker = Broker::start(&data);
    // Metadata v1 (header v1): topics is an int32 count of int16-length strings.
    let v1 = |body: &[u8]| raw_request(3, 1, 11, 1, body);
    // Metadata v12 (header v2): a compact (varint) count of topics.
    let v12 = |body: &[u8]| raw_request(3, 12, 12, 2, body);
    // Kafka decodes strings leniently (invalid UTF-8 becomes U+FFFD); this broker refuses
    // them as malformed, which the tests require.
    assert_each_closes(
        &mut broker,
        &[
            (
                "truncated",
                v1(&[0, 0, 0, 2, 0, 5, b'a', b'l', b'p', b'h', b'a']),
                "malformed request",
            ),
            ("no body", v1(&[]), "malformed request"),
            (
                "string longer than the frame",
                v1(&[0, 0, 0, 1, 0x01, 0xf4, b'a', b'b', b'c']),
                "malformed request",
            ),
            (
                "string length -5",
                v1(&[0, 0, 0, 1, 0xff, 0xfb]),
                "malformed request",
            ),
            (
                "invalid UTF-8",
                v1(&[0, 0, 0, 1, 0, 2, 0xff, 0xfe]),
                "malformed request",
            ),
            (
                "array count i32::MAX",
                v1(&[0x7f, 0xff, 0xff, 0xff]),
                "malformed request",
            ),
            (
                "array count -7",
                v1(&[0xff, 0xff, 0xff, 0xf9]),
                "malformed request",
            ),
            (
                "compact array count u32::MAX",
                v12(&[0xff, 0xff, 0xff, 0xff, 0x0f]),
                "malformed request",
            ),
            (
                "overlong varint",
                v12(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
                "malformed request",
            ),
            (
                "truncated v12 topic",
                v12(&[2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
                "malformed request",
            ),
        ],
    );
}

#[test]
fn garbage_bytes_close_the_connection() {
    let data = fixture();
    let mut broker = Broker::start(&data);
    let mut tls_hello = vec![
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ];
    tls_hello.extend_from_slice(&[0x5a; 32]);
    assert_each_closes(
        &mut broker,
        &[
            (
                "HTTP request",
                b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
                "socket.request.max.bytes",
            ),
            ("TLS ClientHello", tls_hello, "socket.request.max.bytes"),
            (
                "small frame of noise",
                vec![
                    0, 0, 0, 12, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 1, 2, 3, 4,
                ],
                "unknown API key 4660",
            ),
        ],
    );
}

#[test]
fn a_client_disconnecting_mid_frame_does_not_disturb_others() {
    let data = fixture();
    let mut broker = Broker::start(&data);
    let records = data.topic("records");
    let mut busy = connect(&broker);
    for _ in 0..3 {
        let mut gone = connect(&broker);
        let (_, frame) = gone.encode(&all_topics(12), 12);
        gone.send_raw(&frame[..frame.len() - 3]).unwrap();
        drop(gone);
        let mut header_only = connect(&broker);
        header_only.send_raw(&[0, 0, 1, 0]).unwrap();
        header_only.shutdown_write().unwrap();
        assert!(header_only.is_closed_by_peer(CLOSE_TIMEOUT));
        let fetched = busy.call(&simple_fetch(records, 0, 100), 12).unwrap();
        assert_eq!(check_simple_fetch(&fetched, 12, records, 0, 100), 200);
    }
    assert_serves_fresh_client(&mut broker);
}

#[test]
fn a_client_disconnecting_mid_frame_is_logged() {
    // Every connection the broker drops because of its input is logged with the reason;
    // a client that goes away in the middle of a frame should leave a line too (at any
    // level: this runs with RUST_LOG=debug), naming the peer.
    let data = fixture();
    let broker = Broker::start_with_env(&data, &[], &[("RUST_LOG", "debug")]);
    let mut gone = connect(&broker);
    let peer = peer_of(&mut gone);
    let (_, frame) = gone.encode(&all_topics(12), 12);
    gone.send_raw(&frame[..frame.len() / 2]).unwrap();
    drop(gone);
    // The broker goes on serving; the line about the disconnect may come a moment later.
    let mut client = connect(&broker);
    assert_eq!(
        client.call(&api_versions_request(), 3).unwrap().error_code,
        0
    );
    let accepted = format!("connection from {peer} on");
    let deadline = std::time::Instant::now() + CLOSE_TIMEOUT;
    loop {
        let log = broker.log_text();
        if log
            .lines()
            .any(|l| l.contains(&peer) && !l.contains(&accepted))
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no log line about {peer} disconnecting mid-frame\n--- broker log ---\n{log}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_start_up_line_names_listeners_data_directory_and_topic_count() {
    let data = fixture();
    let broker = Broker::start(&data);
    let line = broker
        .wait_for_log(" started: node", CLOSE_TIMEOUT)
        .unwrap_or_else(|| panic!("no start-up line\n{}", broker.log_text()));
    for part in [
        format!("PLAINTEXT://127.0.0.1:{}", data.ports.plaintext),
        format!("data in {}", data.path().display()),
        "3 topics loaded".to_string(),
        format!("node {}", data.node_id),
        data.cluster_id.clone(),
    ] {
        assert!(
            line.contains(&part),
            "{part:?} not in the start-up line: {line}"
        );
    }
}

#[test]
fn sigterm_stops_the_broker_cleanly_with_clients_connected() {
    let data = fixture();
    let mut broker = Broker::start(&data);
    let mut served = connect(&broker);
    assert_eq!(
        served.call(&api_versions_request(), 3).unwrap().error_code,
        0
    );
    let mut silent = connect(&broker);
    let mut halfway = connect(&broker);
    let (_, frame) = halfway.encode(&all_topics(12), 12);
    halfway.send_raw(&frame[..5]).unwrap();
    // The connections are established (the broker answered on another one since).
    assert_serves_fresh_client(&mut broker);
    let status = broker.stop();
    assert!(
        status.success(),
        "exit status {status}\n{}",
        broker.log_text()
    );
    for client in [&mut served, &mut silent, &mut halfway] {
        assert!(client.is_closed_by_peer(CLOSE_TIMEOUT));
    }
    let log = broker.log_text();
    assert!(log.contains("shutting down"), "{log}");
}

#[test]
fn sigterm_during_a_long_poll_stops_the_broker_promptly() {
    // Kafka's shutdown closes the connections and the fetch purgatory without waiting for
    // delayed fetches; a consumer's long poll must not hold the broker up for max_wait_ms.
    // `Broker::stop` fails after 15 s, half the poll asked for here.
    let data = fixture();
    let mut broker = Broker::start_with_env(&data, &[], &[("RUST_LOG", "debug")]);
    let mut client = connect(&broker);
    let peer = peer_of(&mut client);
    let request = FetchRequest {
        max_wait_ms: 28_000,
        min_bytes: 1,
        ..simple_fetch(data.topic("empty"), 0, 0)
    };
    client.send(&request, 12).unwrap();
    // Wait until the broker has the request (its debug line names the peer and the API).
    let deadline = std::time::Instant::now() + CLOSE_TIMEOUT;
    while !broker
        .log_text()
        .lines()
        .any(|l| l.contains(&peer) && l.contains("Fetch"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the Fetch was not logged\n{}",
            broker.log_text()
        );
        thread::sleep(Duration::from_millis(20));
    }
    let status = broker.stop();
    assert!(
        status.success(),
        "exit status {status}\n{}",
        broker.log_text()
    );
}

#[test]
fn sigint_stops_the_broker_cleanly_too() {
    let data = fixture();
    let mut broker = Broker::start(&data);
    let mut client = connect(&broker);
    assert_eq!(
        client.call(&api_versions_request(), 3).unwrap().error_code,
        0
    );
    let pid = broker.pid().expect("a process").to_string();
    let sent = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("run kill -INT");
    assert!(sent.success());
    let status = broker
        .wait_exit(Duration::from_secs(15))
        .unwrap_or_else(|| panic!("no exit after SIGINT\n{}", broker.log_text()));
    assert!(
        status.success(),
        "exit status {status}\n{}",
        broker.log_text()
    );
    assert!(client.is_closed_by_peer(CLOSE_TIMEOUT));
}
