//! Differential test against the `kafka-protocol` crate (an independent implementation,
//! generated from Kafka 4.1.0's definitions where ours come from 4.3.1).
//!
//! For every message both libraries define and every version both support: random values
//! from our strategies are encoded by us, decoded by kafka-protocol and re-encoded by it, and
//! the bytes must be identical to ours; then kafka-protocol's bytes are decoded by us and must
//! equal the original value. Both libraries keep unknown tagged fields (ours as a sorted
//! `Vec<RawTaggedField>`, theirs as a `BTreeMap`), so values with unknown tagged fields are
//! compared byte for byte as well.
//!
//! Where the two sets of definitions really differ for a version, that (message, version) is
//! listed in [`EXCLUDED`] with what differs (none do today: every version both sides have
//! matches); the test fails if an exclusion names a version that is not compared at all, so
//! the list cannot go stale silently. Where kafka-protocol cannot take some values, a pair
//! has a `where` function constraining them, with the reason beside it, and the summary
//! says so. `PROPTEST_CASES` sets the number of values per version (default 48).

use bytes::{Bytes, BytesMut};
use gregor_protocol::arbitrary::VersionedStrategy;
use gregor_protocol::messages as ours;
use gregor_protocol::{Message, VersionRange};
use kafka_protocol::messages as theirs;
use kafka_protocol::protocol::{
    Decodable as TheirDecodable, Encodable as TheirEncodable, Message as TheirMessage,
};
use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// (message, version, what differs between Kafka 4.3.1's definition and kafka-protocol's).
const EXCLUDED: &[(&str, i16, &str)] = &[];

/// What one message contributed to the run.
#[derive(Default)]
struct Report {
    lines: Vec<String>,
    failures: Vec<String>,
    messages: usize,
    versions: usize,
    excluded_used: Vec<(&'static str, i16)>,
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48)
}

fn fmt_range(r: VersionRange) -> String {
    if r.is_empty() {
        "none".into()
    } else if r.min == r.max {
        format!("v{}", r.min)
    } else {
        format!("v{}-{}", r.min, r.max)
    }
}

/// The first offset where `a` and `b` differ, with a little context from each.
fn first_difference(a: &[u8], b: &[u8]) -> String {
    let at = a
        .iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let start = at.saturating_sub(8);
    format!(
        "lengths {} vs {}, first difference at byte {at}: ours[{start}..] = {}, theirs[{start}..] = {}",
        a.len(),
        b.len(),
        hex::encode(&a[start.min(a.len())..(at + 16).min(a.len())]),
        hex::encode(&b[start.min(b.len())..(at + 16).min(b.len())]),
    )
}

/// One value at one version: ours -> bytes -> theirs -> bytes (identical) -> ours (equal).
fn one_value<O, T>(value: &O, version: i16) -> Result<(), TestCaseError>
where
    O: Message,
    T: TheirEncodable + TheirDecodable + std::fmt::Debug,
{
    let mut buf = BytesMut::new();
    value
        .encode(&mut buf, version)
        .map_err(|e| TestCaseError::fail(format!("our encode: {e}")))?;
    let ours_bytes = buf.freeze();

    let mut input: Bytes = ours_bytes.clone();
    let theirs_value = T::decode(&mut input, version).map_err(|e| {
        TestCaseError::fail(format!(
            "kafka-protocol cannot decode our bytes: {e:#}\nours: {}",
            hex::encode(&ours_bytes)
        ))
    })?;
    if !input.is_empty() {
        return Err(TestCaseError::fail(format!(
            "kafka-protocol left {} of our {} bytes unread\nours: {}\ntheirs decoded: {theirs_value:?}",
            input.len(),
            ours_bytes.len(),
            hex::encode(&ours_bytes)
        )));
    }

    let mut out = BytesMut::new();
    theirs_value.encode(&mut out, version).map_err(|e| {
        TestCaseError::fail(format!(
            "kafka-protocol cannot re-encode {theirs_value:?}: {e:#}"
        ))
    })?;
    let theirs_bytes = out.freeze();
    if theirs_bytes != ours_bytes {
        return Err(TestCaseError::fail(format!(
            "bytes differ: {}\nours:   {}\ntheirs: {}\ntheirs decoded: {theirs_value:?}",
            first_difference(&ours_bytes, &theirs_bytes),
            hex::encode(&ours_bytes),
            hex::encode(&theirs_bytes)
        )));
    }
    match theirs_value.compute_size(version) {
        Ok(n) if n == theirs_bytes.len() => {}
        other => {
            return Err(TestCaseError::fail(format!(
                "kafka-protocol's compute_size is {other:?}, it wrote {}",
                theirs_bytes.len()
            )));
        }
    }

    let mut input = theirs_bytes.clone();
    let back = O::decode(&mut input, version).map_err(|e| {
        TestCaseError::fail(format!("we cannot decode kafka-protocol's bytes: {e}"))
    })?;
    proptest::prop_assert!(input.is_empty(), "we left {} bytes unread", input.len());
    proptest::prop_assert_eq!(&back, value);
    Ok(())
}

