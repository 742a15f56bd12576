//! Unit tests of the per-version projection and the extended-file rules, on
//! small hand-written definitions.

use super::compare_values;
use super::per_version::*;
use serde_json::{Value, json};

/// A 4.3.1-like request: versions 2-4, flexible from 4, with a topic
/// array whose `Name` is nullable from 3.
fn current() -> Value {
    json!({
        "apiKey": 99, "type": "request", "listeners": ["broker"],
        "name": "DemoRequest", "validVersions": "2-4", "flexibleVersions": "4+",
        "fields": [
            { "name": "Topics", "type": "[]DemoTopic", "versions": "0+",
              "about": "Upstream topics text.",
              "fields": [
                { "name": "Name", "type": "string", "versions": "0+",
                  "nullableVersions": "3+", "entityType": "topicName",
                  "about": "Upstream name text." },
                { "name": "Tagged", "type": "int32", "versions": "4+", "default": "-1",
                  "taggedVersions": "4+", "tag": 0, "about": "Upstream tagged text." }
              ]}
        ]
    })
}

/// The 3.9.0-like file: versions 0-4, with `Limit` only in version 0-1
/// and `Name` not yet ignorable-free.
fn old() -> Value {
    json!({
        "apiKey": 99, "type": "request", "listeners": ["zkBroker", "broker"],
        "name": "DemoRequest", "validVersions": "0-4", "deprecatedVersions": "0",
        "flexibleVersions": "4+",
        "fields": [
            { "name": "Topics", "type": "[]DemoTopic", "versions": "0+",
              "about": "Old topics text.",
              "fields": [
                { "name": "Name", "type": "string", "versions": "0+",
                  "nullableVersions": "3+", "entityType": "topicName",
                  "about": "Old name text." },
                { "name": "Limit", "type": "int32", "versions": "0-1", "default": "1",
                  "about": "Old limit text." },
                { "name": "Tagged", "type": "int32", "versions": "4+", "default": "-1",
                  "taggedVersions": "4+", "tag": 0, "about": "Old tagged text." }
              ]}
        ]
    })
}

/// Ours: 4.3.1's file extended to 0 with the old-only `Limit` field.
fn extended() -> Value {
    json!({
        "apiKey": 99, "type": "request", "listeners": ["broker"],
        "name": "DemoRequest", "validVersions": "0-4", "flexibleVersions": "4+",
        "fields": [
            { "name": "Topics", "type": "[]DemoTopic", "versions": "0+",
              "about": "Our topics.",
              "fields": [
                { "name": "Name", "type": "string", "versions": "0+",
                  "nullableVersions": "3+", "entityType": "topicName",
                  "about": "Our name." },
                { "name": "Limit", "type": "int32", "versions": "0-1", "default": "1",
                  "about": "Our limit." },
                { "name": "Tagged", "type": "int32", "versions": "4+", "default": "-1",
                  "taggedVersions": "4+", "tag": 0, "about": "Our tagged." }
              ]}
        ]
    })
}

fn check(ours: &Value) -> Vec<String> {
    let (current, old) = (current(), old());
    compare_values(
        ours,
        &References {
            current: &current,
            old: Some(&old),
        },
    )
}

/// The field object at `Topics.fields[index]` of `spec`, for editing.
fn topic_field(spec: &mut Value, index: usize) -> &mut Value {
    &mut spec["fields"][0]["fields"][index]
}

#[test]
fn version_ranges_parse() {
    assert_eq!(parse_versions("none").unwrap(), Versions::NONE);
    assert_eq!(parse_versions("3").unwrap(), Versions { low: 3, high: 3 });
    assert_eq!(parse_versions("1-9").unwrap(), Versions { low: 1, high: 9 });
    assert_eq!(
        parse_versions("4+").unwrap(),
        Versions {
            low: 4,
            high: i32::from(i16::MAX)
        }
    );
    assert!(parse_versions("x+").is_err());
    assert!(!Versions::NONE.contains(0));
}

