//! Tests of the test harness itself (`support`): the data directory fixture reads back with
//! gregor-protocol's decoders, the JSON reader and `server.properties` writer work; then
//! the raw client and the process launcher against the real binary.

mod support;

use std::fs;
use std::time::Duration;

use bytes::Bytes;
use gregor_protocol::messages::api_versions_request::ApiVersionsRequest;
use gregor_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use gregor_protocol::messages::metadata_request::MetadataRequest;
use gregor_protocol::records::{
    Batch, Compression, ControlRecordKey, ControlRecordType, RecordBatches,
};
use gregor_protocol::{ApiKey, Decodable, MetadataRecord, Uuid};
use support::{
    Broker, DataDir, RawClient, TopicSpec, WrittenPartition, kafka_uuid_string, server_properties,
};

fn read_log(path: &std::path::Path) -> Vec<gregor_protocol::records::RecordBatch> {
    let bytes = Bytes::from(fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())));
    let mut batches = RecordBatches::new(bytes);
    let out: Vec<_> = batches
        .by_ref()
        .map(|b| match b.expect("a batch") {
            Batch::V2(batch) => {
                batch.validate().expect("a valid batch");
                batch
            }
            Batch::Legacy(_) => panic!("legacy message in {}", path.display()),
        })
        .collect();
    assert!(
        !batches.is_truncated(),
        "{} ends in a partial batch",
        path.display()
    );
    out
}

fn small_fixture() -> DataDir {
    DataDir::builder()
        .topic(
            TopicSpec::new("t", 2)
                .records(300)
                .batch_records(25)
                .segment_bytes(8 * 1024)
                .partition_compression(1, &[Compression::Lz4, Compression::Zstd])
                .config("retention.ms", "1000"),
        )
        .topic(TopicSpec::new("empty", 1))
        .broker_config("log.retention.hours", "1")
        .build()
}

#[test]
fn uuids_print_as_kafka_does() {
    assert_eq!(kafka_uuid_string(Uuid::nil()), "AAAAAAAAAAAAAAAAAAAAAA");
    assert_eq!(
        kafka_uuid_string(Uuid::from_u64_pair(0, 1)),
        "AAAAAAAAAAAAAAAAAAAAAQ"
    );
    assert_eq!(
        kafka_uuid_string(Uuid::from_u128(u128::MAX)),
        "_____________________w"
    );
    for _ in 0..100 {
        let id = support::random_uuid();
        let text = kafka_uuid_string(id);
        assert_eq!(text.len(), 22);
        assert!(!text.starts_with('-'));
    }
}

#[test]
fn fixture_writes_meta_properties_and_checkpoints() {
    let data = small_fixture();
    let meta = fs::read_to_string(data.path().join("meta.properties")).unwrap();
    for line in [
        "version=1".to_string(),
        format!("node.id={}", data.node_id),
        format!("cluster.id={}", data.cluster_id),
        format!("directory.id={}", kafka_uuid_string(data.directory_id)),
    ] {
        assert!(meta.lines().any(|l| l == line), "{line:?} not in\n{meta}");
    }
    assert_eq!(data.cluster_id.len(), 22);
    let recovery =
        fs::read_to_string(data.path().join("recovery-point-offset-checkpoint")).unwrap();
    assert_eq!(recovery, "0\n3\nt 0 300\nt 1 300\nempty 0 0\n");
    let topic = data.topic("t");
    let partition_metadata =
        fs::read_to_string(topic.partitions[0].dir.join("partition.metadata")).unwrap();
    assert_eq!(
        partition_metadata,
        format!("version: 0\ntopic_id: {}\n", kafka_uuid_string(topic.id))
    );
}

