//! Incremental fetch sessions (KIP-227) over the wire: a full request (epoch 0) creates a
//! session; incremental requests carry only what changed and get only the partitions that
//! changed; forgotten partitions leave the session; wrong epochs, unknown ids and names
//! mixed with ids are session errors; epoch -1 closes. At v12 (by name) and v13/v18 (by
//! topic id). Compared with Kafka's FetchManager.newContext and IncrementalFetchContext.

use bytes::Bytes;
use gregor_protocol::Uuid;
use gregor_protocol::error_code;
use gregor_protocol::messages::fetch_request::{FetchRequest, FetchTopic, ForgottenTopic};
use gregor_protocol::messages::fetch_response::{FetchResponse, PartitionData};
use gregor_protocol::messages::produce_request::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use gregor_protocol::records::{NewRecord, RecordBatchBuilder};

use crate::support::{Broker, DataDir, RawClient, TopicSpec, WrittenTopic, random_uuid};
use crate::{connect, fetch_partition, fetch_request, fetch_topic};

/// Topic `s`: partitions 0 and 1 with 20 records each, partition 2 empty.
fn fixture() -> DataDir {
    DataDir::builder()
        .topic(
            TopicSpec::new("s", 3)
                .partition_records(0, 20)
                .partition_records(1, 20)
                .partition_records(2, 0)
                .batch_records(5),
        )
        .build()
}

/// A request for `partitions` (index, fetch offset) of `topic` with the session fields.
fn request(
    topic: &WrittenTopic,
    partitions: &[(i32, i64)],
    session_id: i32,
    session_epoch: i32,
) -> FetchRequest {
    let topics = if partitions.is_empty() {
        Vec::new()
    } else {
        vec![fetch_topic(
            topic,
            partitions
                .iter()
                .map(|&(p, offset)| fetch_partition(p, offset, 1 << 20))
                .collect(),
        )]
    };
    FetchRequest {
        session_id,
        session_epoch,
        ..fetch_request(topics)
    }
}

/// `request` with `partitions` of `topic` forgotten.
fn forgetting(
    mut request: FetchRequest,
    topic: &WrittenTopic,
    partitions: Vec<i32>,
) -> FetchRequest {
    request.forgotten_topics_data = vec![ForgottenTopic {
        topic: topic.name.as_str().into(),
        topic_id: topic.id,
        partitions,
        ..Default::default()
    }];
    request
}

fn call(client: &mut RawClient, request: &FetchRequest, version: i16) -> FetchResponse {
    client
        .call(request, version)
        .unwrap_or_else(|e| panic!("Fetch v{version}: {e}"))
}

/// The partitions of `response` as (index, error, high watermark, record bytes), checking
/// that topics are named as `version` names them.
fn partitions(
    response: &FetchResponse,
    version: i16,
    topic: &WrittenTopic,
) -> Vec<(i32, i16, i64, usize)> {
    let mut found = Vec::new();
    for t in &response.responses {
        if version >= 13 {
            assert_eq!((&*t.topic, t.topic_id), ("", topic.id), "v{version}");
        } else {
            assert_eq!(
                (&*t.topic, t.topic_id),
                (topic.name.as_str(), Uuid::nil()),
                "v{version}"
            );
        }
        for p in &t.partitions {
            found.push((
                p.partition_index,
                p.error_code,
                p.high_watermark,
                records_len(p),
            ));
        }
    }
    found
}

fn records_len(p: &PartitionData) -> usize {
    p.records.as_ref().expect("records are never null").len()
}

