//! Log compaction end to end: the `gregor` binary's log cleaner on a topic with
//! `cleanup.policy=compact`, written and read by confluent-kafka and kcat.

mod support;

use support::{Broker, DataDir, TopicSpec, kcat, python};

#[test]
fn confluent_and_kcat_read_a_compacted_topic() {
    let data = DataDir::builder()
        .topic(
            TopicSpec::new("latest", 1)
                .config("cleanup.policy", "compact")
                .config("segment.ms", "100")
                .config("segment.bytes", "2000")
                .config("min.cleanable.dirty.ratio", "0.01"),
        )
        .build();
    let broker = Broker::start_with(&data, &[("log.cleaner.backoff.ms", "100")]);
    let bootstrap = broker.bootstrap();
    let Some(out) = python(
        "compacted_confluent.py",
        &[
            "--bootstrap",
            &bootstrap,
            "--topic",
            "latest",
            "--keys",
            "10",
            "--rounds",
            "6",
            "--timeout",
            "90",
        ],
    ) else {
        return;
    };
    out.assert_success();
    let text = out.stdout.clone();
    // A record without a key is refused as Kafka's LogValidator refuses it.
    assert!(
        text.contains("\"null_key_code\":87") || text.contains("\"null_key_code\": 87"),
        "{text}"
    );
    // Every key once, with its last value, at the offset it was written at (`first` at 0,
    // then round 5 of 10 keys: offsets 51..=60).
    for k in 0..10 {
        let row = format!("[{}, \"key-{k}\", \"v5-{k}\"]", 51 + k);
        let compact = row.replace(", ", ",");
        assert!(
            text.contains(&row) || text.contains(&compact),
            "no {row} in {text}"
        );
    }
    assert!(
        broker.log_text().contains("cleaned a log"),
        "{}",
        broker.log_text()
    );

    // kcat reads the compacted log, offset gaps and all.
    let Some(out) = kcat(&[
        "-C",
        "-b",
        &bootstrap,
        "-t",
        "latest",
        "-p",
        "0",
        "-o",
        "beginning",
        "-e",
        "-q",
        "-f",
        "%o %k %s\\n",
    ]) else {
        return;
    };
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    let offsets: Vec<i64> = lines
        .iter()
        .map(|l| l.split(' ').next().unwrap().parse().unwrap())
        .collect();
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{lines:?}");
    // A gap: offsets 1..=50 were compacted away.
    assert_eq!(lines[0], "0 first first", "{lines:?}");
    assert_eq!(offsets[1], 51, "{lines:?}");
    for k in 0..10 {
        assert!(
            lines.contains(&format!("{} key-{k} v5-{k}", 51 + k).as_str()),
            "{lines:?}"
        );
    }
}