#[test]
fn fixture_metadata_log_replays() {
    let data = small_fixture();
    let batches = read_log(
        &data
            .path()
            .join("__cluster_metadata-0/00000000000000000000.log"),
    );
    let mut next = 0;
    let mut records = Vec::new();
    for (i, batch) in batches.iter().enumerate() {
        assert_eq!(batch.base_offset(), next, "batch {i} base offset");
        assert_eq!(batch.header().partition_leader_epoch, 1);
        assert_eq!(batch.base_offset(), data.metadata_batches[i]);
        next = batch.next_offset();
        if i == 0 {
            assert!(batch.is_control());
            let record = batch.records().next().unwrap().unwrap();
            let key = ControlRecordKey::parse(record.key.as_deref().unwrap()).unwrap();
            assert_eq!(key.record_type, ControlRecordType::LeaderChange);
            continue;
        }
        assert!(!batch.is_control());
        for record in batch.records() {
            let record = record.unwrap();
            assert!(record.key.is_none());
            let mut value = record.value.unwrap();
            records.push(MetadataRecord::decode_framed(&mut value).expect("a framed record"));
        }
    }
    assert_eq!(*data.metadata_batches.last().unwrap(), next);
    let mut topics = 0;
    let mut partitions = 0;
    let mut configs = Vec::new();
    let mut level = None;
    let mut endpoint = None;
    for versioned in &records {
        match &versioned.record {
            MetadataRecord::FeatureLevel(f) if &*f.name == "metadata.version" => {
                level = Some(f.feature_level);
            }
            MetadataRecord::RegisterBroker(r) => {
                assert_eq!(versioned.version, 3);
                assert_eq!(r.broker_id, data.node_id);
                assert_eq!(r.log_dirs, vec![data.directory_id]);
                endpoint = Some((r.end_points[0].name.to_string(), r.end_points[0].port));
            }
            MetadataRecord::Topic(t) => {
                assert_eq!(t.topic_id, data.topic(&t.name).id);
                topics += 1;
            }
            MetadataRecord::Partition(p) => {
                assert_eq!((p.leader, &p.replicas, &p.isr), (1, &vec![1], &vec![1]));
                assert_eq!(p.directories, vec![data.directory_id]);
                partitions += 1;
            }
            MetadataRecord::Config(c) => {
                configs.push((c.resource_type, c.name.to_string()));
            }
            _ => {}
        }
    }
    assert_eq!(level, Some(support::METADATA_VERSION));
    assert_eq!(
        endpoint,
        Some(("PLAINTEXT".to_string(), data.ports.plaintext))
    );
    assert_eq!((topics, partitions), (2, 3));
    assert_eq!(
        configs,
        vec![
            (4, "log.retention.hours".to_string()),
            (2, "retention.ms".to_string())
        ]
    );
}

fn check_partition(partition: &WrittenPartition) {
    let mut files: Vec<String> = fs::read_dir(&partition.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".log"))
        .collect();
    files.sort();
    let expected: Vec<String> = partition
        .segments
        .iter()
        .map(|base| format!("{base:020}.log"))
        .collect();
    assert_eq!(files, expected);
    let mut read = Vec::new();
    let mut codecs = Vec::new();
    for (segment, base) in partition.segments.iter().enumerate() {
        let batches = read_log(&partition.dir.join(format!("{base:020}.log")));
        assert!(
            partition.records.is_empty() || !batches.is_empty(),
            "segment {segment} is empty"
        );
        if let Some(first) = batches.first() {
            assert_eq!(
                first.base_offset(),
                *base,
                "segment named after its first batch"
            );
        }
        for batch in batches {
            codecs.push((batch.base_offset(), batch.compression()));
            read.extend(batch.records().map(Result::unwrap));
        }
    }
    assert_eq!(codecs, partition.batches);
    assert_eq!(read.len(), partition.records.len());
    for (record, written) in read.iter().zip(&partition.records) {
        assert_eq!(record.offset, written.offset);
        assert_eq!(record.timestamp, written.timestamp);
        assert_eq!(record.key, written.key);
        assert_eq!(record.value, written.value);
        let headers: Vec<_> = record
            .headers
            .iter()
            .map(|h| (String::from_utf8(h.key.to_vec()).unwrap(), h.value.clone()))
            .collect();
        assert_eq!(headers, written.headers);
    }
}

#[test]
fn fixture_segments_hold_the_records() {
    let data = small_fixture();
    let topic = data.topic("t");
    for partition in &topic.partitions {
        assert!(partition.segments.len() >= 3, "{:?}", partition.segments);
        check_partition(partition);
    }
    let codecs: Vec<Compression> = topic.partitions[1].batches.iter().map(|b| b.1).collect();
    assert_eq!(&codecs[..2], &[Compression::Lz4, Compression::Zstd]);
    let empty = &data.topic("empty").partitions[0];
    assert_eq!(empty.segments, vec![0]);
    check_partition(empty);
    // Null keys and values, empty and null header values, and repeated header keys occur.
    let records = &topic.partitions[0].records;
    assert!(records.iter().any(|r| r.key.is_none()));
    assert!(records.iter().any(|r| r.value.is_none()));
    assert!(
        records
            .iter()
            .any(|r| r.headers.iter().any(|(_, v)| v.is_none()))
    );
    assert!(records.iter().any(|r| {
        r.headers
            .iter()
            .any(|(_, v)| v.as_deref() == Some(&b""[..]))
    }));
}

