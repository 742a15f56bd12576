//! The `gregor-codegen` command line: generated code on success, every validation error
//! (naming file, struct and field) and a failing status otherwise.

use std::path::PathBuf;
use std::process::Command;

fn temp_dir(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("gregor-codegen-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (file, text) in files {
        std::fs::write(dir.join(file), text).unwrap();
    }
    dir
}

fn run(dir: &PathBuf) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_gregor-codegen"))
        .arg(dir)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn prints_generated_code() {
    let record = include_str!("snapshots/CounterRecord.json");
    let dir = temp_dir("ok", &[("CounterRecord.json", record)]);
    let (ok, stdout, stderr) = run(&dir);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("pub mod counter_record"));
    assert!(stdout.contains("pub enum MetadataRecord"));
    assert!(stdout.contains("Counter(counter_record::CounterRecord)"));
}

#[test]
fn reports_every_error_with_its_location() {
    let bad = r#"{
      "apiKey": 1, "type": "request", "name": "BadRequest", "validVersions": "0-2", "flexibleVersions": "1+",
      "fields": [
        { "name": "Count", "type": "int33", "versions": "0+" },
        { "name": "Items", "type": "[]Item", "versions": "0+", "fields": [
          { "name": "A", "type": "int8", "versions": "1+", "taggedVersions": "1+", "tag": 0 },
          { "name": "B", "type": "int8", "versions": "1+", "taggedVersions": "1+", "tag": 0 } ] },
        { "name": "Early", "type": "int8", "versions": "0+", "taggedVersions": "0+", "tag": 0 }
      ]
    }"#;
    let dir = temp_dir("bad", &[("BadRequest.json", bad)]);
    let (ok, stdout, stderr) = run(&dir);
    assert!(!ok);
    assert!(stdout.is_empty());
    for expected in [
        "BadRequest.json: BadRequest.Count: unknown type \"int33\"",
        "BadRequest.json: Item.B: duplicate tag 0",
        "BadRequest.json: BadRequest.Early: tagged fields are only allowed in flexible versions",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
}

#[test]
fn requests_need_their_responses() {
    let lonely = r#"{ "apiKey": 7, "type": "request", "name": "LonelyRequest", "validVersions": "0",
        "flexibleVersions": "none", "fields": [] }"#;
    let dir = temp_dir("pair", &[("LonelyRequest.json", lonely)]);
    let (ok, _, stderr) = run(&dir);
    assert!(!ok);
    assert!(
        stderr
            .contains("LonelyRequest.json: LonelyRequest has api key 7 but no Response definition"),
        "{stderr}"
    );
}

#[test]
fn usage_without_arguments() {
    let output = Command::new(env!("CARGO_BIN_EXE_gregor-codegen"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("usage"));
}