fn produce(client: &mut RawClient, topic: &str, partition: i32, count: usize) -> i64 {
    let records: Vec<NewRecord> = (0..count)
        .map(|i| {
            NewRecord::new(
                1_735_689_600_000 + i as i64,
                Some(Bytes::from(format!("k{i}"))),
                Some(Bytes::from(format!("v{i}"))),
            )
        })
        .collect();
    let request = ProduceRequest {
        transactional_id: None,
        acks: -1,
        timeout_ms: 30_000,
        topic_data: vec![TopicProduceData {
            name: topic.into(),
            partition_data: vec![PartitionProduceData {
                index: partition,
                records: Some(RecordBatchBuilder::new().build(&records).expect("batch")),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let response = client.call(&request, 9).expect("Produce");
    let p = &response.responses[0].partition_responses[0];
    assert_eq!(
        p.error_code,
        error_code::NONE,
        "produce to {topic}-{partition}"
    );
    p.base_offset
}

#[test]
fn a_session_serves_only_what_changed_at_v12_v13_and_v18() {
    let data = fixture();
    let broker = Broker::start(&data);
    let mut client = connect(&broker);
    let topic = data.topic("s");
    let mut end = [20_i64, 20, 0];
    for &version in &[12, 13, 18] {
        // Full request, epoch 0: the whole response, and a session.
        let all = [(0, end[0] - 20), (1, end[1] - 20), (2, end[2])];
        let response = call(&mut client, &request(topic, &all, 0, 0), version);
        assert_eq!(response.error_code, error_code::NONE, "v{version}");
        let id = response.session_id;
        assert_ne!(id, 0, "v{version}: a session is created");
        let got = partitions(&response, version, topic);
        assert_eq!(
            got.iter().map(|p| (p.0, p.1, p.2)).collect::<Vec<_>>(),
            vec![(0, 0, end[0]), (1, 0, end[1]), (2, 0, end[2])],
            "v{version}"
        );
        assert!(
            got[0].3 > 0 && got[1].3 > 0 && got[2].3 == 0,
            "v{version}: {got:?}"
        );

        // Epoch 1: the client moves its offsets on; nothing changed, nothing returned.
        let moved = request(topic, &[(0, end[0]), (1, end[1])], id, 1);
        let response = call(&mut client, &moved, version);
        assert_eq!(
            (response.error_code, response.session_id),
            (0, id),
            "v{version}"
        );
        assert!(
            response.responses.is_empty(),
            "v{version}: {:?}",
            response.responses
        );
        // Epoch 2: nothing named, nothing changed.
        let response = call(&mut client, &request(topic, &[], id, 2), version);
        assert_eq!(
            (response.error_code, response.session_id),
            (0, id),
            "v{version}"
        );
        assert!(
            response.responses.is_empty(),
            "v{version}: {:?}",
            response.responses
        );

        // A produce to partition 2: it alone comes back, with its records.
        assert_eq!(produce(&mut client, "s", 2, 3), end[2]);
        end[2] += 3;
        let response = call(&mut client, &request(topic, &[], id, 3), version);
        let got = partitions(&response, version, topic);
        assert_eq!(got.len(), 1, "v{version}: {got:?}");
        assert_eq!((got[0].0, got[0].1, got[0].2), (2, 0, end[2]), "v{version}");
        assert!(got[0].3 > 0, "v{version}: records of partition 2");

        // Epoch 4: forget partition 0, move 2 on; a produce to 0 is not reported.
        let forget = forgetting(request(topic, &[(2, end[2])], id, 4), topic, vec![0]);
        let response = call(&mut client, &forget, version);
        assert!(
            response.responses.is_empty(),
            "v{version}: {:?}",
            response.responses
        );
        produce(&mut client, "s", 0, 2);
        end[0] += 2;
        produce(&mut client, "s", 1, 2);
        end[1] += 2;
        let response = call(&mut client, &request(topic, &[], id, 5), version);
        let got = partitions(&response, version, topic);
        assert_eq!(
            got.iter().map(|p| (p.0, p.2)).collect::<Vec<_>>(),
            vec![(1, end[1])],
            "v{version}: partition 0 was forgotten"
        );

        // Session errors answer with no partitions and session id 0.
        let stale = call(&mut client, &request(topic, &[], id, 5), version);
        assert_eq!(
            (stale.error_code, stale.session_id, stale.responses.len()),
            (error_code::INVALID_FETCH_SESSION_EPOCH, 0, 0),
            "v{version}: epoch 5 again"
        );
        let unknown = call(&mut client, &request(topic, &[], id ^ 0x10, 1), version);
        assert_eq!(
            (unknown.error_code, unknown.responses.len()),
            (error_code::FETCH_SESSION_ID_NOT_FOUND, 0),
            "v{version}: unknown session"
        );
        // A session made by names cannot go on by ids, and the other way round.
        let other = if version >= 13 { 12 } else { 13 };
        let mixed = call(&mut client, &request(topic, &[], id, 6), other);
        assert_eq!(
            (mixed.error_code, mixed.responses.len()),
            (error_code::FETCH_SESSION_TOPIC_ID_ERROR, 0),
            "v{version} session continued at v{other}"
        );
        // The session is still there at its epoch.
        let response = call(&mut client, &request(topic, &[(1, end[1])], id, 6), version);
        assert_eq!(
            (response.error_code, response.session_id),
            (0, id),
            "v{version}"
        );

        // Epoch -1 closes it and is served sessionless.
        let last = request(topic, &[(0, end[0] - 2)], id, -1);
        let response = call(&mut client, &last, version);
        assert_eq!(
            (response.error_code, response.session_id),
            (0, 0),
            "v{version}"
        );
        let got = partitions(&response, version, topic);
        assert_eq!(
            (got.len(), got[0].0, got[0].2),
            (1, 0, end[0]),
            "v{version}"
        );
        let closed = call(&mut client, &request(topic, &[], id, 7), version);
        assert_eq!(
            closed.error_code,
            error_code::FETCH_SESSION_ID_NOT_FOUND,
            "v{version}: closed by epoch -1"
        );
    }
}

#[test]
fn an_unknown_topic_id_stays_in_the_session_and_is_reported_every_time() {
    let data = fixture();
    let broker = Broker::start(&data);
    let mut client = connect(&broker);
    let topic = data.topic("s");
    let missing = random_uuid();
    let mut full = request(topic, &[(2, 0)], 0, 0);
    full.topics.push(FetchTopic {
        topic_id: missing,
        partitions: vec![fetch_partition(0, 0, 1024)],
        ..Default::default()
    });
    let response = call(&mut client, &full, 13);
    let id = response.session_id;
    assert_ne!(id, 0);
    let errors: Vec<(Uuid, i16)> = response
        .responses
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.topic_id, p.error_code)))
        .collect();
    assert_eq!(
        errors,
        vec![(topic.id, 0), (missing, error_code::UNKNOWN_TOPIC_ID)]
    );
    for epoch in 1..=3 {
        let response = call(&mut client, &request(topic, &[], id, epoch), 13);
        assert_eq!(response.error_code, 0);
        let errors: Vec<(Uuid, i16)> = response
            .responses
            .iter()
            .flat_map(|t| t.partitions.iter().map(move |p| (t.topic_id, p.error_code)))
            .collect();
        assert_eq!(
            errors,
            vec![(missing, error_code::UNKNOWN_TOPIC_ID)],
            "epoch {epoch}: errors are always sent, unchanged partitions never"
        );
    }
}

#[test]
fn forgetting_every_partition_closes_the_session() {
    let data = fixture();
    let broker = Broker::start(&data);
    let mut client = connect(&broker);
    let topic = data.topic("s");
    let response = call(&mut client, &request(topic, &[(0, 0)], 0, 0), 12);
    let id = response.session_id;
    assert_ne!(id, 0);
    let forget = forgetting(request(topic, &[], id, 1), topic, vec![0]);
    let response = call(&mut client, &forget, 12);
    assert_eq!((response.error_code, response.session_id), (0, 0));
    assert!(response.responses.is_empty());
    let gone = call(&mut client, &request(topic, &[], id, 2), 12);
    assert_eq!(gone.error_code, error_code::FETCH_SESSION_ID_NOT_FOUND);
}

#[test]
fn no_sessions_when_the_cache_has_no_slots() {
    let data = fixture();
    let broker = Broker::start_with(&data, &[("max.incremental.fetch.session.cache.slots", "0")]);
    let mut client = connect(&broker);
    let topic = data.topic("s");
    let response = call(&mut client, &request(topic, &[(0, 0)], 0, 0), 12);
    assert_eq!((response.error_code, response.session_id), (0, 0));
    assert_eq!(partitions(&response, 12, topic).len(), 1);
}