/// Every version both sides support, minus the exclusions; `adjust` constrains generated
/// values where kafka-protocol cannot take some of them (see its uses).
fn check<O, T>(report: &mut Report, adjust: Option<fn(&mut O, i16)>)
where
    O: Message + VersionedStrategy,
    T: TheirMessage + TheirEncodable + TheirDecodable + std::fmt::Debug,
{
    let theirs_range = VersionRange {
        min: T::VERSIONS.min,
        max: T::VERSIONS.max,
    };
    let both = O::VALID_VERSIONS.intersect(theirs_range);
    report.messages += 1;
    let mut excluded = Vec::new();
    for version in both.iter() {
        if let Some(&(name, v, _)) = EXCLUDED
            .iter()
            .find(|(n, v, _)| *n == O::NAME && *v == version)
        {
            report.excluded_used.push((name, v));
            excluded.push(version);
            continue;
        }
        report.versions += 1;
        let mut runner = TestRunner::new(Config {
            cases: cases(),
            failure_persistence: None,
            ..Config::default()
        });
        let strategy = O::strategy(version).prop_map(move |mut value| {
            if let Some(adjust) = adjust {
                adjust(&mut value, version);
            }
            value
        });
        let result = runner.run(&strategy, |value| one_value::<O, T>(&value, version));
        if let Err(err) = result {
            report
                .failures
                .push(format!("{} v{version}: {err}", O::NAME));
        }
    }
    let mut line = format!(
        "{:<34} ours {:<8} kafka-protocol {:<8} compared {}",
        O::NAME,
        fmt_range(O::VALID_VERSIONS),
        fmt_range(theirs_range),
        fmt_range(both)
    );
    if !excluded.is_empty() {
        line += &format!(" except {excluded:?}");
    }
    if adjust.is_some() {
        line += " (values constrained, see its `where` function)";
    }
    report.lines.push(line);
}

/// `ours => theirs` pairs, each optionally followed by `where adjust_fn`.
macro_rules! differential {
    ($($ours:ty => $theirs:ty $(where $adjust:expr)?),* $(,)?) => {{
        let mut report = Report::default();
        $( check::<$ours, $theirs>(&mut report, differential!(@adjust $($adjust)?)); )*
        report
    }};
    (@adjust) => { None };
    (@adjust $adjust:expr) => { Some($adjust) };
}

// LeaderChangeMessage and VotersRecord have a data field named `version`; kafka-protocol
// 0.18's generated `decode` binds it with `let version = ...`, shadowing the schema version
// argument, and then decodes the nested arrays (and checks the version) with the field's
// value instead: any value whose `version` field differs from the schema version fails to
// decode ("specified version not supported") or decodes nested structs at the wrong version.
// That is a kafka-protocol bug; real records carry their own schema version there, so these
// values are generated with `version` == the schema version.
fn version_field_is_schema_version_lcm(
    value: &mut ours::leader_change_message::LeaderChangeMessage,
    version: i16,
) {
    value.version = version;
}
fn version_field_is_schema_version_voters(
    value: &mut ours::voters_record::VotersRecord,
    version: i16,
) {
    value.version = version;
}

