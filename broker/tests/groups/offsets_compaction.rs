//! `__consumer_offsets` stays bounded: many offset commits of a few groups are compacted by
//! the log cleaner (only the latest offset of each group and partition survives), and a
//! restart replays what is left and returns every group's latest offsets.
//!
//! CI runs a short form (100,000 commits); the long form of issue 10 is
//! `GREGOR_OFFSET_COMMITS=1000000 cargo test -p gregor-broker --test groups -- offsets_compaction --nocapture`.

use std::path::Path;
use std::time::{Duration, Instant};

use gregor_protocol::messages::offset_commit_request::OffsetCommitRequest;
use gregor_protocol::messages::offset_commit_response::OffsetCommitResponse;

use crate::wire::*;

/// Groups committing.
const GROUPS: usize = 10;
/// Commits in flight on the connection at once.
const WINDOW: usize = 256;
/// Segment size of `__consumer_offsets` (Kafka's smallest allowed `segment.bytes`).
const SEGMENT_BYTES: &str = "1048576";
/// What the compacted offsets topic may take on disk: the active segment of each partition
/// and what the cleaner has not reached yet (at most a dirty ratio's worth).
const BOUND_BYTES: u64 = 4 * 1024 * 1024;

/// Commits to make (`GREGOR_OFFSET_COMMITS`, default 100,000).
fn commits() -> usize {
    std::env::var("GREGOR_OFFSET_COMMITS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

/// Bytes of every file in the `__consumer_offsets-*` directories of `log_dir`.
fn offsets_topic_bytes(log_dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(log_dir)
        .expect("read the log dir")
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(&format!("{OFFSETS_TOPIC}-")) {
            continue;
        }
        for file in std::fs::read_dir(entry.path())
            .expect("read a partition dir")
            .flatten()
        {
            total += file.metadata().map_or(0, |m| m.len());
        }
    }
    total
}

/// The offset group `g` commits for `partition` in round `round`.
fn offset_of(round: usize, g: usize, partition: i32) -> i64 {
    (round * 1000 + g * 10) as i64 + i64::from(partition)
}

#[test]
fn offsets_topic_is_compacted_and_replays_the_latest_offsets() {
    let total = commits();
    let data = fixture();
    let props = [
        ("offsets.topic.segment.bytes", SEGMENT_BYTES),
        ("offsets.topic.num.partitions", "1"),
        ("log.cleaner.backoff.ms", "100"),
    ];
    let mut broker = start(&data, &props);
    let mut client = connect(&broker);
    let id = topic_id(&mut client, TOPIC);

    // Round-robin over groups and partitions: commit `i` sets one offset.
    let request_of = |i: usize| -> OffsetCommitRequest {
        let g = i % GROUPS;
        let partition = ((i / GROUPS) % PARTITIONS as usize) as i32;
        let round = i / (GROUPS * PARTITIONS as usize);
        commit_request(
            9,
            &format!("compacted-{g}"),
            -1,
            "",
            TOPIC,
            id,
            &[(partition, offset_of(round, g, partition), -1, Some("m"))],
        )
    };
    let started = Instant::now();
    let mut sent = 0;
    while sent < total {
        let n = WINDOW.min(total - sent);
        let requests: Vec<(OffsetCommitRequest, i16)> =
            (sent..sent + n).map(|i| (request_of(i), 9)).collect();
        client.send_all(&requests).expect("send commits");
        for _ in 0..n {
            let response = client
                .recv::<OffsetCommitRequest>()
                .expect("commit response");
            let body: &OffsetCommitResponse = &response.body;
            let code = body.topics[0].partitions[0].error_code;
            assert_eq!(code, error::NONE, "commit answered {code}");
        }
        sent += n;
    }
    eprintln!(
        "{total} offset commits in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // The last value each (group, partition) got.
    let mut latest = vec![[0i64; PARTITIONS as usize]; GROUPS];
    for i in total.saturating_sub(GROUPS * PARTITIONS as usize)..total {
        let g = i % GROUPS;
        let partition = (i / GROUPS) % PARTITIONS as usize;
        let round = i / (GROUPS * PARTITIONS as usize);
        latest[g][partition] = offset_of(round, g, partition as i32);
    }

    let log_dir = data.path();
    let after_commits = offsets_topic_bytes(log_dir);
    wait_until(
        Duration::from_secs(300),
        "the cleaner to compact __consumer_offsets",
        || offsets_topic_bytes(log_dir) <= BOUND_BYTES,
    );
    eprintln!(
        "__consumer_offsets: {} bytes on disk after compaction ({after_commits} when the commits ended)",
        offsets_topic_bytes(log_dir)
    );

    broker.stop();
    let restarted_at = Instant::now();
    let broker = start(&data, &props);
    eprintln!(
        "restart until ready: {:.2} s",
        restarted_at.elapsed().as_secs_f64()
    );
    let mut client = connect(&broker);
    for (g, offsets) in latest.iter().enumerate() {
        let group = format!("compacted-{g}");
        let (group_error, topics) = fetch(&mut client, 8, &group, None);
        assert_eq!(group_error, error::NONE, "{group}");
        assert_eq!(topics.len(), 1, "{group}: {topics:?}");
        let got: Vec<i64> = topics[0].1.iter().map(|p| p.offset).collect();
        assert_eq!(got, offsets.to_vec(), "{group}");
    }
}
