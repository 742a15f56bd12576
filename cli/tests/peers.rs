//! `gregorctl` against peers that are not a current Kafka broker: nothing listening, a
//! peer that never answers, one that is not Kafka at all, and an old broker. The old
//! broker is a few lines of raw TCP below that answer ApiVersions, and only ApiVersions,
//! with hand-written frames in the protocol's v0-v2 layout, as Kafka brokers of that age
//! do (the KIP-35/KIP-511 UNSUPPORTED_VERSION answer to a newer ApiVersions request,
//! then the list of old version ranges). It serves no other API: every check here ends
//! in gregorctl before any other request is sent, and the test asserts that.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::{free_port, gregorctl};

#[test]
fn a_broker_that_is_down_gives_connection_refused() {
    let port = free_port();
    for command in [&["api-versions"][..], &["metadata"], &["topics", "list"]] {
        let mut args = vec![
            "--bootstrap-server".to_string(),
            format!("127.0.0.1:{port}"),
        ];
        args.extend(command.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = gregorctl(&args, None);
        run.fails_with(&format!(
            "cannot connect to 127.0.0.1:{port}: connection refused"
        ));
        assert!(run.stdout.is_empty());
    }
}

#[test]
fn a_silent_peer_times_out_instead_of_hanging() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // Accepts and reads, never answers.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten().take(4) {
            held.push(stream);
        }
        std::thread::sleep(Duration::from_secs(120));
    });
    let run = gregorctl(
        &[
            "--bootstrap-server",
            &addr.to_string(),
            "--request-timeout-ms",
            "500",
            "api-versions",
        ],
        None,
    );
    run.fails_with("no response to ApiVersions within 500ms");
}

#[test]
fn a_non_kafka_peer_is_named_as_such() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        if let Some(Ok(mut stream)) = listener.incoming().next() {
            let mut buf = [0u8; 64];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
        }
    });
    let run = gregorctl(&["--bootstrap-server", &addr.to_string(), "metadata"], None);
    let stderr = run.fails_with(&format!("cannot connect to {addr}"));
    assert!(stderr.contains("is this a Kafka listener?"), "{stderr}");
}

/// API key 18.
const API_VERSIONS: i16 = 18;
/// UNSUPPORTED_VERSION.
const UNSUPPORTED_VERSION: i16 = 35;

/// A broker that answers ApiVersions up to v2 with `ranges` (key, min, max), and nothing
/// else: any other request closes the connection. Records every request header's
/// (api key, version).
struct OldBroker {
    addr: String,
    seen: Arc<Mutex<Vec<(i16, i16)>>>,
}

impl OldBroker {
    fn start(ranges: &'static [(i16, i16, i16)]) -> OldBroker {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let log = log.clone();
                std::thread::spawn(move || serve(stream, ranges, &log));
            }
        });
        OldBroker { addr, seen }
    }

    fn ctl(&self, args: &[&str]) -> support::Run {
        let mut all = vec!["--bootstrap-server", self.addr.as_str()];
        all.extend_from_slice(args);
        gregorctl(&all, None)
    }

    /// The requests seen so far, and forgets them.
    fn take_seen(&self) -> Vec<(i16, i16)> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

