//! Memory a few small requests can claim, measured on the real broker process (its peak
//! resident set, `VmHWM` in `/proc/<pid>/status`):
//!
//! * 16 Produce requests at once whose compressed batches inflate to 512 MiB each (gzip and
//!   zstd of zeros): answered as Kafka answers them (INVALID_RECORD: the zeros are no
//!   records), while batches with a 64 MiB value are accepted, and the broker stays small,
//!   since compressed batches are checked off a streaming decompressor.
//! * 4 Fetch requests naming one partition 20 times with huge `max_bytes`, whose responses
//!   are never read: each partition is answered once, within `fetch.max.bytes`.
//! * `queued.max.request.bytes`: eight 24 MiB requests at once under a 24 MiB budget are
//!   all answered, one after another, without the broker holding them all.
//!
//! Meanwhile another client is served. Linux only (reads `/proc`).

use std::thread;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use gregor_protocol::messages::api_versions_request::ApiVersionsRequest;
use gregor_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use gregor_protocol::messages::fetch_response::FetchResponse;
use gregor_protocol::messages::produce_request::ProduceRequest;
use gregor_protocol::messages::produce_response::PartitionProduceResponse;
use gregor_protocol::records::{Compression, NewRecord, RecordBatch, RecordBatches, compress};
use gregor_protocol::{Encodable, Uuid};

use crate::support::{Broker, DataDir, RawClient};
use crate::wire::{self, error};

/// The bound on the broker's peak resident set in these tests.
const PEAK_LIMIT: u64 = 256 << 20;
/// Kafka's INVALID_RECORD.
const INVALID_RECORD: i16 = 87;
/// How far each bomb inflates.
const BOMB_INFLATED: usize = 512 << 20;

/// A `/proc/<pid>/status` field in bytes (`VmHWM`: peak resident set; `VmRSS`: current).
fn status_bytes(broker: &Broker, field: &str) -> u64 {
    let pid = broker.pid().expect("the broker is running");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in {status}"));
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("bad line {line:?}"));
    kib * 1024
}

fn assert_peak_below_limit(broker: &Broker, what: &str) {
    let peak = status_bytes(broker, "VmHWM:");
    eprintln!("{what}: peak resident set {} MiB", peak >> 20);
    assert!(
        peak < PEAK_LIMIT,
        "{what}: the broker's peak resident set reached {} MiB (limit {} MiB)",
        peak >> 20,
        PEAK_LIMIT >> 20
    );
}

/// Creates a one-partition topic and returns its id.
fn topic(broker: &Broker, name: &str) -> Uuid {
    let created = wire::create_topic(broker, name, 1, &[]);
    if let Some((code, message)) = &created {
        assert_eq!(*code, error::NONE, "CreateTopics {name}: {message:?}");
    }
    wire::wait_for_topic(broker, name, 1, created.is_none())
}

/// A v2 batch of `codec` declaring one record, whose records section is `section` (already
/// compressed), with its length and CRC right.
fn batch_with_section(codec: Compression, section: &[u8]) -> Bytes {
    let template = wire::batch(
        &[NewRecord::new(wire::now_ms(), None, Some(Bytes::from("x")))],
        codec,
    );
    let mut out = template[..61].to_vec();
    out.extend_from_slice(section);
    let length = (out.len() - 12) as i32;
    out[8..12].copy_from_slice(&length.to_be_bytes());
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(out)
}

/// `BOMB_INFLATED` zeros, compressed with `codec` as concatenated 8 MiB frames (gzip
/// members, zstd frames: both formats allow it, and Kafka's decoders read them), so that
/// the test need not compress 512 MiB itself.
fn bomb(codec: Compression) -> Bytes {
    let chunk = vec![0u8; 8 << 20];
    let mut frame = BytesMut::new();
    compress(codec, &chunk, &mut frame).expect("compress zeros");
    let section: Vec<u8> = frame
        .iter()
        .copied()
        .cycle()
        .take(frame.len() * (BOMB_INFLATED / chunk.len()))
        .collect();
    batch_with_section(codec, &section)
}

/// One produce (acks=-1) on a new connection; the partition's response.
fn produce_once(addr: std::net::SocketAddr, topic: &str, batch: Bytes) -> PartitionProduceResponse {
    let mut client = RawClient::connect(addr).expect("connect");
    client
        .stream()
        .set_read_timeout(Some(Duration::from_secs(300)))
        .unwrap();
    let request = wire::produce_request(topic, Uuid::nil(), -1, vec![(0, batch)]);
    wire::produce(&mut client, wire::PRODUCE_BY_NAME, &request)
        .expect("Produce request")
        .remove(0)
}

