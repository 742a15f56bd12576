//! The README's table of Kafka's APIs stays true: one row for every API key Kafka 4.3's
//! broker serves, with the versions Kafka serves (checked against Kafka's own definitions in
//! `../shared/kafka-schemas` when they are there) and the versions this broker serves
//! (checked against [`HANDLED`], which also drives ApiVersions and `dispatch`).

use std::collections::BTreeMap;
use std::path::Path;

use gregor_protocol::ApiKey;

use super::{HANDLED, supported_versions};

/// Marks the table in README.md.
const TABLE_START: &str = "<!-- api-coverage:start -->";
const TABLE_END: &str = "<!-- api-coverage:end -->";
/// The cell of an API this broker does not serve.
const NOT_SERVED: &str = "no";

/// One row: key -> (name, Kafka's versions, ours).
fn readme_rows() -> BTreeMap<i16, (String, String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let text = std::fs::read_to_string(&path).expect("read README.md");
    let start = text
        .find(TABLE_START)
        .expect("the README has the API table");
    let end = text.find(TABLE_END).expect("the API table ends");
    let mut rows = BTreeMap::new();
    for line in text[start..end].lines().filter(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let Ok(key) = cells[0].parse::<i16>() else {
            continue; // the header and its rule
        };
        assert_eq!(cells.len(), 4, "README API table row {line:?}");
        let name = cells[1].trim_matches('`').to_string();
        let previous = rows.insert(key, (name, cells[2].to_string(), cells[3].to_string()));
        assert!(
            previous.is_none(),
            "API key {key} twice in the README table"
        );
    }
    rows
}

fn range_text(min: i16, max: i16) -> String {
    if min == max {
        min.to_string()
    } else {
        format!("{min}-{max}")
    }
}

#[test]
fn the_readme_table_lists_what_this_broker_serves() {
    let rows = readme_rows();
    for (key, (name, _, ours)) in &rows {
        // Keys without a definition in schemas/ are not served (and have no ApiKey).
        let api = ApiKey::from_i16(*key);
        if let Some(api) = api {
            assert_eq!(api.name(), name, "README name of API key {key}");
        }
        let served = api
            .and_then(supported_versions)
            .map_or_else(|| NOT_SERVED.to_string(), |r| range_text(r.min, r.max));
        assert_eq!(ours, &served, "README: versions of {name} served here");
    }
    for (api, _) in HANDLED {
        assert!(
            rows.contains_key(&api.key()),
            "{} is served but missing from the README table",
            api.name()
        );
    }
}

#[test]
fn the_readme_table_lists_every_api_kafkas_broker_serves() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/kafka-schemas/message");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("{} not found: Kafka's column not checked", dir.display());
        return;
    };
    let mut kafka = BTreeMap::new();
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if !path.to_string_lossy().ends_with("Request.json") {
            continue;
        }
        let text: String = std::fs::read_to_string(&path)
            .expect("read a definition")
            .lines()
            .filter(|line| !line.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let spec: serde_json::Value = serde_json::from_str(&text).expect("a JSON definition");
        let for_brokers = spec["listeners"]
            .as_array()
            .is_some_and(|l| l.iter().any(|v| v == "broker"));
        if for_brokers {
            let key = spec["apiKey"].as_i64().expect("apiKey") as i16;
            let versions = spec["validVersions"].as_str().expect("validVersions");
            kafka.insert(key, versions.to_string());
        }
    }
    let rows = readme_rows();
    assert_eq!(
        rows.keys().collect::<Vec<_>>(),
        kafka.keys().collect::<Vec<_>>(),
        "the README table's keys are the ones Kafka's broker serves"
    );
    for (key, versions) in &kafka {
        assert_eq!(
            &rows[key].1, versions,
            "README: Kafka's versions of key {key}"
        );
    }
}
