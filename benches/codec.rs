//! Encode and decode speed, side by side with the `kafka-protocol` crate.
//!
//! Each row is a criterion group with a `gregor` and a `kafka-protocol` function working on
//! the same input: the bytes are encoded once by us (and checked to re-encode identically
//! with kafka-protocol), and each library's value is decoded from them before timing.
//!
//! * `decode/<row>`: bytes -> value (the value is dropped inside the timed loop, for both).
//! * `encode/<row>`: value -> exactly sized buffer (our `to_bytes`; kafka-protocol's
//!   `compute_size` + `encode` into a buffer of that capacity). Fetch and Produce also time
//!   `gregor-chunked`, our zero-copy encoding into a [`ChunkedBuf`].
//! * `records_decode/<codec>`: a 1000-record batch: check the CRC, decompress, and iterate
//!   every record touching its key and value. kafka-protocol's `RecordBatchDecoder` checks
//!   the CRC and builds a `Vec<Record>`; ours is measured with owned records
//!   ([`RecordBatch::records`], `gregor`) and borrowed ones ([`RecordBatch::section`],
//!   `gregor-borrowed`).
//! * `records_encode/<codec>`: the same 1000 records encoded into one batch.
//!
//! `cargo bench --bench codec` (about 4 minutes on 2 cores); pass a filter to run a subset,
//! e.g. `cargo bench --bench codec -- records_decode`.

#![allow(missing_docs)] // criterion_group! generates undocumented items.

use std::hint::black_box;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{
    BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main, measurement::WallTime,
};
use gregor_protocol::messages::api_versions_response::{
    ApiVersion, ApiVersionsResponse, FinalizedFeatureKey, SupportedFeatureKey,
};
use gregor_protocol::messages::fetch_response::{
    FetchResponse, FetchableTopicResponse, PartitionData,
};
use gregor_protocol::messages::metadata_response::{
    MetadataResponse, MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use gregor_protocol::messages::produce_request::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use gregor_protocol::messages::request_header::RequestHeader;
use gregor_protocol::records::{
    Batch, Compression, NewRecord, RecordBatch, RecordBatchBuilder, RecordBatches,
};
use gregor_protocol::{ChunkedBuf, Message, Uuid};
use kafka_protocol::messages as kp;
use kafka_protocol::protocol::{Decodable as KpDecodable, Encodable as KpEncodable};
use kafka_protocol::records as kpr;

/// A deterministic UUID per index (no randomness: runs are comparable).
fn uuid(i: u64) -> Uuid {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let mut bytes = [0u8; 16];
    for chunk in bytes.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_be_bytes());
    }
    Uuid::from_bytes(bytes)
}

/// Metadata v12 response: 6 brokers, 100 topics x 10 partitions, replication factor 3.
fn metadata_response() -> MetadataResponse {
    let brokers = (0..6)
        .map(|id| MetadataResponseBroker {
            node_id: id,
            host: format!("kafka-{id}.kafka-headless.prod.svc.cluster.local").into(),
            port: 9092,
            rack: Some(format!("eu-west-1{}", ["a", "b", "c"][id as usize % 3]).into()),
            ..Default::default()
        })
        .collect();
    let topics = (0..100)
        .map(|t| MetadataResponseTopic {
            error_code: 0,
            name: Some(
                format!(
                    "{}-events-v{}",
                    ["orders", "payments", "clicks", "audit"][t % 4],
                    t
                )
                .into(),
            ),
            topic_id: uuid(t as u64),
            is_internal: false,
            partitions: (0..10)
                .map(|p| {
                    let leader = ((t + p) % 6) as i32;
                    let replicas = vec![leader, (leader + 1) % 6, (leader + 2) % 6];
                    MetadataResponsePartition {
                        error_code: 0,
                        partition_index: p as i32,
                        leader_id: leader,
                        leader_epoch: 7 + (p as i32 % 3),
                        isr_nodes: replicas.clone(),
                        replica_nodes: replicas,
                        offline_replicas: Vec::new(),
                        ..Default::default()
                    }
                })
                .collect(),
            topic_authorized_operations: i32::MIN,
            ..Default::default()
        })
        .collect();
    MetadataResponse {
        throttle_time_ms: 0,
        brokers,
        cluster_id: Some("MkU3OEVBNTcwNTJENDM2Qk".into()),
        controller_id: 1,
        topics,
        ..Default::default()
    }
}

const RECORDS_PER_PARTITION_BYTES: usize = 64 * 1024;

