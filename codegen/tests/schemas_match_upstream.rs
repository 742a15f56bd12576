//! Checks that our own JSON message definitions under `schemas/` carry exactly
//! the same wire facts as Apache Kafka's upstream definitions.
//!
//! For every `.json` file under `<root>/schemas/**`, the upstream file with the
//! same name is looked up under `<root>/../shared/kafka-schemas/**` (Kafka
//! 4.3.1, the main reference). Both are parsed (upstream after removing
//! whole-line `//` comments).
//!
//! A file whose `validVersions` equals 4.3.1's is compared exactly: every
//! `about` key is removed and the two values must be equal.
//!
//! A file extended below 4.3.1's floor (issue 11: the versions Kafka 4 dropped,
//! KIP-896) is compared per version instead. For every version `v` in our
//! `validVersions`, the wire facts at `v` (see `per_version::project_message`) must equal
//! those of 4.3.1's file when 4.3.1 defines `v`, and of Kafka 3.9.0's file
//! (`<root>/../shared/kafka-schemas-3.9/message/`) when only 3.9.0 does; a
//! version neither defines is an error. Our versions must include all of
//! 4.3.1's, the top-level keys that are not versioned must equal 4.3.1's, and
//! each field's `ignorable` must equal that of its reference field (see
//! `per_version::check_items`).
//!
//! In both cases:
//!
//! * an `about` must be present in our file exactly where the reference file
//!   has one (4.3.1's; 3.9.0's for items only 3.9.0 has),
//! * each of our `about` texts must differ from the upstream text (we write our
//!   own descriptions),
//! * our files must be plain JSON without `//` comment lines.
//!
//! `<root>` is the value of the `GREGOR_ROOT` environment variable if set,
//! otherwise the nearest ancestor of `CARGO_MANIFEST_DIR` that contains a
//! `schemas` directory. If the upstream directory is missing, the test prints
//! a note and passes.

use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// The workspace root: `GREGOR_ROOT`, or the nearest ancestor of the manifest
/// directory that has a `schemas` sub-directory.
fn workspace_root() -> PathBuf {
    if let Some(root) = std::env::var_os("GREGOR_ROOT") {
        return PathBuf::from(root);
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .find(|dir| dir.join("schemas").is_dir())
        .unwrap_or_else(|| {
            panic!(
                "no ancestor of {} contains a `schemas` directory; set GREGOR_ROOT",
                manifest.display()
            )
        })
        .to_path_buf()
}

/// All `.json` files below `dir`, recursively, in sorted order.
fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read directory {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            json_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "json") {
            out.push(path);
        }
    }
}

fn is_comment_line(line: &str) -> bool {
    line.trim_start().starts_with("//")
}

/// The text with every whole-line `//` comment removed.
fn strip_comments(text: &str) -> String {
    text.lines()
        .filter(|line| !is_comment_line(line))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Removes every `about` key, at any depth.
fn strip_about(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("about");
            map.values_mut().for_each(strip_about);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_about),
        _ => {}
    }
}

/// One step of a JSON path; array elements that are named objects also show
/// their `name`, e.g. `fields[3](TopicData)`.
fn element_path(path: &str, index: usize, element: &Value) -> String {
    match element.get("name").and_then(Value::as_str) {
        Some(name) => format!("{path}[{index}]({name})"),
        None => format!("{path}[{index}]"),
    }
}

/// The first JSON path at which `ours` and `upstream` differ, with both values.
fn first_difference(ours: &Value, upstream: &Value, path: &str) -> Option<String> {
    match (ours, upstream) {
        (Value::Object(a), Value::Object(b)) => {
            // `name` first, so a moved or renamed field is reported by its name.
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort_by_key(|key| (key.as_str() != "name", key.as_str()));
            keys.dedup();
            for key in keys {
                let child = format!("{path}.{key}");
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => {
                        if let Some(diff) = first_difference(x, y, &child) {
                            return Some(diff);
                        }
                    }
                    (Some(x), None) => {
                        return Some(format!("{child}: only in ours (ours = {x})"));
                    }
                    (None, Some(y)) => {
                        return Some(format!("{child}: missing in ours (upstream = {y})"));
                    }
                    (None, None) => unreachable!(),
                }
            }
            None
        }
        (Value::Array(a), Value::Array(b)) => {
            for (index, (x, y)) in a.iter().zip(b).enumerate() {
                if let Some(diff) = first_difference(x, y, &element_path(path, index, y)) {
                    return Some(diff);
                }
            }
            if a.len() != b.len() {
                let index = a.len().min(b.len());
                let (longer, whose) = if a.len() > b.len() {
                    (a, "only in ours")
                } else {
                    (b, "missing in ours")
                };
                return Some(format!(
                    "{}: {whose}; array length differs (ours has {}, upstream has {})",
                    element_path(path, index, &longer[index]),
                    a.len(),
                    b.len()
                ));
            }
            None
        }
        _ if ours == upstream => None,
        _ => Some(format!("{path}: ours = {ours}, upstream = {upstream}")),
    }
}

/// Lower-cased, whitespace-collapsed, without a trailing full stop.
fn normalize(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .trim_end_matches('.')
        .to_lowercase()
}

