//! Consumer groups with `gregorctl` against the real `gregor` broker: `consume --group`
//! joins as a classic consumer, commits on exit and resumes there; `groups list` and
//! `groups describe` show the group, its committed offsets and lag.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Broker, Run};

/// The classic group APIs gregorctl uses.
const GROUP_APIS: [&str; 8] = [
    "FindCoordinator",
    "JoinGroup",
    "SyncGroup",
    "Heartbeat",
    "LeaveGroup",
    "OffsetCommit",
    "OffsetFetch",
    "DescribeGroups",
];

/// `(committed, lag)` summed over the partitions of `groups describe --json`.
fn committed_and_lag(described: &Value) -> (i64, i64) {
    let offsets = described["offsets"]
        .as_array()
        .unwrap_or_else(|| panic!("no offsets: {described}"));
    (
        offsets
            .iter()
            .map(|o| o["committed_offset"].as_i64().unwrap())
            .sum(),
        offsets.iter().map(|o| o["lag"].as_i64().unwrap()).sum(),
    )
}

fn values(run: &Run) -> Vec<String> {
    run.ok().lines().map(str::to_string).collect()
}

#[test]
fn consume_with_a_group_commits_and_resumes() {
    let broker = Broker::start_empty();
    for api in GROUP_APIS {
        assert!(broker.supports(api), "the broker does not serve {api}");
    }
    broker.create_topic("g", 2, &[]);
    let input: String = (0..20).map(|i| format!("v{i}\n")).collect();
    broker.produce("g", &["--batch-size", "5"], &input);
    assert_eq!(broker.stored("g"), 20);

    // A member reads 7 records, commits and leaves.
    let first = values(&broker.ctl(&[
        "consume",
        "g",
        "--group",
        "readers",
        "--from-beginning",
        "--max-messages",
        "7",
    ]));
    assert_eq!(first.len(), 7);
    let described = broker
        .ctl(&["groups", "describe", "--group", "readers", "--json"])
        .json();
    assert_eq!(described["group"]["group_id"], "readers");
    assert_eq!(described["group"]["error_code"], 0);
    assert_eq!(described["group"]["protocol_type"], "consumer");
    assert_eq!(described["group"]["group_state"], "Empty", "{described}");
    assert_eq!(described["group"]["members"], Value::Array(Vec::new()));
    let partitions: BTreeSet<(String, i64)> = described["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["topic"].as_str().unwrap().to_string(),
                o["partition"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        partitions,
        BTreeSet::from([("g".into(), 0), ("g".into(), 1)]),
        "{described}"
    );
    assert_eq!(committed_and_lag(&described), (7, 13), "{described}");
    let log_end: i64 = described["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["log_end_offset"].as_i64().unwrap())
        .sum();
    assert_eq!(log_end, 20);

    // The next member resumes at the committed offsets (no --from-beginning needed):
    // together the two runs read every record once.
    let rest = values(&broker.ctl(&["consume", "g", "--group", "readers", "--max-messages", "13"]));
    assert_eq!(rest.len(), 13, "{rest:?}");
    let all: BTreeSet<String> = first.iter().chain(&rest).cloned().collect();
    assert_eq!(all, (0..20).map(|i| format!("v{i}")).collect());
    let described = broker
        .ctl(&["groups", "describe", "--group", "readers", "--json"])
        .json();
    assert_eq!(committed_and_lag(&described), (20, 0), "{described}");

    // New records show as lag; a run with nothing new commits nothing different.
    broker.produce("g", &["--partition", "1"], "late1\nlate2\nlate3\n");
    let described = broker
        .ctl(&["groups", "describe", "--group", "readers", "--json"])
        .json();
    assert_eq!(committed_and_lag(&described), (20, 3), "{described}");
    let table = broker.ctl(&["groups", "describe", "--group", "readers"]);
    let text = table.ok();
    assert!(text.starts_with("group readers  state Empty"), "{text}");
    let header = text
        .lines()
        .find(|l| l.starts_with("TOPIC"))
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        [
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG"
        ]
    );
    // Until 3 s pass without a record: it commits on the way out all the same.
    let late = values(&broker.ctl(&["consume", "g", "--group", "readers", "--timeout-ms", "3000"]));
    assert_eq!(late, ["late1", "late2", "late3"]);

    // Another group starts on its own (from the beginning) and does not move the first.
    let other = values(&broker.ctl(&[
        "consume",
        "g",
        "--group",
        "others",
        "--from-beginning",
        "--timeout-ms",
        "3000",
    ]));
    assert_eq!(other.len(), 23);
    let described = broker
        .ctl(&["groups", "describe", "--group", "readers", "--json"])
        .json();
    assert_eq!(committed_and_lag(&described), (23, 0), "{described}");

    // `groups list`: both, as classic consumer groups.
    let list = broker.ctl(&["groups", "list", "--json"]).json();
    let listed: Vec<(&str, &str)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["group_id"].as_str().unwrap(),
                g["protocol_type"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [("others", "consumer"), ("readers", "consumer")],
        "{list}"
    );
    let table = broker.ctl(&["groups", "list"]);
    let rows: Vec<Vec<&str>> = table
        .ok()
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0][..3], ["GROUP", "PROTOCOL-TYPE", "STATE"]);
    assert_eq!(rows[1][..3], ["others", "consumer", "Empty"], "{rows:?}");
    assert_eq!(rows[2][..3], ["readers", "consumer", "Empty"], "{rows:?}");

    // The user's errors.
    broker
        .ctl(&[
            "consume",
            "g",
            "--group",
            "readers",
            "--partition",
            "0",
            "--max-messages",
            "1",
        ])
        .fails_with("--partition and --group cannot be combined");
    broker
        .ctl(&["groups", "describe", "--group", "nobody"])
        .fails_with("GROUP_ID_NOT_FOUND (69)");
}