/// One connection: reads request frames, answers ApiVersions, hangs up on anything else.
fn serve(mut stream: TcpStream, ranges: &[(i16, i16, i16)], seen: &Mutex<Vec<(i16, i16)>>) {
    loop {
        let mut size = [0u8; 4];
        if stream.read_exact(&mut size).is_err() {
            return;
        }
        let mut request = vec![0u8; i32::from_be_bytes(size) as usize];
        if stream.read_exact(&mut request).is_err() || request.len() < 8 {
            return;
        }
        // Request header: api_key, api_version, correlation_id, then the rest.
        let api_key = i16::from_be_bytes([request[0], request[1]]);
        let version = i16::from_be_bytes([request[2], request[3]]);
        let correlation = &request[4..8];
        seen.lock().unwrap().push((api_key, version));
        if api_key != API_VERSIONS {
            return;
        }
        // Response header v0 (ApiVersions never uses the flexible header), then the body.
        let mut body = correlation.to_vec();
        let put_ranges = |body: &mut Vec<u8>, ranges: &[(i16, i16, i16)]| {
            body.extend_from_slice(&(ranges.len() as i32).to_be_bytes());
            for (key, min, max) in ranges {
                body.extend_from_slice(&key.to_be_bytes());
                body.extend_from_slice(&min.to_be_bytes());
                body.extend_from_slice(&max.to_be_bytes());
            }
        };
        let ours = ranges.iter().find(|r| r.0 == API_VERSIONS).map(|r| r.2);
        if ours.is_none_or(|max| version > max) {
            // A version this broker does not know: UNSUPPORTED_VERSION in the v0 layout,
            // listing its own ApiVersions range (nothing, for a broker without one).
            body.extend_from_slice(&UNSUPPORTED_VERSION.to_be_bytes());
            let own: Vec<(i16, i16, i16)> = ranges
                .iter()
                .filter(|r| r.0 == API_VERSIONS)
                .copied()
                .collect();
            put_ranges(&mut body, &own);
        } else {
            // v0: error_code, api_keys; v1 and v2 add throttle_time_ms.
            body.extend_from_slice(&0i16.to_be_bytes());
            put_ranges(&mut body, ranges);
            if version >= 1 {
                body.extend_from_slice(&0i32.to_be_bytes());
            }
        }
        let mut frame = (body.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(&body);
        if stream.write_all(&frame).is_err() {
            return;
        }
    }
}

/// Old version ranges, picked for the checks rather than copied from one Kafka release:
/// Produce, CreateTopics and DeleteTopics only in versions older than gregorctl speaks,
/// Fetch and Metadata overlapping gregorctl's ranges, no group or config APIs, and an API
/// key gregorctl does not know.
const OLD_RANGES: &[(i16, i16, i16)] = &[
    (0, 0, 2),  // Produce
    (1, 0, 8),  // Fetch
    (2, 0, 3),  // ListOffsets
    (3, 0, 6),  // Metadata
    (18, 0, 2), // ApiVersions
    (19, 0, 1), // CreateTopics
    (20, 0, 0), // DeleteTopics
    (37, 0, 1), // CreatePartitions
    (50, 0, 0), // an API gregorctl does not know
];

#[test]
fn an_old_broker_is_negotiated_down_and_mismatches_are_explained() {
    let broker = OldBroker::start(OLD_RANGES);

    // gregorctl asks at its newest ApiVersions, is refused, and asks again at v2.
    let run = broker.ctl(&["api-versions"]);
    let text = run.ok();
    let seen = broker.take_seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].0, API_VERSIONS);
    assert!(seen[0].1 > 2, "{seen:?}");
    assert_eq!(seen[1], (API_VERSIONS, 2));
    assert!(
        text.starts_with(&format!("{} answered ApiVersions v2\n", broker.addr)),
        "{text}"
    );
    let row = |api: &str| -> Vec<&str> {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(api))
            .unwrap_or_else(|| panic!("no {api} row:\n{text}"))
            .split_whitespace()
            .collect()
    };
    // API, KEY, BROKER, GREGORCTL, USED.
    assert_eq!(row("Produce")[..3], ["Produce", "0", "0-2"]);
    assert_eq!(row("Produce")[4], "none", "{text}");
    assert_eq!(row("Fetch")[2], "0-8");
    assert_eq!(row("Fetch")[4], "8", "{text}");
    assert_eq!(row("Metadata")[4], "6", "{text}");
    assert_eq!(row("ApiVersions")[4], "2", "{text}");

    let json = broker.ctl(&["api-versions", "--json"]).json();
    assert_eq!(json["error_code"], 0);
    assert_eq!(json["throttle_time_ms"], 0);
    let listed: Vec<(i64, i64, i64)> = json["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["api_key"].as_i64().unwrap(),
                k["min_version"].as_i64().unwrap(),
                k["max_version"].as_i64().unwrap(),
            )
        })
        .collect();
    let expected: Vec<(i64, i64, i64)> = OLD_RANGES
        .iter()
        .map(|&(k, min, max)| (k.into(), min.into(), max.into()))
        .collect();
    assert_eq!(listed, expected);
    broker.take_seen();

    // No common version: both ranges named, before any request of that API is sent.
    let addr = &broker.addr;
    broker.ctl(&["topics", "create", "--topic", "t", "--partitions", "1"]).fails_with(&format!(
        "no common version of CreateTopics (API key 19) with the broker at {addr}: gregorctl supports v2-v"
    ));
    let run = broker.ctl(&["topics", "delete", "--topic", "t"]);
    let stderr = run.fails_with("no common version of DeleteTopics (API key 20)");
    assert!(stderr.contains(", the broker v0-v0"), "{stderr}");
    // APIs the broker does not list at all.
    broker
        .ctl(&["groups", "describe", "--group", "g"])
        .fails_with(&format!(
            "the broker at {addr} does not support FindCoordinator (API key 10)"
        ));
    broker
        .ctl(&[
            "configs",
            "describe",
            "--entity-type",
            "topics",
            "--entity-name",
            "t",
        ])
        .fails_with("does not support DescribeConfigs (API key 32)");
    let seen = broker.take_seen();
    assert!(
        seen.iter().all(|(key, _)| *key == API_VERSIONS),
        "only ApiVersions may reach the old broker: {seen:?}"
    );
}

#[test]
fn a_broker_that_refuses_every_api_versions_version() {
    // UNSUPPORTED_VERSION without its own ApiVersions range: nothing left to try.
    let broker = OldBroker::start(&[(3, 0, 6)]);
    broker.ctl(&["api-versions"]).fails_with(&format!(
        "the broker at {} refused every ApiVersions version gregorctl tried",
        broker.addr
    ));
    assert_eq!(broker.take_seen().len(), 1);
}