#[test]
fn projection_keeps_only_the_facts_of_one_version() {
    let spec = old();
    let v0 = project_message(&spec, 0).unwrap();
    assert_eq!(
        v0,
        json!({
            "apiKey": 99, "type": "request", "name": "DemoRequest", "flexible": false,
            "fields": [
                { "name": "Topics", "type": "[]DemoTopic", "nullable": false,
                  "fields": [
                    { "name": "Name", "type": "string", "entityType": "topicName",
                      "nullable": false },
                    { "name": "Limit", "type": "int32", "default": "1", "nullable": false }
                  ]}
            ]
        })
    );
    let v4 = project_message(&spec, 4).unwrap();
    let names: Vec<&str> = v4["fields"][0]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Name", "Tagged"]);
    assert_eq!(v4["flexible"], json!(true));
    assert_eq!(v4["fields"][0]["fields"][0]["nullable"], json!(true));
    assert_eq!(v4["fields"][0]["fields"][1]["tag"], json!(0));
}

#[test]
fn projection_follows_common_structs_in_use() {
    let spec = json!({
        "type": "data", "name": "X", "validVersions": "0-1", "flexibleVersions": "none",
        "fields": [
            { "name": "A", "type": "[]Used", "versions": "0" },
            { "name": "B", "type": "Later", "versions": "1" }
        ],
        "commonStructs": [
            { "name": "Used", "versions": "0+", "fields": [
                { "name": "Inner", "type": "int8", "versions": "0+" } ]},
            { "name": "Later", "versions": "0+", "fields": [] }
        ]
    });
    let v0 = project_message(&spec, 0).unwrap();
    assert_eq!(
        v0["commonStructs"],
        json!({ "Used": { "fields": [
            { "name": "Inner", "type": "int8", "nullable": false } ] } })
    );
    let v1 = project_message(&spec, 1).unwrap();
    assert_eq!(v1["commonStructs"], json!({ "Later": { "fields": [] } }));
}

#[test]
fn an_extended_file_matches_both_references() {
    assert_eq!(check(&extended()), Vec::<String>::new());
}

#[test]
fn an_old_only_field_is_checked_against_3_9() {
    // `Limit` ends at version 1, below 4.3.1's floor of 2: only 3.9.0 knows it.
    let mut ours = extended();
    topic_field(&mut ours, 1)["type"] = json!("int64");
    let errors = check(&ours);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    for (error, version) in errors.iter().zip(["v0", "v1"]) {
        assert!(error.starts_with(version), "{error}");
        assert!(error.contains("Kafka 3.9.0"), "{error}");
        assert!(error.contains("(Limit).type"), "{error}");
        assert!(error.contains("\"int64\""), "{error}");
    }
}

#[test]
fn a_missing_old_only_field_fails_at_its_versions() {
    let mut ours = extended();
    ours["fields"][0]["fields"]
        .as_array_mut()
        .unwrap()
        .remove(1);
    let errors = check(&ours);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(
        errors[0].starts_with("v0 differs from Kafka 3.9.0"),
        "{errors:#?}"
    );
    assert!(
        errors[1].starts_with("v1 differs from Kafka 3.9.0"),
        "{errors:#?}"
    );
}

#[test]
fn an_old_only_field_reaching_a_current_version_fails_against_4_3_1() {
    let mut ours = extended();
    topic_field(&mut ours, 1)["versions"] = json!("0-2");
    let errors = check(&ours);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].starts_with("v2 differs from Kafka 4.3.1"),
        "{errors:#?}"
    );
    assert!(errors[0].contains("Limit"), "{errors:#?}");
}

#[test]
fn nullability_and_tags_are_compared_per_version() {
    let mut ours = extended();
    topic_field(&mut ours, 0)["nullableVersions"] = json!("1+");
    let errors = check(&ours);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(
        errors[0].starts_with("v1 differs from Kafka 3.9.0"),
        "{errors:#?}"
    );
    assert!(errors[0].contains("(Name).nullable"), "{errors:#?}");
    assert!(
        errors[1].starts_with("v2 differs from Kafka 4.3.1"),
        "{errors:#?}"
    );

    let mut ours = extended();
    topic_field(&mut ours, 2)["tag"] = json!(1);
    let errors = check(&ours);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].starts_with("v4 differs from Kafka 4.3.1"),
        "{errors:#?}"
    );
    assert!(errors[0].contains("(Tagged).tag"), "{errors:#?}");
}