#[test]
fn server_properties_name_the_fixture() {
    let data = DataDir::builder().node_id(7).build();
    let text = server_properties(&data, &[("num.io.threads", "2"), ("extra.key", "x")]);
    let p = data.ports.plaintext;
    let c = data.ports.controller;
    for line in [
        "node.id=7".to_string(),
        "process.roles=broker,controller".to_string(),
        format!("listeners=PLAINTEXT://127.0.0.1:{p},CONTROLLER://127.0.0.1:{c}"),
        format!("advertised.listeners=PLAINTEXT://127.0.0.1:{p}"),
        format!("controller.quorum.voters=7@127.0.0.1:{c}"),
        "controller.listener.names=CONTROLLER".to_string(),
        format!("log.dirs={}", data.path().display()),
        "num.io.threads=2".to_string(),
        "extra.key=x".to_string(),
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} not in\n{text}");
    }
    assert_eq!(text.matches("num.io.threads").count(), 1);
}

// --- against the binary -------------------------------------------------------------------

fn api_versions_request() -> ApiVersionsRequest {
    ApiVersionsRequest {
        client_software_name: "gregor-tests".into(),
        client_software_version: "0.1.0".into(),
        ..Default::default()
    }
}

/// A Metadata request for every topic (null topics; an empty list asks for none).
fn all_topics() -> MetadataRequest {
    MetadataRequest {
        topics: None,
        ..Default::default()
    }
}