#[test]
fn identical_bytes_to_kafka_protocol() {
    let report = differential!(
        ours::request_header::RequestHeader => theirs::RequestHeader,
        ours::response_header::ResponseHeader => theirs::ResponseHeader,
        ours::api_versions_request::ApiVersionsRequest => theirs::ApiVersionsRequest,
        ours::api_versions_response::ApiVersionsResponse => theirs::ApiVersionsResponse,
        ours::metadata_request::MetadataRequest => theirs::MetadataRequest,
        ours::metadata_response::MetadataResponse => theirs::MetadataResponse,
        ours::describe_topic_partitions_request::DescribeTopicPartitionsRequest => theirs::DescribeTopicPartitionsRequest,
        ours::describe_topic_partitions_response::DescribeTopicPartitionsResponse => theirs::DescribeTopicPartitionsResponse,
        ours::fetch_request::FetchRequest => theirs::FetchRequest,
        ours::fetch_response::FetchResponse => theirs::FetchResponse,
        ours::produce_request::ProduceRequest => theirs::ProduceRequest,
        ours::produce_response::ProduceResponse => theirs::ProduceResponse,
        ours::list_offsets_request::ListOffsetsRequest => theirs::ListOffsetsRequest,
        ours::list_offsets_response::ListOffsetsResponse => theirs::ListOffsetsResponse,
        ours::create_topics_request::CreateTopicsRequest => theirs::CreateTopicsRequest,
        ours::create_topics_response::CreateTopicsResponse => theirs::CreateTopicsResponse,
        ours::delete_topics_request::DeleteTopicsRequest => theirs::DeleteTopicsRequest,
        ours::delete_topics_response::DeleteTopicsResponse => theirs::DeleteTopicsResponse,
        ours::create_partitions_request::CreatePartitionsRequest => theirs::CreatePartitionsRequest,
        ours::create_partitions_response::CreatePartitionsResponse => theirs::CreatePartitionsResponse,
        ours::delete_records_request::DeleteRecordsRequest => theirs::DeleteRecordsRequest,
        ours::delete_records_response::DeleteRecordsResponse => theirs::DeleteRecordsResponse,
        ours::init_producer_id_request::InitProducerIdRequest => theirs::InitProducerIdRequest,
        ours::init_producer_id_response::InitProducerIdResponse => theirs::InitProducerIdResponse,
        ours::find_coordinator_request::FindCoordinatorRequest => theirs::FindCoordinatorRequest,
        ours::find_coordinator_response::FindCoordinatorResponse => theirs::FindCoordinatorResponse,
        ours::join_group_request::JoinGroupRequest => theirs::JoinGroupRequest,
        ours::join_group_response::JoinGroupResponse => theirs::JoinGroupResponse,
        ours::sync_group_request::SyncGroupRequest => theirs::SyncGroupRequest,
        ours::sync_group_response::SyncGroupResponse => theirs::SyncGroupResponse,
        ours::heartbeat_request::HeartbeatRequest => theirs::HeartbeatRequest,
        ours::heartbeat_response::HeartbeatResponse => theirs::HeartbeatResponse,
        ours::leave_group_request::LeaveGroupRequest => theirs::LeaveGroupRequest,
        ours::leave_group_response::LeaveGroupResponse => theirs::LeaveGroupResponse,
        ours::offset_commit_request::OffsetCommitRequest => theirs::OffsetCommitRequest,
        ours::offset_commit_response::OffsetCommitResponse => theirs::OffsetCommitResponse,
        ours::offset_fetch_request::OffsetFetchRequest => theirs::OffsetFetchRequest,
        ours::offset_fetch_response::OffsetFetchResponse => theirs::OffsetFetchResponse,
        ours::list_groups_request::ListGroupsRequest => theirs::ListGroupsRequest,
        ours::list_groups_response::ListGroupsResponse => theirs::ListGroupsResponse,
        ours::describe_groups_request::DescribeGroupsRequest => theirs::DescribeGroupsRequest,
        ours::describe_groups_response::DescribeGroupsResponse => theirs::DescribeGroupsResponse,
        ours::delete_groups_request::DeleteGroupsRequest => theirs::DeleteGroupsRequest,
        ours::delete_groups_response::DeleteGroupsResponse => theirs::DeleteGroupsResponse,
        ours::offset_for_leader_epoch_request::OffsetForLeaderEpochRequest => theirs::OffsetForLeaderEpochRequest,
        ours::offset_for_leader_epoch_response::OffsetForLeaderEpochResponse => theirs::OffsetForLeaderEpochResponse,
        ours::describe_configs_request::DescribeConfigsRequest => theirs::DescribeConfigsRequest,
        ours::describe_configs_response::DescribeConfigsResponse => theirs::DescribeConfigsResponse,
        ours::incremental_alter_configs_request::IncrementalAlterConfigsRequest => theirs::IncrementalAlterConfigsRequest,
        ours::incremental_alter_configs_response::IncrementalAlterConfigsResponse => theirs::IncrementalAlterConfigsResponse,
        ours::describe_cluster_request::DescribeClusterRequest => theirs::DescribeClusterRequest,
        ours::describe_cluster_response::DescribeClusterResponse => theirs::DescribeClusterResponse,
        ours::sasl_handshake_request::SaslHandshakeRequest => theirs::SaslHandshakeRequest,
        ours::sasl_handshake_response::SaslHandshakeResponse => theirs::SaslHandshakeResponse,
        ours::sasl_authenticate_request::SaslAuthenticateRequest => theirs::SaslAuthenticateRequest,
        ours::sasl_authenticate_response::SaslAuthenticateResponse => theirs::SaslAuthenticateResponse,
        // Data structures carried inside other messages and KRaft control records.
        ours::consumer_protocol_assignment::ConsumerProtocolAssignment => theirs::ConsumerProtocolAssignment,
        ours::consumer_protocol_subscription::ConsumerProtocolSubscription => theirs::ConsumerProtocolSubscription,
        ours::end_txn_marker::EndTxnMarker => theirs::EndTxnMarker,
        ours::leader_change_message::LeaderChangeMessage => theirs::LeaderChangeMessage
            where version_field_is_schema_version_lcm,
        ours::snapshot_header_record::SnapshotHeaderRecord => theirs::SnapshotHeaderRecord,
        ours::snapshot_footer_record::SnapshotFooterRecord => theirs::SnapshotFooterRecord,
        ours::kraft_version_record::KRaftVersionRecord => theirs::KRaftVersionRecord,
        ours::voters_record::VotersRecord => theirs::VotersRecord
            where version_field_is_schema_version_voters,
    );

    println!(
        "differential test against kafka-protocol ({} values per version):",
        cases()
    );
    for line in &report.lines {
        println!("  {line}");
    }
    println!(
        "{} messages, {} message versions compared, {} excluded",
        report.messages,
        report.versions,
        report.excluded_used.len()
    );
    for (name, version, why) in EXCLUDED {
        println!("  excluded {name} v{version}: {why}");
    }
    let stale: Vec<_> = EXCLUDED
        .iter()
        .filter(|(n, v, _)| !report.excluded_used.contains(&(*n, *v)))
        .map(|(n, v, _)| format!("{n} v{v}"))
        .collect();
    assert!(
        stale.is_empty(),
        "exclusions that match no compared version: {stale:?}"
    );
    assert!(
        report.failures.is_empty(),
        "{} failures:\n{}",
        report.failures.len(),
        report.failures.join("\n\n")
    );
}