#[test]
fn groups_list_on_a_broker_without_groups() {
    let broker = Broker::start_empty();
    let list = broker.ctl(&["groups", "list", "--json"]).json();
    assert_eq!(list, Value::Array(Vec::new()));
}

#[test]
fn describe_shows_a_member_while_it_consumes() {
    let broker = Broker::start_empty();
    broker.create_topic("live", 3, &[]);
    std::thread::scope(|scope| {
        // A member that waits for 3 records, which are produced only once the group
        // shows it as a stable member (from the beginning: it may look up its start
        // offsets after that).
        let member = scope.spawn(|| {
            broker.ctl(&[
                "consume",
                "live",
                "--group",
                "watchers",
                "--from-beginning",
                "--max-messages",
                "3",
                "--client-id",
                "watcher-1",
            ])
        });
        let deadline = Instant::now() + Duration::from_secs(45);
        let described = loop {
            let run = broker.ctl(&["groups", "describe", "--group", "watchers", "--json"]);
            if run.code == Some(0) {
                let json = run.json();
                if json["group"]["group_state"] == "Stable" {
                    break json;
                }
            } else {
                // Not known to the coordinator until the member has joined.
                assert!(run.stderr.contains("GROUP_ID_NOT_FOUND"), "{run:?}");
            }
            assert!(
                Instant::now() < deadline && !member.is_finished(),
                "the group never became stable: {run:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        let members = described["group"]["members"].as_array().unwrap();
        assert_eq!(members.len(), 1, "{described}");
        assert_eq!(members[0]["client_id"], "watcher-1");
        assert_eq!(described["group"]["protocol_type"], "consumer");
        assert_eq!(described["group"]["protocol_data"], "range");
        // The table decodes the member's assignment: every partition to the one member.
        let table = broker.ctl(&["groups", "describe", "--group", "watchers"]);
        let text = table.ok();
        assert!(
            text.starts_with("group watchers  state Stable  protocol range (consumer)  members 1"),
            "{text}"
        );
        let row = text
            .lines()
            .find(|l| l.contains("watcher-1"))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(row.trim_end().ends_with(" live:0,1,2"), "{row}");

        broker.produce("live", &["--partition", "1"], "a\nb\nc\n");
        let run = member.join().unwrap();
        assert_eq!(run.ok(), "a\nb\nc\n");
    });
    // It committed and left.
    let described = broker
        .ctl(&["groups", "describe", "--group", "watchers", "--json"])
        .json();
    assert_eq!(described["group"]["group_state"], "Empty", "{described}");
    let committed: Vec<i64> = described["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["partition"] == 1)
        .map(|o| o["committed_offset"].as_i64().unwrap())
        .collect();
    assert_eq!(committed, [3], "{described}");
}