/// One uncompressed batch of 1 KiB values, exactly 64 KiB long (the last value is sized to
/// fill it): what a fetch or produce of one partition carries.
fn partition_records(partition: i64) -> Bytes {
    let value = |len: usize| Some(Bytes::from(vec![b'x'; len]));
    let mut records = Vec::new();
    loop {
        records.push(NewRecord::new(
            1_700_000_000_000 + records.len() as i64,
            None,
            value(1024),
        ));
        let len = RecordBatchBuilder::new().build(&records).unwrap().len();
        if len + 1100 > RECORDS_PER_PARTITION_BYTES {
            // Size the last record's value so the batch is exactly 64 KiB.
            let short = RECORDS_PER_PARTITION_BYTES - len;
            for extra in 0..64 {
                let mut last = records.clone();
                last.push(NewRecord::new(
                    1_700_000_000_000,
                    None,
                    value(short - 16 + extra),
                ));
                let bytes = RecordBatchBuilder::new()
                    .base_offset(partition * 1000)
                    .build(&last)
                    .unwrap();
                if bytes.len() == RECORDS_PER_PARTITION_BYTES {
                    return bytes;
                }
            }
            unreachable!("could not size the batch to 64 KiB");
        }
    }
}

/// Fetch v16 response: one topic, 10 partitions x 64 KiB of records.
fn fetch_response() -> FetchResponse {
    FetchResponse {
        throttle_time_ms: 0,
        error_code: 0,
        session_id: 123_456,
        responses: vec![FetchableTopicResponse {
            topic_id: uuid(7),
            partitions: (0..10)
                .map(|p| PartitionData {
                    partition_index: p,
                    error_code: 0,
                    high_watermark: 1_000_000 + i64::from(p),
                    last_stable_offset: 1_000_000 + i64::from(p),
                    log_start_offset: 0,
                    aborted_transactions: Some(Vec::new()),
                    preferred_read_replica: -1,
                    records: Some(partition_records(i64::from(p))),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Produce v11 request: one topic, 10 partitions x 64 KiB of records.
fn produce_request() -> ProduceRequest {
    ProduceRequest {
        transactional_id: None,
        acks: -1,
        timeout_ms: 30_000,
        topic_data: vec![TopicProduceData {
            name: "orders-events-v0".into(),
            partition_data: (0..10)
                .map(|p| PartitionProduceData {
                    index: p,
                    records: Some(partition_records(i64::from(p))),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// ApiVersions v4 response as a Kafka 4.x broker sends it: 60 API keys and its features.
fn api_versions_response() -> ApiVersionsResponse {
    // (api key, min version, max version)
    const KEYS: [(i16, i16, i16); 60] = [
        (0, 3, 13),
        (1, 4, 18),
        (2, 1, 10),
        (3, 0, 13),
        (8, 2, 10),
        (9, 1, 10),
        (10, 0, 6),
        (11, 0, 9),
        (12, 0, 4),
        (13, 0, 5),
        (14, 0, 5),
        (15, 0, 6),
        (16, 0, 5),
        (17, 0, 1),
        (18, 0, 4),
        (19, 2, 7),
        (20, 1, 6),
        (21, 0, 2),
        (22, 0, 6),
        (23, 2, 4),
        (24, 0, 6),
        (25, 0, 5),
        (26, 0, 5),
        (27, 0, 1),
        (28, 0, 5),
        (29, 1, 3),
        (30, 1, 3),
        (31, 1, 3),
        (32, 1, 4),
        (33, 0, 2),
        (34, 1, 2),
        (35, 1, 4),
        (36, 0, 2),
        (37, 0, 3),
        (38, 1, 3),
        (39, 1, 2),
        (40, 1, 2),
        (41, 1, 3),
        (42, 0, 2),
        (43, 0, 2),
        (44, 0, 1),
        (45, 0, 0),
        (46, 0, 0),
        (47, 0, 0),
        (48, 0, 1),
        (49, 0, 1),
        (50, 0, 0),
        (51, 0, 0),
        (55, 0, 2),
        (57, 0, 2),
        (60, 0, 2),
        (61, 0, 0),
        (64, 0, 0),
        (65, 0, 0),
        (66, 0, 1),
        (68, 0, 1),
        (69, 0, 1),
        (71, 0, 0),
        (72, 0, 0),
        (74, 0, 0),
    ];
    let features = [
        ("group.version", 0, 1),
        ("kraft.version", 0, 1),
        ("metadata.version", 7, 27),
        ("transaction.version", 0, 2),
    ];
    ApiVersionsResponse {
        error_code: 0,
        api_keys: KEYS
            .iter()
            .map(|&(api_key, min_version, max_version)| ApiVersion {
                api_key,
                min_version,
                max_version,
                ..Default::default()
            })
            .collect(),
        throttle_time_ms: 0,
        supported_features: features
            .iter()
            .map(|&(name, min_version, max_version)| SupportedFeatureKey {
                name: name.into(),
                min_version,
                max_version,
                ..Default::default()
            })
            .collect(),
        finalized_features_epoch: 4_242,
        finalized_features: features
            .iter()
            .map(|&(name, _, max)| FinalizedFeatureKey {
                name: name.into(),
                max_version_level: max,
                min_version_level: max,
                ..Default::default()
            })
            .collect(),
        zk_migration_ready: false,
        ..Default::default()
    }
}

/// Request header v2 of a Fetch v17 request.
fn request_header() -> RequestHeader {
    RequestHeader {
        request_api_key: 1,
        request_api_version: 17,
        correlation_id: 1_234_567,
        client_id: Some("consumer-orders-service-1".into()),
        ..Default::default()
    }
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args()
}

/// The `decode/<name>` and `encode/<name>` rows of one message.
/// With `chunked`, the encode row also times `gregor-chunked`: encoding into a
/// [`ChunkedBuf`] that shares the records instead of copying them (what a broker sending a
/// fetch response does; kafka-protocol has no equivalent).
fn message_row<O, T>(c: &mut Criterion, name: &str, value: &O, version: i16, chunked: bool)
where
    O: Message,
    T: KpEncodable + KpDecodable,
{
    let bytes = value.to_bytes(version).unwrap();
    let theirs = T::decode(&mut bytes.clone(), version).unwrap();
    let mut check = BytesMut::new();
    theirs.encode(&mut check, version).unwrap();
    assert_eq!(
        check, bytes,
        "{name}: kafka-protocol re-encodes differently"
    );

    let mut group = c.benchmark_group(format!("decode/{name}"));
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("gregor", |b| {
        b.iter(|| O::decode(&mut black_box(&bytes).clone(), version).unwrap())
    });
    group.bench_function("kafka-protocol", |b| {
        b.iter(|| T::decode(&mut black_box(&bytes).clone(), version).unwrap())
    });
    group.finish();

    let mut group = c.benchmark_group(format!("encode/{name}"));
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("gregor", |b| {
        b.iter(|| black_box(value).to_bytes(version).unwrap())
    });
    group.bench_function("kafka-protocol", |b| {
        b.iter(|| {
            let value = black_box(&theirs);
            let mut buf = BytesMut::with_capacity(value.compute_size(version).unwrap());
            value.encode(&mut buf, version).unwrap();
            buf.freeze()
        })
    });
    if chunked {
        let mut buf = ChunkedBuf::new(4096);
        value.encode_to(&mut buf, version).unwrap();
        assert_eq!(
            buf.into_chunks().concat(),
            bytes.to_vec(),
            "{name}: chunked encoding differs"
        );
        group.bench_function("gregor-chunked", |b| {
            b.iter(|| {
                let mut buf = ChunkedBuf::new(4096);
                black_box(value).encode_to(&mut buf, version).unwrap();
                buf.into_chunks()
            })
        });
    }
    group.finish();
}

fn messages(c: &mut Criterion) {
    message_row::<_, kp::MetadataResponse>(
        c,
        "metadata_response_v12",
        &metadata_response(),
        12,
        false,
    );
    message_row::<_, kp::FetchResponse>(c, "fetch_response_v16", &fetch_response(), 16, true);
    message_row::<_, kp::ProduceRequest>(c, "produce_request_v11", &produce_request(), 11, true);
    message_row::<_, kp::ApiVersionsResponse>(
        c,
        "api_versions_response_v4",
        &api_versions_response(),
        4,
        false,
    );
    message_row::<_, kp::RequestHeader>(c, "request_header_v2", &request_header(), 2, false);
}

/// 1000 records of a click stream: 11-byte keys, JSON values of about 110 bytes, no headers.
fn new_records() -> Vec<NewRecord> {
    (0..1000u32)
        .map(|i| {
            let key = format!("user-{:06}", (i * 7919) % 100_000);
            let value = format!(
                r#"{{"id":{i},"user":"{key}","event":"{}","path":"/products/{}","ms":{}}}"#,
                ["page_view", "add_to_cart", "checkout", "search"][i as usize % 4],
                (i * 31) % 5000,
                (i * 17) % 900
            );
            NewRecord::new(
                1_700_000_000_000 + i64::from(i) * 3,
                Some(key.into()),
                Some(value.into()),
            )
        })
        .collect()
}

/// Key and value bytes of every record, through our owned records (CRC checked first).
fn gregor_owned(bytes: &Bytes) -> usize {
    let mut touched = 0;
    for batch in RecordBatches::new(bytes.clone()) {
        let Batch::V2(batch) = batch.unwrap() else {
            unreachable!()
        };
        batch.verify_crc().unwrap();
        for record in batch.records() {
            let record = record.unwrap();
            touched += record.key.as_ref().map_or(0, |k| usize::from(k[0]))
                + record.value.map_or(0, |v| v.len());
        }
    }
    touched
}

/// The same through borrowed records.
fn gregor_borrowed(bytes: &Bytes) -> usize {
    let mut touched = 0;
    for batch in RecordBatches::new(bytes.clone()) {
        let Batch::V2(batch) = batch.unwrap() else {
            unreachable!()
        };
        batch.verify_crc().unwrap();
        let section = batch.section().unwrap();
        for record in section.iter() {
            let record = record.unwrap();
            touched +=
                record.key.map_or(0, |k| usize::from(k[0])) + record.value.map_or(0, |v| v.len());
        }
    }
    touched
}

/// Key and value sizes of every record, streamed off the decompressor with keys and
/// values skipped (how the broker validates a compressed Produce batch).
fn gregor_streamed(bytes: &Bytes) -> usize {
    let mut sizes = 0;
    for batch in RecordBatches::new(bytes.clone()) {
        let Batch::V2(batch) = batch.unwrap() else {
            unreachable!()
        };
        batch.verify_crc().unwrap();
        for record in batch.skip_key_value_records(usize::MAX) {
            let record = record.unwrap();
            sizes += record.key_len.unwrap_or(0) + record.value_len.unwrap_or(0);
        }
    }
    sizes
}

/// The same through kafka-protocol (which checks the CRC while decoding).
fn kafka_protocol_decode(bytes: &Bytes) -> usize {
    let mut touched = 0;
    for set in kpr::RecordBatchDecoder::decode_all(&mut bytes.clone()).unwrap() {
        for record in set.records {
            touched += record.key.as_ref().map_or(0, |k| usize::from(k[0]))
                + record.value.map_or(0, |v| v.len());
        }
    }
    touched
}

fn record_batches(c: &mut Criterion) {
    let records = new_records();
    // kafka-protocol's records, decoded from our uncompressed batch (same offsets,
    // timestamps, sequence numbers).
    let plain = RecordBatchBuilder::new().build(&records).unwrap();
    let theirs: Vec<kpr::Record> = kpr::RecordBatchDecoder::decode(&mut plain.clone())
        .unwrap()
        .records;
    assert_eq!(theirs.len(), 1000);

    for (name, ours_codec, their_codec) in [
        ("none", Compression::None, kpr::Compression::None),
        ("lz4", Compression::Lz4, kpr::Compression::Lz4),
        ("zstd", Compression::Zstd, kpr::Compression::Zstd),
    ] {
        let builder = RecordBatchBuilder::new().compression(ours_codec);
        let bytes = builder.build(&records).unwrap();
        eprintln!(
            "records_{name}: one batch of 1000 records, {} bytes",
            bytes.len()
        );
        let batch = RecordBatch::parse(bytes.clone()).unwrap();
        batch.validate().unwrap();
        let expected = gregor_owned(&bytes);
        assert_eq!(gregor_borrowed(&bytes), expected);
        assert_eq!(kafka_protocol_decode(&bytes), expected);

        let mut group = c.benchmark_group(format!("records_decode/1000_{name}"));
        group.throughput(Throughput::Elements(1000));
        group.bench_function("gregor", |b| b.iter(|| gregor_owned(black_box(&bytes))));
        group.bench_function("kafka-protocol", |b| {
            b.iter(|| kafka_protocol_decode(black_box(&bytes)))
        });
        group.bench_function("gregor-borrowed", |b| {
            b.iter(|| gregor_borrowed(black_box(&bytes)))
        });
        let sizes: usize = records
            .iter()
            .map(|r| {
                r.key.as_ref().map_or(0, |k| k.len()) + r.value.as_ref().map_or(0, |v| v.len())
            })
            .sum();
        assert_eq!(gregor_streamed(&bytes), sizes);
        group.bench_function("gregor-streamed", |b| {
            b.iter(|| gregor_streamed(black_box(&bytes)))
        });
        group.finish();

        let options = kpr::RecordEncodeOptions {
            version: 2,
            compression: their_codec,
        };
        let mut check = BytesMut::new();
        kpr::RecordBatchEncoder::encode(&mut check, &theirs, &options).unwrap();
        let check = check.freeze();
        eprintln!(
            "records_{name}: kafka-protocol encodes them in {} bytes",
            check.len()
        );
        assert_eq!(
            RecordBatches::new(check.clone()).count(),
            1,
            "kafka-protocol wrote one batch"
        );
        assert_eq!(gregor_owned(&check), expected);

        let mut group: BenchmarkGroup<'_, WallTime> =
            c.benchmark_group(format!("records_encode/1000_{name}"));
        group.throughput(Throughput::Elements(1000));
        group.bench_function("gregor", |b| {
            b.iter(|| builder.build(black_box(&records)).unwrap())
        });
        group.bench_function("kafka-protocol", |b| {
            b.iter(|| {
                let mut buf = BytesMut::new();
                kpr::RecordBatchEncoder::encode(&mut buf, black_box(&theirs), &options).unwrap();
                buf.freeze()
            })
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = messages, record_batches
}
criterion_main!(benches);