/// Another client's requests, served while the others are in flight: ApiVersions and a
/// small produce to `topic`, answered correctly; returns how many rounds it made.
fn bystander(broker: &Broker, topic: &str, until: impl Fn() -> bool) -> usize {
    let mut client = wire::connect(broker);
    let mut rounds = 0;
    loop {
        let request = ApiVersionsRequest {
            client_software_name: "bystander".into(),
            client_software_version: "1.0".into(),
            ..Default::default()
        };
        let versions = client
            .call(&request, 3)
            .expect("ApiVersions while the others are in flight");
        assert_eq!(versions.error_code, error::NONE);
        let records = [NewRecord::new(
            wire::now_ms(),
            Some(Bytes::from("k")),
            Some(Bytes::from(format!("bystander {rounds}"))),
        )];
        wire::produce_ok(
            &mut client,
            wire::PRODUCE_BY_NAME,
            topic,
            Uuid::nil(),
            0,
            wire::batch(&records, Compression::None),
        );
        rounds += 1;
        if until() {
            return rounds;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sixteen_decompression_bombs_at_once_cost_about_their_wire_size() {
    let data = DataDir::builder().build();
    let broker = Broker::start(&data);
    topic(&broker, "bombs");
    topic(&broker, "bystander");
    let bombs = [bomb(Compression::Gzip), bomb(Compression::Zstd)];
    assert!(
        bombs[0].len() < 1 << 20,
        "gzip bomb: {} bytes",
        bombs[0].len()
    );
    // A real record whose 64 MiB value is zeros: Kafka takes it, and so must we.
    let big_value = NewRecord::new(
        wire::now_ms(),
        Some(Bytes::from("big")),
        Some(Bytes::from(vec![0u8; 64 << 20])),
    );
    let big = wire::batch(&[big_value], Compression::Zstd);

    let addr = broker.addr();
    let mut senders: Vec<_> = (0..16)
        .map(|i| {
            let batch = bombs[i % 2].clone();
            thread::spawn(move || (i, produce_once(addr, "bombs", batch)))
        })
        .collect();
    senders.extend((16..18).map(|i| {
        let batch = big.clone();
        thread::spawn(move || (i, produce_once(addr, "bombs", batch)))
    }));
    let rounds = bystander(&broker, "bystander", || {
        senders.iter().all(|s| s.is_finished())
    });
    assert!(rounds > 0);
    let responses: Vec<_> = senders
        .into_iter()
        .map(|s| s.join().expect("producer thread"))
        .collect();
    assert_peak_below_limit(&broker, "16 decompression bombs");
    for (i, response) in responses {
        if i < 16 {
            // Zeros are a record of length 0: Kafka's record reader finds no attributes
            // byte ("Found invalid record structure", an InvalidRecordException).
            assert_eq!(
                response.error_code, INVALID_RECORD,
                "bomb {i}: {response:?}"
            );
            assert_eq!(response.base_offset, -1, "bomb {i}");
        } else {
            assert_eq!(
                response.error_code,
                error::NONE,
                "big value {i}: {response:?}"
            );
        }
    }

    // The two real batches are stored as they came, and read back whole.
    let mut client = wire::connect(&broker);
    let log = wire::fetch_all(&mut client, "bombs", 0, 0);
    let records = log.records();
    assert_eq!(records.len(), 2);
    for record in records {
        assert_eq!(record.value.map(|v| v.len()), Some(64 << 20));
    }
    assert_peak_below_limit(&broker, "reading the big values back");
}

/// Records written to the fetch topic: 32 batches of about 1000 KB.
const FETCH_BATCHES: usize = 32;
const FETCH_VALUE: usize = 1_000_000;

/// A Fetch (v12, by name) naming partition 0 of `topic` `times` times from offset 0, with
/// `max_bytes` and every `partition_max_bytes` at i32::MAX.
fn greedy_fetch(topic: &str, times: usize) -> FetchRequest {
    FetchRequest {
        replica_id: -1,
        max_wait_ms: 0,
        min_bytes: 1,
        max_bytes: i32::MAX,
        session_epoch: -1,
        topics: vec![FetchTopic {
            topic: topic.into(),
            partitions: (0..times)
                .map(|_| FetchPartition {
                    partition: 0,
                    fetch_offset: 0,
                    partition_max_bytes: i32::MAX,
                    log_start_offset: -1,
                    current_leader_epoch: -1,
                    last_fetched_epoch: -1,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn four_unread_fetches_naming_a_partition_twenty_times_hold_one_capped_response_each() {
    let data = DataDir::builder().build();
    // fetch.max.bytes below the topic's size, so the cap shows.
    let cap = 20 << 20;
    let broker = Broker::start_with(&data, &[("fetch.max.bytes", &cap.to_string())]);
    topic(&broker, "fetched");
    topic(&broker, "bystander");
    let mut client = wire::connect(&broker);
    for n in 0..FETCH_BATCHES {
        let value: Vec<u8> = (0..FETCH_VALUE).map(|i| (i * 7 + n) as u8).collect();
        let records = [NewRecord::new(
            wire::now_ms(),
            Some(Bytes::from(format!("k{n}"))),
            Some(Bytes::from(value)),
        )];
        wire::produce_ok(
            &mut client,
            wire::PRODUCE_BY_NAME,
            "fetched",
            Uuid::nil(),
            0,
            wire::batch(&records, Compression::None),
        );
    }
    let request = greedy_fetch("fetched", 20);
    assert!(request.encoded_len(wire::FETCH_VERSION) < 1024);

    // Four clients send it and never read; each response is complete in the broker's
    // memory once its first byte arrives.
    let mut stuck = Vec::new();
    for _ in 0..4 {
        let mut reader = wire::connect(&broker);
        reader
            .send(&request, wire::FETCH_VERSION)
            .expect("send Fetch");
        stuck.push(reader);
    }
    for reader in &mut stuck {
        reader
            .stream()
            .set_read_timeout(Some(Duration::from_secs(120)))
            .unwrap();
        let mut first = [0u8; 1];
        let peeked = reader.stream().peek(&mut first).expect("a response starts");
        assert_eq!(peeked, 1);
    }
    let rounds = bystander(&broker, "bystander", || true);
    assert_eq!(rounds, 1);
    assert_peak_below_limit(&broker, "4 unread fetches");

    // What each of them was sent: partition 0 once, within fetch.max.bytes, whole batches
    // from offset 0.
    let response: FetchResponse = client
        .call(&request, wire::FETCH_VERSION)
        .expect("the same Fetch, read");
    assert_eq!(response.error_code, error::NONE);
    assert_eq!(
        response.responses.len(),
        1,
        "{:?}",
        response.responses.len()
    );
    let partitions = &response.responses[0].partitions;
    assert_eq!(partitions.len(), 1, "partition 0 is answered once");
    let p = &partitions[0];
    assert_eq!(p.error_code, error::NONE);
    assert_eq!(p.high_watermark, FETCH_BATCHES as i64);
    let records = p.records.clone().expect("records");
    assert!(
        records.len() <= cap,
        "{} bytes above fetch.max.bytes {cap}",
        records.len()
    );
    let batches: Vec<RecordBatch> = RecordBatches::new(records.clone())
        .map(|b| match b.expect("a whole batch") {
            gregor_protocol::records::Batch::V2(batch) => batch,
            other => panic!("legacy batch {other:?}"),
        })
        .collect();
    assert_eq!(batches[0].base_offset(), 0);
    let expected = cap / (FETCH_VALUE + 100);
    assert!(
        batches.len() >= expected - 1 && batches.len() <= expected,
        "{} batches in {} bytes",
        batches.len(),
        records.len()
    );
    for (n, batch) in batches.iter().enumerate() {
        assert_eq!(batch.base_offset(), n as i64);
        batch.validate().expect("a valid batch");
    }
    assert_peak_below_limit(&broker, "after the fetches");
    drop(stuck);
}

/// A Produce request of `batches` batches of 1000 KB to partition 0 of `topic`.
fn large_produce(topic: &str, batches: usize) -> ProduceRequest {
    let data: Vec<u8> = (0..batches)
        .flat_map(|n| {
            let records = [NewRecord::new(
                wire::now_ms(),
                None,
                Some(Bytes::from(vec![n as u8; FETCH_VALUE - 200])),
            )];
            wire::batch(&records, Compression::None).to_vec()
        })
        .collect();
    wire::produce_request(topic, Uuid::nil(), -1, vec![(0, Bytes::from(data))])
}

#[test]
fn queued_max_request_bytes_admits_requests_in_turn_and_answers_them_all() {
    let data = DataDir::builder().build();
    let budget = 24 << 20;
    let broker = Broker::start_with(
        &data,
        &[
            ("socket.request.max.bytes", &budget.to_string()),
            ("queued.max.request.bytes", &budget.to_string()),
        ],
    );
    topic(&broker, "queued");
    topic(&broker, "bystander");
    // 24 batches of 1000 KB: a request just under the budget.
    let per_request = 24;
    let request = large_produce("queued", per_request);
    assert!(request.encoded_len(wire::PRODUCE_BY_NAME) < budget);
    let addr = broker.addr();
    let before = status_bytes(&broker, "VmHWM:");
    let senders: Vec<_> = (0..8)
        .map(|_| {
            let request = request.clone();
            thread::spawn(move || {
                let mut client = RawClient::connect(addr).expect("connect");
                // Requests wait their turn for the budget: allow for it.
                let patient = Some(Duration::from_secs(600));
                client.stream().set_write_timeout(patient).unwrap();
                client.stream().set_read_timeout(patient).unwrap();
                wire::produce(&mut client, wire::PRODUCE_BY_NAME, &request)
                    .expect("Produce request")
                    .remove(0)
            })
        })
        .collect();
    let rounds = bystander(&broker, "bystander", || {
        senders.iter().all(|s| s.is_finished())
    });
    assert!(rounds > 0);
    for sender in senders {
        let response = sender.join().expect("sender thread");
        assert_eq!(response.error_code, error::NONE, "{response:?}");
    }
    let mut client = wire::connect(&broker);
    let (code, high_watermark, _, _) = wire::fetch_once(&mut client, "queued", 0, 0, 1024);
    assert_eq!(code, error::NONE);
    assert_eq!(high_watermark, 8 * per_request as i64);
    // Eight such requests held at once would be 184 MiB more.
    let grew = status_bytes(&broker, "VmHWM:").saturating_sub(before);
    eprintln!(
        "8 large requests: the peak resident set grew by {} MiB",
        grew >> 20
    );
    assert!(
        grew < 120 << 20,
        "the peak resident set grew by {} MiB",
        grew >> 20
    );
}