fn fetch_request(topic: &support::WrittenTopic, partition: i32, offset: i64) -> FetchRequest {
    FetchRequest {
        replica_id: -1,
        max_wait_ms: 0,
        min_bytes: 1,
        max_bytes: 50 << 20,
        topics: vec![FetchTopic {
            topic: topic.name.as_str().into(),
            topic_id: topic.id,
            partitions: vec![FetchPartition {
                partition,
                fetch_offset: offset,
                partition_max_bytes: 1 << 20,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn raw_client_reads_what_the_fixture_wrote() {
    let data = small_fixture();
    let broker = Broker::start(&data);
    let mut client = RawClient::connect(broker.addr()).unwrap();

    let versions = client.call(&api_versions_request(), 3).unwrap();
    assert_eq!(versions.error_code, 0);
    let served = |key: ApiKey| {
        versions
            .api_keys
            .iter()
            .find(|k| k.api_key == key.key())
            .map(|k| (k.min_version, k.max_version))
    };
    let (_, metadata_max) = served(ApiKey::Metadata).expect("Metadata served");
    let (_, fetch_max) = served(ApiKey::Fetch).expect("Fetch served");

    let metadata = client.call(&all_topics(), metadata_max.min(12)).unwrap();
    let mut names: Vec<String> = metadata
        .topics
        .iter()
        .map(|t| t.name.as_deref().unwrap_or("").to_string())
        .collect();
    names.sort();
    assert_eq!(names, vec!["empty".to_string(), "t".to_string()]);
    assert_eq!(metadata.brokers.len(), 1);
    assert_eq!(metadata.brokers[0].port, i32::from(data.ports.plaintext));

    // Every record of partition 1 (lz4 and zstd batches), fetching from where the last
    // response ended.
    let topic = data.topic("t");
    let version = fetch_max.min(16);
    let mut offset = 0;
    let mut read = Vec::new();
    while offset < topic.partitions[1].end_offset() {
        let response = client
            .call(&fetch_request(topic, 1, offset), version)
            .unwrap();
        assert_eq!(response.error_code, 0);
        let partition = &response.responses[0].partitions[0];
        assert_eq!(partition.error_code, 0);
        assert_eq!(partition.high_watermark, topic.partitions[1].end_offset());
        let records = partition.records.clone().unwrap_or_default();
        assert!(!records.is_empty(), "no records at offset {offset}");
        for batch in RecordBatches::new(records) {
            let Batch::V2(batch) = batch.unwrap() else {
                panic!("legacy batch")
            };
            batch.validate().unwrap();
            for record in batch.records() {
                let record = record.unwrap();
                if record.offset >= offset {
                    read.push(record);
                }
            }
        }
        offset = read.last().map_or(offset, |r| r.offset + 1);
    }
    assert_eq!(read.len(), topic.partitions[1].records.len());
    for (record, written) in read.iter().zip(&topic.partitions[1].records) {
        assert_eq!(
            (record.offset, &record.value),
            (written.offset, &written.value)
        );
    }

    // Pipelined: three requests in one write, three responses in order.
    client
        .send_all(&[
            (api_versions_request(), 3),
            (api_versions_request(), 0),
            (api_versions_request(), 2),
        ])
        .unwrap();
    for _ in 0..3 {
        let response = client.recv::<ApiVersionsRequest>().unwrap();
        assert_eq!(response.body.error_code, 0);
    }
    client.send(&all_topics(), 9).unwrap();
    client.send(&fetch_request(topic, 0, 0), version).unwrap();
    assert_eq!(
        client.recv::<MetadataRequest>().unwrap().body.topics.len(),
        2
    );
    let fetched = client.recv::<FetchRequest>().unwrap().body;
    assert!(fetched.responses[0].partitions[0].records.is_some());
}

#[test]
fn malformed_frames_close_only_their_connection() {
    let data = DataDir::builder().topic(TopicSpec::new("t", 1)).build();
    let mut broker = Broker::start(&data);
    // A negative size, then an unknown API key.
    for bytes in [
        vec![0xff, 0xff, 0xff, 0xf0, 1, 2, 3],
        vec![0, 0, 0, 10, 0x7f, 0x7f, 0, 0, 0, 0, 0, 1, 0xff, 0xff],
    ] {
        let mut bad = RawClient::connect(broker.addr()).unwrap();
        bad.send_raw(&bytes).unwrap();
        assert!(
            bad.is_closed_by_peer(Duration::from_secs(10)),
            "connection kept open after {bytes:?}"
        );
    }
    let mut good = RawClient::connect(broker.addr()).unwrap();
    assert_eq!(good.call(&api_versions_request(), 3).unwrap().error_code, 0);
    // Garbage never took the process down.
    assert!(broker.try_exit().is_none(), "{}", broker.log_text());
}

#[test]
fn sigterm_stops_the_broker_cleanly() {
    let data = DataDir::builder()
        .topic(TopicSpec::new("t", 1).records(10))
        .build();
    let mut broker = Broker::start(&data);
    let mut client = RawClient::connect(broker.addr()).unwrap();
    assert_eq!(
        client.call(&api_versions_request(), 3).unwrap().error_code,
        0
    );
    let status = broker.stop();
    assert!(
        status.success(),
        "exit status {status}\n{}",
        broker.log_text()
    );
    assert!(!broker.log_text().is_empty(), "the broker logged nothing");
    // And it starts again on the same directory.
    let mut again = Broker::start(&data);
    let mut client = RawClient::connect(again.addr()).unwrap();
    assert_eq!(
        client.call(&api_versions_request(), 3).unwrap().error_code,
        0
    );
    again.kill9();
}

#[test]
fn api_versions_v0_gets_a_v0_response_after_unknown_version() {
    // KIP-511: an ApiVersions version above the broker's range is answered at v0 with
    // UNSUPPORTED_VERSION and the broker's range for ApiVersions.
    let data = DataDir::builder().build();
    let broker = Broker::start(&data);
    let mut client = RawClient::connect(broker.addr()).unwrap();
    let mut frame = Vec::new();
    // Header v2 for ApiVersions v99: key 18, version 99, correlation 5, client id null, no tags.
    frame.extend_from_slice(&[0, 18, 0, 99, 0, 0, 0, 5, 0xff, 0xff, 0]);
    // Body (unknown version: what a v3 body would be) - empty strings and no tags.
    frame.extend_from_slice(&[1, 1, 0]);
    client.send_raw_frame(&frame).unwrap();
    let mut response = client.read_frame().unwrap();
    let header =
        gregor_protocol::frame::decode_response_header(&mut response, ApiKey::ApiVersions, 0)
            .unwrap();
    assert_eq!(header.correlation_id, 5);
    let body = gregor_protocol::messages::api_versions_response::ApiVersionsResponse::decode(
        &mut response,
        0,
    )
    .unwrap();
    assert_eq!(body.error_code, 35, "UNSUPPORTED_VERSION");
    assert!(body.api_keys.iter().any(|k| k.api_key == 18));
}
