//! Every generated message at every valid version: random values valid for that version
//! round-trip, and the computed size equals the bytes written and the bytes read.
//!
//! With `GREGOR_SCHEMAS` pointing at Kafka's own definitions this covers all of them.

use bytes::BytesMut;
use gregor_protocol::Message;
use gregor_protocol::arbitrary::VersionedStrategy;
use gregor_protocol::message::StructCodec;
use gregor_protocol::messages::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Round-trips random values of `T` at every version; returns a failure description.
fn check<T: Message + VersionedStrategy + StructCodec>(
    failures: &mut Vec<String>,
    covered: &mut usize,
) {
    for version in T::VALID_VERSIONS.iter() {
        *covered += 1;
        let mut runner = TestRunner::new(Config {
            cases: cases(),
            failure_persistence: None,
            ..Config::default()
        });
        let result = runner.run(&T::strategy(version), |value| {
            let mut buf = BytesMut::new();
            value
                .encode(&mut buf, version)
                .map_err(|e| TestCaseError::fail(format!("encode: {e}")))?;
            let written = buf.len();
            proptest::prop_assert_eq!(
                value.encoded_len(version),
                written,
                "computed size != bytes written"
            );
            // Array readers refuse counts by this bound, so it must never overestimate.
            proptest::prop_assert!(
                <T as StructCodec>::min_size(version) <= written,
                "min_size {} > {written} bytes written",
                <T as StructCodec>::min_size(version)
            );
            let mut input = buf.freeze();
            let decoded = T::decode(&mut input, version)
                .map_err(|e| TestCaseError::fail(format!("decode: {e}")))?;
            proptest::prop_assert!(input.is_empty(), "{} bytes left unread", input.len());
            proptest::prop_assert_eq!(&decoded, &value);
            Ok(())
        });
        if let Err(err) = result {
            failures.push(format!("{} v{version}: {err}", T::NAME));
        }
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48)
}

macro_rules! check_all {
    ($($message:path),*) => {{
        let mut failures = Vec::new();
        let mut covered = 0;
        let mut messages = 0;
        $( check::<$message>(&mut failures, &mut covered); messages += 1; )*
        (failures, messages, covered)
    }};
}

#[test]
fn every_message_every_version_round_trips() {
    let (failures, messages, versions) = gregor_protocol::for_each_message!(check_all);
    println!("{messages} messages, {versions} message versions checked");
    assert!(messages > 0);
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