#[test]
fn a_flexible_change_below_the_floor_fails() {
    let mut ours = extended();
    ours["flexibleVersions"] = json!("1+");
    let errors = check(&ours);
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("v1 differs") && e.contains("$.flexible")),
        "{errors:#?}"
    );
}

#[test]
fn a_version_neither_defines_is_an_error() {
    let (current, mut old) = (current(), old());
    old["validVersions"] = json!("1-4");
    let errors = compare_values(
        &extended(),
        &References {
            current: &current,
            old: Some(&old),
        },
    );
    assert_eq!(
        errors,
        ["v0: neither Kafka 4.3.1 nor Kafka 3.9.0 defines this version"]
    );
    let errors = compare_values(
        &extended(),
        &References {
            current: &current,
            old: None,
        },
    );
    // Without a 3.9.0 file: both old versions, and the old-only field.
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(errors[0].starts_with("v0: neither"), "{errors:#?}");
    assert!(errors[1].starts_with("v1: neither"), "{errors:#?}");
    assert!(
        errors[2].contains("field Limit is in neither"),
        "{errors:#?}"
    );
}

#[test]
fn an_extended_file_keeps_all_current_versions() {
    let mut ours = extended();
    ours["validVersions"] = json!("0-3");
    let errors = check(&ours);
    assert_eq!(
        errors,
        ["validVersions 0-3 must include all of Kafka 4.3.1's (2-4)"]
    );
}

#[test]
fn top_level_keys_follow_4_3_1() {
    let mut ours = extended();
    ours["listeners"] = json!(["zkBroker", "broker"]);
    let errors = check(&ours);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].starts_with("$.listeners"), "{errors:#?}");

    // deprecatedVersions may be either upstream's.
    let mut ours = extended();
    ours["deprecatedVersions"] = json!("0");
    assert_eq!(check(&ours), Vec::<String>::new());
    ours["deprecatedVersions"] = json!("0-1");
    assert_eq!(check(&ours).len(), 1);
}

#[test]
fn ignorable_follows_the_reference_field() {
    let mut ours = extended();
    topic_field(&mut ours, 1)["ignorable"] = json!(true);
    let errors = check(&ours);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].contains("(Limit).ignorable"), "{errors:#?}");
    assert!(errors[0].contains("Kafka 3.9.0"), "{errors:#?}");
}

#[test]
fn abouts_follow_the_reference_file() {
    // Missing on an old-only field.
    let mut ours = extended();
    topic_field(&mut ours, 1)
        .as_object_mut()
        .unwrap()
        .remove("about");
    assert_eq!(
        check(&ours),
        ["$.fields[0](Topics).fields[1](Limit).about: missing in ours"]
    );
    // Copied from 3.9.0 on an old-only field.
    let mut ours = extended();
    topic_field(&mut ours, 1)["about"] = json!("Old limit text");
    let errors = check(&ours);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].contains("(Limit).about: same text"),
        "{errors:#?}"
    );
    // Copied from 3.9.0 on a field both have.
    let mut ours = extended();
    topic_field(&mut ours, 0)["about"] = json!("old name text.");
    assert_eq!(check(&ours).len(), 1);
    // Where no upstream has one.
    let mut ours = extended();
    ours["about"] = json!("Ours.");
    assert_eq!(check(&ours), ["$.about: upstream has no about here"]);
}

#[test]
fn an_unextended_file_is_compared_exactly() {
    let mut ours = extended();
    ours["validVersions"] = json!("2-4");
    // `Limit` has no versions in 2-4, but the exact comparison still sees it.
    let errors = check(&ours);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].starts_with("differs from upstream"),
        "{errors:#?}"
    );

    let mut ours = current();
    ours["fields"][0]["about"] = json!("Ours.");
    ours["fields"][0]["fields"][0]["about"] = json!("Ours.");
    ours["fields"][0]["fields"][1]["about"] = json!("Ours.");
    assert_eq!(check(&ours), Vec::<String>::new());
}