/// Checks `about` placement and wording; `ours` and `upstream` must already be
/// structurally equal apart from `about`.
fn check_about(ours: &Value, upstream: &Value, path: &str, errors: &mut Vec<String>) {
    match (ours, upstream) {
        (Value::Object(a), Value::Object(b)) => {
            match (a.get("about"), b.get("about")) {
                (Some(Value::String(mine)), Some(Value::String(theirs))) => {
                    if mine.trim().is_empty() {
                        errors.push(format!("{path}.about: empty"));
                    } else if normalize(mine) == normalize(theirs) {
                        errors.push(format!(
                            "{path}.about: same text as upstream ({theirs:?}); write our own"
                        ));
                    }
                }
                (Some(mine), Some(theirs)) => {
                    errors.push(format!(
                        "{path}.about: not a string pair (ours = {mine}, upstream = {theirs})"
                    ));
                }
                (Some(_), None) => errors.push(format!("{path}.about: upstream has no about here")),
                (None, Some(_)) => errors.push(format!("{path}.about: missing in ours")),
                (None, None) => {}
            }
            for (key, x) in a {
                if key != "about" {
                    if let Some(y) = b.get(key) {
                        check_about(x, y, &format!("{path}.{key}"), errors);
                    }
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (index, (x, y)) in a.iter().zip(b).enumerate() {
                check_about(x, y, &element_path(path, index, y), errors);
            }
        }
        _ => {}
    }
}

// Cargo builds every `tests/*.rs` as its own test, so the parts live in a
// folder of this test's name.
#[path = "schemas_match_upstream/per_version.rs"]
mod per_version;
#[path = "schemas_match_upstream/per_version_tests.rs"]
mod per_version_tests;

use per_version::{References, compare_extended};

/// Compares one of our (parsed) files with its upstream files: exactly when
/// our `validVersions` equals 4.3.1's, version by version otherwise.
fn compare_values(ours: &Value, refs: &References<'_>) -> Vec<String> {
    let mut errors = Vec::new();
    if ours.get("validVersions") != refs.current.get("validVersions") {
        compare_extended(ours, refs, &mut errors);
        return errors;
    }
    let mut ours_bare = ours.clone();
    let mut upstream_bare = refs.current.clone();
    strip_about(&mut ours_bare);
    strip_about(&mut upstream_bare);
    if ours_bare != upstream_bare {
        let diff = first_difference(&ours_bare, &upstream_bare, "$")
            .unwrap_or_else(|| "values differ (no path found)".to_owned());
        errors.push(format!("differs from upstream at {diff}"));
        return errors;
    }
    check_about(ours, refs.current, "$", &mut errors);
    errors
}

/// Reads and parses an upstream file (after removing `//` comment lines).
fn read_upstream(path: &Path) -> Value {
    let text =
        fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&strip_comments(&text))
        .unwrap_or_else(|e| panic!("upstream {} does not parse: {e}", path.display()))
}

/// Parses one of our files and returns the problems found with it.
fn compare_file(ours_path: &Path, upstream_path: &Path, old_path: Option<&Path>) -> Vec<String> {
    let mut errors = Vec::new();
    let ours_text = fs::read_to_string(ours_path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", ours_path.display()));
    for (number, line) in ours_text.lines().enumerate() {
        if is_comment_line(line) {
            errors.push(format!(
                "line {}: `//` comment line in our file",
                number + 1
            ));
        }
    }
    let ours: Value = match serde_json::from_str(&strip_comments(&ours_text)) {
        Ok(value) => value,
        Err(e) => {
            errors.push(format!("not valid JSON: {e}"));
            return errors;
        }
    };
    let current = read_upstream(upstream_path);
    let old = old_path.map(read_upstream);
    errors.extend(compare_values(
        &ours,
        &References {
            current: &current,
            old: old.as_ref(),
        },
    ));
    errors
}

/// Upstream files below `dir` by file name (the names are unique across its
/// folders).
fn files_by_name(dir: &Path) -> BTreeMap<String, PathBuf> {
    let mut files = Vec::new();
    json_files(dir, &mut files);
    let mut by_name: BTreeMap<String, PathBuf> = BTreeMap::new();
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if let Some(previous) = by_name.insert(name.clone(), path.clone()) {
            panic!(
                "upstream file name {name} is not unique: {} and {}",
                previous.display(),
                path.display()
            );
        }
    }
    by_name
}

#[test]
fn schemas_match_upstream() {
    let root = workspace_root();
    let ours_dir = root.join("schemas");
    let shared = root.join("..").join("shared");
    let upstream_dir = shared.join("kafka-schemas");
    if !upstream_dir.is_dir() {
        println!(
            "note: upstream definitions not found at {}; skipping comparison",
            upstream_dir.display()
        );
        return;
    }
    let upstream_by_name = files_by_name(&upstream_dir);
    let old_dir = shared.join("kafka-schemas-3.9").join("message");
    let old_by_name = if old_dir.is_dir() {
        files_by_name(&old_dir)
    } else {
        println!(
            "note: Kafka 3.9.0 definitions not found at {}; extended files will fail",
            old_dir.display()
        );
        BTreeMap::new()
    };

    let mut ours_files = Vec::new();
    json_files(&ours_dir, &mut ours_files);
    assert!(
        !ours_files.is_empty(),
        "no .json files found under {}",
        ours_dir.display()
    );

    let mut failures = Vec::new();
    let mut compared = 0usize;
    for ours_path in &ours_files {
        let shown = ours_path
            .strip_prefix(&root)
            .unwrap_or(ours_path)
            .display()
            .to_string();
        let name = ours_path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let Some(upstream_path) = upstream_by_name.get(&name) else {
            failures.push(format!("{shown}: no upstream file named {name}"));
            continue;
        };
        compared += 1;
        let old_path = old_by_name.get(&name).map(PathBuf::as_path);
        for error in compare_file(ours_path, upstream_path, old_path) {
            failures.push(format!("{shown}: {error}"));
        }
    }

    println!("compared {compared} schema files with upstream");
    assert!(
        failures.is_empty(),
        "{} problem(s) in our schema files:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
