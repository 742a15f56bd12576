//! `gregorctl perf requests` against the real `gregor` broker: bounded by a request count
//! (with a duration as the backstop), every request answered without an error and counted
//! once. No assertion is about speed: the machine may be slow and loaded.

mod support;

use serde_json::Value;
use support::{Broker, Run};

/// The JSON summary (the last stdout line) of a perf run, which must have succeeded.
fn summary(run: &Run) -> Value {
    run.ok();
    let last = run.stdout.lines().last().expect("a summary line");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("summary is not JSON ({e}): {last}"))
}

#[test]
fn perf_requests_answers_every_request_once() {
    let broker = Broker::start_empty();
    broker.create_topic("rate", 3, &[]);

    for (api, name) in [("api-versions", "ApiVersions"), ("metadata", "Metadata")] {
        let s = summary(&broker.ctl(&[
            "perf",
            "requests",
            "--api",
            api,
            "--connections",
            "3",
            "--in-flight",
            "4",
            "--num-requests",
            "500",
            "--duration",
            "30",
        ]));
        println!("{api}: {s}");
        assert_eq!(s["mode"], "requests");
        assert_eq!(s["api"], name);
        assert_eq!(s["connections"], 3);
        assert_eq!(s["in_flight"], 4);
        assert_eq!(s["requests"], 500, "{s}");
        assert_eq!(s["errors"], 0, "{s}");
        let latency = &s["latency_ms"];
        assert!(latency["p50"].as_f64() <= latency["p99"].as_f64(), "{s}");
        assert!(latency["max"].as_f64().unwrap() > 0.0, "{s}");
    }

    // Metadata of named topics (one known) at an explicit version.
    let s = summary(&broker.ctl(&[
        "perf",
        "requests",
        "--api",
        "metadata",
        "--topic",
        "rate",
        "--version",
        "9",
        "--num-requests",
        "50",
    ]));
    assert_eq!(s["version"], 9);
    assert_eq!(s["topics"], 1);
    assert_eq!(s["requests"], 50, "{s}");

    // An unknown topic is an error in every response: reported, exit code 1.
    broker
        .ctl(&[
            "perf",
            "requests",
            "--api",
            "metadata",
            "--topic",
            "no-such-topic",
            "--num-requests",
            "10",
        ])
        .fails_with("UNKNOWN_TOPIC_OR_PARTITION");

    // Bad arguments.
    broker
        .ctl(&["perf", "requests", "--api", "api-versions"])
        .fails_with("--duration");
}
