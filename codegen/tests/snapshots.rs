//! Snapshot tests: the code generated for a few small definitions is kept next to them
//! (`tests/snapshots/NAME.rs`), so any generator change shows up as a readable diff.
//! Run with `UPDATE_SNAPSHOTS=1` to accept new output.

use std::path::Path;

fn check(name: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    let json = dir.join(format!("{name}.json"));
    let text = std::fs::read_to_string(&json).unwrap();
    let generated = gregor_codegen::generate_one(&json, &text)
        .unwrap_or_else(|errors| panic!("{name}: {errors:?}"));
    let expected_path = dir.join(format!("{name}.rs"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&expected_path, &generated).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
    if generated != expected {
        let first = generated
            .lines()
            .zip(expected.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| generated.lines().count().min(expected.lines().count()));
        panic!(
            "generated code for {name} differs from tests/snapshots/{name}.rs at line {}:\n  new: {:?}\n  old: {:?}\nrerun with UPDATE_SNAPSHOTS=1 to accept",
            first + 1,
            generated.lines().nth(first),
            expected.lines().nth(first)
        );
    }
}

#[test]
fn ping_request() {
    check("PingRequest");
}

#[test]
fn counter_record() {
    check("CounterRecord");
}
