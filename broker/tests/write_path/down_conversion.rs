//! Fetch v0-3 against the real binary: record batches written by a modern Produce (every
//! legacy codec, headers) and a committed transaction (its marker written through the
//! storage API before the start) read back as magic 0 (v0-1) and magic 1 (v2-3) message
//! sets, decoded here with a small legacy reader of this test's own. Also: fetches from
//! inside a batch, v3's first-batch-whole rule against v0-2's hard limit, an old consumer's
//! loop over the whole log, `message.downconversion.enable=false`, and zstd (KafkaApis 3.9).

use std::collections::BTreeMap;

use bytes::{Buf, Bytes};
use gregor_broker::storage::PartitionLog;
use gregor_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use gregor_protocol::messages::fetch_response::PartitionData;
use gregor_protocol::records::{Compression, Header, LegacyMessage, NewRecord, RecordBatchBuilder};

use crate::support::{Broker, DataDir, RawClient, TopicSpec};
use crate::wire;

const UNSUPPORTED_VERSION: i16 = 35;
const UNSUPPORTED_COMPRESSION_TYPE: i16 = 76;
const TS: i64 = 1_700_000_000_000;

/// One message as an old consumer sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Message {
    offset: i64,
    magic: i8,
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
}

/// A legacy message set decoded as kafka-python and the old Java consumer read one: entries
/// until a partial one (cut by the size limit, or Kafka's overflow filler), CRC32 checked,
/// wrappers decompressed and their magic 1 relative offsets made absolute.
fn read_message_set(mut buf: &[u8]) -> Vec<Message> {
    let mut out = Vec::new();
    while buf.len() >= 12 {
        let offset = (&buf[..8]).get_i64();
        let size = (&buf[8..12]).get_i32();
        if size < 14 || buf.len() < 12 + size as usize {
            break; // partial: the rest comes with the next fetch
        }
        let (entry, rest) = buf.split_at(12 + size as usize);
        buf = rest;
        // The library's parser only checks the stored CRC32 here.
        LegacyMessage::parse(Bytes::copy_from_slice(entry))
            .and_then(|m| m.verify_crc())
            .unwrap_or_else(|e| panic!("message {offset}: {e}"));
        out.extend(read_message(offset, &entry[12..]));
    }
    out
}

fn read_message(offset: i64, message: &[u8]) -> Vec<Message> {
    let magic = message[4] as i8;
    let attributes = message[5];
    let mut rest = &message[6..];
    let timestamp = if magic == 1 { rest.get_i64() } else { -1 };
    assert!(magic == 0 || magic == 1, "magic {magic}");
    let field = |rest: &mut &[u8]| {
        let len = rest.get_i32();
        (len >= 0).then(|| {
            let bytes = rest[..len as usize].to_vec();
            rest.advance(len as usize);
            bytes
        })
    };
    let key = field(&mut rest);
    let value = field(&mut rest);
    assert!(rest.is_empty());
    let codec = match attributes & 7 {
        0 => {
            return vec![Message {
                offset,
                magic,
                timestamp,
                key,
                value,
            }];
        }
        1 => Compression::Gzip,
        2 => Compression::Snappy,
        3 => Compression::Lz4,
        other => panic!("codec {other} in a legacy message"),
    };
    let mut value = value.expect("a wrapper value");
    if codec == Compression::Lz4 && magic == 0 {
        // Kafka's magic 0 lz4 frames carry the header checksum of Kafka before 0.10 (xxh32
        // over the magic bytes too): 0x1a for this descriptor, where the standard is 0x82.
        assert_eq!(value[..7], [0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, 0x1a]);
        value[6] = 0x82;
    }
    let plain = gregor_protocol::records::decompress(codec, &value, 1 << 24)
        .unwrap_or_else(|e| panic!("{codec:?} wrapper of magic {magic}: {e}"));
    let mut inner = read_message_set(&plain);
    let last = inner.last().map_or(0, |m| m.offset);
    for m in &mut inner {
        assert_eq!(m.magic, magic, "inner magic");
        if magic == 1 {
            m.offset += offset - last;
            if attributes & 8 != 0 {
                m.timestamp = timestamp;
            }
        }
    }
    inner
}

fn fetch(
    client: &mut RawClient,
    version: i16,
    topic: &str,
    offset: i64,
    max_bytes: i32,
    partition_max_bytes: i32,
) -> PartitionData {
    let request = FetchRequest {
        replica_id: -1,
        max_wait_ms: 0,
        min_bytes: 1,
        max_bytes,
        topics: vec![FetchTopic {
            topic: topic.into(),
            partitions: vec![FetchPartition {
                partition: 0,
                fetch_offset: offset,
                partition_max_bytes,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let response = client.call(&request, version).expect("Fetch request");
    assert_eq!(response.responses.len(), 1, "{response:?}");
    let mut topic_response = response.responses.into_iter().next().unwrap();
    assert_eq!(&*topic_response.topic, topic);
    topic_response.partitions.remove(0)
}

fn text(i: i64) -> (String, String) {
    (
        format!("key-{i}"),
        format!("value-{i}-{}", "x".repeat(i as usize * 7)),
    )
}

fn record(i: i64) -> NewRecord {
    let (key, value) = text(i);
    let mut r = NewRecord::new(TS + i, Some(key.into()), Some(value.into()));
    r.headers = vec![Header::new("h", Some(Bytes::from_static(b"dropped")))];
    r
}

/// The expected messages of `offsets` at `magic`.
fn expected(offsets: impl IntoIterator<Item = i64>, magic: i8) -> Vec<Message> {
    offsets
        .into_iter()
        .map(|i| {
            let (key, value) = text(i);
            Message {
                offset: i,
                magic,
                timestamp: if magic == 1 { TS + i } else { -1 },
                key: Some(key.into_bytes()),
                value: Some(value.into_bytes()),
            }
        })
        .collect()
}

/// `legacy`: offset 0 a transactional record, 1 its commit marker (storage API), then by
/// Produce: 2-4 uncompressed, 5-7 gzip, 8-9 snappy, 10-11 lz4 (headers on every record).
fn start() -> (DataDir, Broker) {
    let data = DataDir::builder()
        .topic(TopicSpec::new("legacy", 1))
        .build();
    {
        let log = PartitionLog::open(data.path(), "legacy", 0).expect("open the log");
        let mut batch = RecordBatchBuilder::new()
            .producer(1, 0)
            .base_sequence(0)
            .transactional(true)
            .build(&[record(0)])
            .expect("batch")
            .to_vec();
        log.append_batch(&mut batch).expect("append");
        log.append_txn_marker(1, 0, 0, true, 0, TS).expect("commit");
        log.close().expect("close");
    }
    let broker = Broker::start(&data);
    let id = wire::wait_for_topic(&broker, "legacy", 1, false);
    let mut client = wire::connect(&broker);
    let mut next = 2;
    for (codec, count) in [
        (Compression::None, 3),
        (Compression::Gzip, 3),
        (Compression::Snappy, 2),
        (Compression::Lz4, 2),
    ] {
        let records: Vec<NewRecord> = (next..next + count).map(record).collect();
        let response = wire::produce_ok(
            &mut client,
            9,
            "legacy",
            id,
            0,
            wire::batch(&records, codec),
        );
        assert_eq!(response.base_offset, next);
        next += count;
    }
    (data, broker)
}

fn magic_of(version: i16) -> i8 {
    if version <= 1 { 0 } else { 1 }
}

#[test]
fn fetch_v0_to_v3_reads_legacy_message_sets() {
    let (_data, broker) = start();
    let mut client = wire::connect(&broker);
    let all: Vec<i64> = std::iter::once(0).chain(2..12).collect();
    for version in 0..=3i16 {
        let magic = magic_of(version);
        let p = fetch(&mut client, version, "legacy", 0, 1 << 20, 1 << 20);
        assert_eq!(p.error_code, 0, "v{version}");
        assert_eq!(p.high_watermark, 12, "v{version}");
        let records = p.records.expect("records");
        // The control batch is dropped; every message whole, headers gone.
        assert_eq!(
            read_message_set(&records),
            expected(all.iter().copied(), magic),
            "v{version}"
        );

        // From inside the uncompressed batch: the earlier record is left out.
        let p = fetch(&mut client, version, "legacy", 3, 1 << 20, 1 << 20);
        let got = read_message_set(&p.records.unwrap());
        assert_eq!(got[0].offset, 3, "v{version}");
        assert_eq!(got, expected(3..12, magic), "v{version}");
        // From inside the gzip batch: the whole wrapper, the consumer skips 5.
        let p = fetch(&mut client, version, "legacy", 6, 1 << 20, 1 << 20);
        assert_eq!(
            read_message_set(&p.records.unwrap()),
            expected(5..12, magic),
            "v{version}"
        );
        // From the marker's offset: the commit marker converts to nothing.
        let p = fetch(&mut client, version, "legacy", 1, 1 << 20, 1 << 20);
        assert_eq!(
            read_message_set(&p.records.unwrap()),
            expected(2..12, magic),
            "v{version}"
        );
    }
}

#[test]
fn limits_follow_v3_first_batch_whole_and_v0_2_hard_limits() {
    let (_data, broker) = start();
    let mut client = wire::connect(&broker);
    // v3: a limit smaller than the first batch still returns that batch, converted whole.
    let p = fetch(&mut client, 3, "legacy", 2, 10, 10);
    let got = read_message_set(&p.records.unwrap());
    assert_eq!(got, expected(2..5, 1));
    // v0-2: a hard limit: nothing.
    for version in 0..=2 {
        let p = fetch(&mut client, version, "legacy", 2, 10, 10);
        assert_eq!(p.error_code, 0);
        assert_eq!(p.records.unwrap().len(), 0, "v{version}");
    }
    // An old consumer's loop with a small partition limit: the converted data is cut at
    // the bytes read (a partial message at the end), and fetching from the next offset
    // gets everything exactly once.
    for version in 0..=3i16 {
        let mut seen: BTreeMap<i64, Message> = BTreeMap::new();
        let mut offset = 0;
        let mut rounds = 0;
        while offset < 12 {
            rounds += 1;
            assert!(rounds < 50, "v{version} makes no progress at {offset}");
            let p = fetch(&mut client, version, "legacy", offset, 1 << 20, 400);
            let records = p.records.unwrap();
            for m in read_message_set(&records) {
                if m.offset >= offset {
                    offset = m.offset + 1;
                    seen.insert(m.offset, m);
                }
            }
        }
        let all: Vec<i64> = std::iter::once(0).chain(2..12).collect();
        assert_eq!(
            seen.into_values().collect::<Vec<_>>(),
            expected(all, magic_of(version)),
            "v{version}"
        );
    }
}

#[test]
fn downconversion_disabled_and_zstd_answer_errors() {
    let data = DataDir::builder().build();
    let broker = Broker::start(&data);
    let mut client = wire::connect(&broker);
    for (topic, configs) in [
        ("no-down", &[("message.downconversion.enable", "false")][..]),
        ("zstd-topic", &[("compression.type", "zstd")][..]),
        ("plain", &[][..]),
    ] {
        let created = wire::create_topic(&broker, topic, 1, configs).expect("CreateTopics");
        assert_eq!(created.0, 0, "{topic}: {created:?}");
        let id = wire::wait_for_topic(&broker, topic, 1, false);
        let records: Vec<NewRecord> = (0..3).map(record).collect();
        let codec = if topic == "plain" {
            Compression::Zstd
        } else {
            Compression::None
        };
        wire::produce_ok(&mut client, 9, topic, id, 0, wire::batch(&records, codec));
    }
    for version in 0..=3 {
        let p = fetch(&mut client, version, "no-down", 0, 1 << 20, 1 << 20);
        assert_eq!(p.error_code, UNSUPPORTED_VERSION, "v{version}");
        assert_eq!((p.high_watermark, p.records.unwrap().len()), (-1, 0));
        // A zstd batch first in the data cannot be converted.
        let p = fetch(&mut client, version, "plain", 0, 1 << 20, 1 << 20);
        assert_eq!(p.error_code, UNSUPPORTED_COMPRESSION_TYPE, "v{version}");
    }
    let p = fetch(&mut client, 4, "no-down", 0, 1 << 20, 1 << 20);
    assert_eq!(p.error_code, 0);
    assert!(!p.records.unwrap().is_empty());
    // A zstd topic is refused below v10 whatever its data (KIP-110), served from v10.
    for version in 0..=9 {
        let p = fetch(&mut client, version, "zstd-topic", 0, 1 << 20, 1 << 20);
        assert_eq!(p.error_code, UNSUPPORTED_COMPRESSION_TYPE, "v{version}");
    }
    let p = fetch(&mut client, 10, "zstd-topic", 0, 1 << 20, 1 << 20);
    assert_eq!(p.error_code, 0);
    assert!(!p.records.unwrap().is_empty());
}

/// A modern producer (confluent-kafka, librdkafka: v2 batches with headers; gzip, lz4 and
/// none) and kafka-python pinned to Kafka 0.10 (Fetch v2, magic 1), 0.10.1 (Fetch v3), 0.9
/// (Fetch v1, magic 0) and 0.8.2 (Fetch v0): every record read back at its offset with its
/// key and value (and timestamp from magic 1), without headers.
#[test]
fn kafka_python_as_0_10_reads_what_a_modern_producer_wrote() {
    if crate::support::clients::python_path().is_none() {
        let _ = crate::support::python("produce_confluent.py", &[]);
        return;
    }
    const COUNT: usize = 1500;
    let limit = std::time::Duration::from_secs(240);
    let data = DataDir::builder().build();
    let broker = Broker::start(&data);
    let bootstrap = broker.bootstrap();
    let pattern = crate::records::pattern();
    let base_ts = wire::now_ms() - 60_000;
    let (base, count) = (base_ts.to_string(), COUNT.to_string());
    for (tag, codec) in [("gz", "gzip"), ("l4", "lz4"), ("no", "none")] {
        let topic = format!("old-consumer-{tag}");
        let created = wire::create_topic(&broker, &topic, 2, &[]).expect("CreateTopics");
        assert_eq!(created.0, 0, "{created:?}");
        let produce = [
            "--bootstrap",
            &bootstrap,
            "--timeout",
            "60",
            "--topic",
            &topic,
            "--count",
            &count,
            "--tag",
            tag,
            "--base-ts",
            &base,
            "--compression",
            codec,
        ];
        let out = crate::support::python_with_timeout("produce_confluent.py", &produce, limit)
            .expect("the virtualenv");
        out.assert_success();
        let acks = crate::records::parse_acks(&out);
        crate::records::check_acks("confluent", &acks, COUNT);
        // 0.10.1 (Fetch v3) once more with 1 KiB per partition, less than a batch: the first
        // batch comes whole, converted, and the answers end in partial messages.
        let runs = [
            ("0.10", "1048576"),
            ("0.10.1", "1048576"),
            ("0.9", "1048576"),
            ("0.8.2", "1048576"),
            ("0.10.1", "1024"),
        ];
        for (api_version, partition_bytes) in runs {
            let consume = [
                "--bootstrap",
                &bootstrap,
                "--timeout",
                "120",
                "--topic",
                &topic,
                "--partitions",
                "2",
                "--count",
                &count,
                "--api-version",
                api_version,
                "--max-partition-fetch-bytes",
                partition_bytes,
            ];
            let out = crate::support::python_with_timeout(
                "consume_digest_old_format_kafka_python.py",
                &consume,
                limit,
            )
            .expect("the virtualenv");
            out.assert_success();
            println!("{codec}, {partition_bytes} B: {}", out.stderr.trim());
            let consumed = crate::records::parse_digests(&out);
            let by_position: BTreeMap<(i32, i64), &crate::records::Digest> = consumed
                .iter()
                .map(|d| ((d.partition, d.offset), d))
                .collect();
            assert_eq!(consumed.len(), acks.len(), "kafka-python {api_version}");
            for &(i, p, o) in &acks {
                let mut want = crate::records::generate(&pattern, tag, base_ts, i, true);
                want.headers.clear(); // magic 0 and 1 have no headers
                if api_version.starts_with("0.9") || api_version.starts_with("0.8") {
                    want.timestamp = -1; // nor has magic 0 timestamps
                }
                let want = crate::records::Digest::of(&want, p, o);
                let got = by_position.get(&(p, o)).copied();
                assert_eq!(
                    got,
                    Some(&want),
                    "kafka-python {api_version} on {topic}: record {i}"
                );
            }
        }
    }
}
