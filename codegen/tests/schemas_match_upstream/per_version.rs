//! The per-version comparison of a file extended below Kafka 4.3.1's floor
//! (issue 11): projection of a definition at one version, and the rules for
//! the keys that are not per version (`ignorable`, `about`, top-level keys).

use super::{element_path, first_difference, normalize};
use serde_json::Value;

/// The upstream definitions one of our files is compared with.
pub(super) struct References<'a> {
    /// Kafka 4.3.1's file of the same name (the main reference).
    pub(super) current: &'a Value,
    /// Kafka 3.9.0's file of the same name, when there is one.
    pub(super) old: Option<&'a Value>,
}

/// An inclusive range of versions; empty when `low > high`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Versions {
    pub(super) low: i32,
    pub(super) high: i32,
}

impl Versions {
    pub(super) const NONE: Versions = Versions { low: 1, high: 0 };

    pub(super) fn contains(self, version: i32) -> bool {
        self.low <= version && version <= self.high
    }

    pub(super) fn iter(self) -> impl Iterator<Item = i32> {
        self.low..=self.high
    }

    pub(super) fn includes(self, other: Versions) -> bool {
        other.low > other.high || (self.low <= other.low && other.high <= self.high)
    }
}

/// Parses a version range as Kafka writes them: `none`, `N`, `N-M` or `N+`.
pub(super) fn parse_versions(text: &str) -> Result<Versions, String> {
    let number = |part: &str| {
        part.trim()
            .parse::<i32>()
            .map_err(|_| format!("bad version range {text:?}"))
    };
    let text_trimmed = text.trim();
    if text_trimmed == "none" {
        return Ok(Versions::NONE);
    }
    if let Some(low) = text_trimmed.strip_suffix('+') {
        return Ok(Versions {
            low: number(low)?,
            high: i32::from(i16::MAX),
        });
    }
    if let Some((low, high)) = text_trimmed.split_once('-') {
        return Ok(Versions {
            low: number(low)?,
            high: number(high)?,
        });
    }
    let single = number(text_trimmed)?;
    Ok(Versions {
        low: single,
        high: single,
    })
}

/// The range stored under `key` of `object`; `NONE` when the key is absent.
pub(super) fn versions_of(object: &Value, key: &str, path: &str) -> Result<Versions, String> {
    match object.get(key) {
        None => Ok(Versions::NONE),
        Some(Value::String(text)) => parse_versions(text).map_err(|e| format!("{path}.{key}: {e}")),
        Some(other) => Err(format!("{path}.{key}: not a string ({other})")),
    }
}

/// Keys of a field whose values are version ranges or depend on one; the
/// projection replaces them by what they mean at one version.
pub(super) const VERSIONED_FIELD_KEYS: [&str; 7] = [
    "versions",
    "nullableVersions",
    "taggedVersions",
    "flexibleVersions",
    "tag",
    "fields",
    // Decides bytes only at versions *without* the field (Kafka's
    // MessageDataGenerator refuses to drop a non-default value unless the field
    // is ignorable), so it is a per-field fact, checked by `check_items`.
    "ignorable",
];

/// The fields of `fields` (an array, or absent) present at `version`,
/// projected; the element type names of the kept fields go to `types`.
pub(super) fn project_fields(
    fields: Option<&Value>,
    version: i32,
    path: &str,
    types: &mut Vec<String>,
) -> Result<Value, String> {
    let Some(fields) = fields else {
        return Ok(Value::Array(Vec::new()));
    };
    let Value::Array(fields) = fields else {
        return Err(format!("{path}: not an array"));
    };
    let mut out = Vec::new();
    for (index, field) in fields.iter().enumerate() {
        let field_path = element_path(path, index, field);
        if let Some(projected) = project_field(field, version, &field_path, types)? {
            out.push(projected);
        }
    }
    Ok(Value::Array(out))
}

/// One field as it is at `version`, or `None` when the field is absent then.
///
/// Kept: every key that is not versioned (name, type, mapKey, default,
/// entityType, zeroCopy, and anything unknown), minus `about`; added:
/// `nullable` (is `version` in nullableVersions), `tag` (only when the field
/// is tagged at `version`), `flexible` (only when the field overrides
/// flexibleVersions), and the nested `fields` present at `version`.
pub(super) fn project_field(
    field: &Value,
    version: i32,
    path: &str,
    types: &mut Vec<String>,
) -> Result<Option<Value>, String> {
    let Value::Object(map) = field else {
        return Err(format!("{path}: a field must be an object"));
    };
    if !versions_of(field, "versions", path)?.contains(version) {
        return Ok(None);
    }
    let mut out = serde_json::Map::new();
    for (key, value) in map {
        if key != "about" && !VERSIONED_FIELD_KEYS.contains(&key.as_str()) {
            out.insert(key.clone(), value.clone());
        }
    }
    let nullable = versions_of(field, "nullableVersions", path)?.contains(version);
    out.insert("nullable".to_owned(), Value::Bool(nullable));
    if versions_of(field, "taggedVersions", path)?.contains(version) {
        out.insert(
            "tag".to_owned(),
            map.get("tag").cloned().unwrap_or(Value::Null),
        );
    }
    if map.contains_key("flexibleVersions") {
        let flexible = versions_of(field, "flexibleVersions", path)?.contains(version);
        out.insert("flexible".to_owned(), Value::Bool(flexible));
    }
    if let Some(Value::String(kind)) = map.get("type") {
        types.push(kind.trim_start_matches("[]").to_owned());
    }
    let nested = project_fields(map.get("fields"), version, &format!("{path}.fields"), types)?;
    if map.contains_key("fields") {
        out.insert("fields".to_owned(), nested);
    }
    Ok(Some(Value::Object(out)))
}

/// The wire facts of a message definition at one version: apiKey, type, name,
/// whether `version` is flexible, the fields present at `version` (see
/// [`project_field`]), and the common structs those fields use (by name,
/// projected at `version` too).
///
/// Left out, as they decide no bytes at `version`: `validVersions` (checked
/// separately), `deprecatedVersions`, `listeners`, `latestVersionUnstable`
/// and `about`.
pub(super) fn project_message(spec: &Value, version: i32) -> Result<Value, String> {
    let mut out = serde_json::Map::new();
    for key in ["apiKey", "type", "name"] {
        if let Some(value) = spec.get(key) {
            out.insert(key.to_owned(), value.clone());
        }
    }
    let flexible = versions_of(spec, "flexibleVersions", "$")?.contains(version);
    out.insert("flexible".to_owned(), Value::Bool(flexible));
    let mut types = Vec::new();
    out.insert(
        "fields".to_owned(),
        project_fields(spec.get("fields"), version, "$.fields", &mut types)?,
    );

    // Common structs reachable from the kept fields, each projected once.
    let structs: Vec<&Value> = match spec.get("commonStructs") {
        Some(Value::Array(structs)) => structs.iter().collect(),
        Some(_) => return Err("$.commonStructs: not an array".to_owned()),
        None => Vec::new(),
    };
    let mut used = serde_json::Map::new();
    while let Some(kind) = types.pop() {
        if used.contains_key(&kind) {
            continue;
        }
        let Some(common) = structs
            .iter()
            .find(|s| s.get("name").and_then(Value::as_str) == Some(kind.as_str()))
        else {
            continue;
        };
        let path = format!("$.commonStructs({kind}).fields");
        let fields = project_fields(common.get("fields"), version, &path, &mut types)?;
        used.insert(kind, serde_json::json!({ "fields": fields }));
    }
    if !used.is_empty() {
        out.insert("commonStructs".to_owned(), Value::Object(used));
    }
    Ok(Value::Object(out))
}

/// The element of the array `items` whose `name` is `name`.
pub(super) fn named<'a>(items: Option<&'a Value>, name: &str) -> Option<&'a Value> {
    items?
        .as_array()?
        .iter()
        .find(|item| item.get("name").and_then(Value::as_str) == Some(name))
}

/// Checks our `about` at one item against the reference item's (placement and
/// wording), and that it does not repeat the other upstream file's text.
pub(super) fn check_one_about(
    ours: &Value,
    reference: &Value,
    other: Option<&Value>,
    path: &str,
    errors: &mut Vec<String>,
) {
    match (ours.get("about"), reference.get("about")) {
        (Some(Value::String(mine)), Some(Value::String(theirs))) => {
            if mine.trim().is_empty() {
                errors.push(format!("{path}.about: empty"));
            } else if normalize(mine) == normalize(theirs) {
                errors.push(format!(
                    "{path}.about: same text as upstream ({theirs:?}); write our own"
                ));
            }
        }
        (Some(mine), Some(theirs)) => errors.push(format!(
            "{path}.about: not a string pair (ours = {mine}, upstream = {theirs})"
        )),
        (Some(_), None) => errors.push(format!("{path}.about: upstream has no about here")),
        (None, Some(_)) => errors.push(format!("{path}.about: missing in ours")),
        (None, None) => {}
    }
    if let (Some(Value::String(mine)), Some(Value::String(theirs))) =
        (ours.get("about"), other.and_then(|o| o.get("about")))
    {
        if normalize(mine) == normalize(theirs) {
            errors.push(format!(
                "{path}.about: same text as upstream ({theirs:?}); write our own"
            ));
        }
    }
}

/// Walks the fields of an extended file: each field is matched by name with
/// the reference item (4.3.1's field at the same place, or 3.9.0's for fields
/// only it has), whose `about` rules and `ignorable` apply.
pub(super) fn check_items(
    ours: Option<&Value>,
    current: Option<&Value>,
    old: Option<&Value>,
    path: &str,
    errors: &mut Vec<String>,
) {
    let Some(Value::Array(fields)) = ours else {
        return;
    };
    for (index, field) in fields.iter().enumerate() {
        let field_path = element_path(path, index, field);
        let Some(name) = field.get("name").and_then(Value::as_str) else {
            errors.push(format!("{field_path}: field without a name"));
            continue;
        };
        let in_current = named(current, name);
        let in_old = named(old, name);
        let (reference, other, label) = match (in_current, in_old) {
            (Some(c), o) => (c, o, "4.3.1"),
            (None, Some(o)) => (o, None, "3.9.0"),
            (None, None) => {
                errors.push(format!(
                    "{field_path}: field {name} is in neither Kafka 4.3.1's nor 3.9.0's file"
                ));
                continue;
            }
        };
        check_one_about(field, reference, other, &field_path, errors);
        if field.get("ignorable") != reference.get("ignorable") {
            errors.push(format!(
                "{field_path}.ignorable: ours = {}, Kafka {label} = {}",
                field.get("ignorable").unwrap_or(&Value::Null),
                reference.get("ignorable").unwrap_or(&Value::Null)
            ));
        }
        check_items(
            field.get("fields"),
            in_current.and_then(|c| c.get("fields")),
            in_old.and_then(|o| o.get("fields")),
            &format!("{field_path}.fields"),
            errors,
        );
    }
}

/// Top-level keys an extended file checks per version (or separately) rather
/// than by plain equality with 4.3.1.
pub(super) const PER_VERSION_TOP_KEYS: [&str; 6] = [
    "validVersions",
    "flexibleVersions",
    "fields",
    "commonStructs",
    "about",
    "deprecatedVersions",
];

/// Compares a file extended below 4.3.1's floor, version by version.
pub(super) fn compare_extended(ours: &Value, refs: &References<'_>, errors: &mut Vec<String>) {
    let parse = |spec: &Value, who: &str| match spec.get("validVersions").and_then(Value::as_str) {
        Some(text) => parse_versions(text).map_err(|e| format!("{who} validVersions: {e}")),
        None => Err(format!("{who} file has no validVersions")),
    };
    let (ours_valid, current_valid) = match (parse(ours, "our"), parse(refs.current, "4.3.1's")) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            errors.push(e);
            return;
        }
    };
    let old_valid = match refs.old.map(|old| parse(old, "3.9.0's")) {
        Some(Ok(valid)) => Some(valid),
        Some(Err(e)) => {
            errors.push(e);
            return;
        }
        None => None,
    };
    if !ours_valid.includes(current_valid) {
        errors.push(format!(
            "validVersions {}-{} must include all of Kafka 4.3.1's ({}-{})",
            ours_valid.low, ours_valid.high, current_valid.low, current_valid.high
        ));
    }

    // Top-level keys that decide no per-version bytes but must still agree.
    let mut keys: Vec<&String> = ours
        .as_object()
        .into_iter()
        .chain(refs.current.as_object())
        .flat_map(|map| map.keys())
        .filter(|key| !PER_VERSION_TOP_KEYS.contains(&key.as_str()))
        .collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        if ours.get(key) != refs.current.get(key) {
            errors.push(format!(
                "$.{key}: ours = {}, Kafka 4.3.1 = {}",
                ours.get(key).unwrap_or(&Value::Null),
                refs.current.get(key).unwrap_or(&Value::Null)
            ));
        }
    }
    let deprecated = ours.get("deprecatedVersions");
    if deprecated != refs.current.get("deprecatedVersions")
        && deprecated != refs.old.and_then(|old| old.get("deprecatedVersions"))
    {
        errors.push(format!(
            "$.deprecatedVersions: ours = {}, neither Kafka 4.3.1's nor 3.9.0's",
            deprecated.unwrap_or(&Value::Null)
        ));
    }

    for version in ours_valid.iter() {
        let (reference, label) = if current_valid.contains(version) {
            (refs.current, "Kafka 4.3.1")
        } else if let (Some(old), Some(true)) = (refs.old, old_valid.map(|v| v.contains(version))) {
            (old, "Kafka 3.9.0")
        } else {
            errors.push(format!(
                "v{version}: neither Kafka 4.3.1 nor Kafka 3.9.0 defines this version"
            ));
            continue;
        };
        let projected = project_message(ours, version)
            .and_then(|mine| project_message(reference, version).map(|theirs| (mine, theirs)));
        match projected {
            Ok((mine, theirs)) => {
                if let Some(diff) = first_difference(&mine, &theirs, "$") {
                    errors.push(format!("v{version} differs from {label} at {diff}"));
                }
            }
            Err(e) => errors.push(format!("v{version}: {e}")),
        }
    }

    // `about` and `ignorable`, per item.
    check_one_about(ours, refs.current, None, "$", errors);
    check_items(
        ours.get("fields"),
        refs.current.get("fields"),
        refs.old.and_then(|old| old.get("fields")),
        "$.fields",
        errors,
    );
    if let Some(Value::Array(structs)) = ours.get("commonStructs") {
        for (index, common) in structs.iter().enumerate() {
            let path = element_path("$.commonStructs", index, common);
            let name = common.get("name").and_then(Value::as_str).unwrap_or("");
            let in_current = named(refs.current.get("commonStructs"), name);
            let in_old = refs
                .old
                .and_then(|old| named(old.get("commonStructs"), name));
            let Some(reference) = in_current.or(in_old) else {
                errors.push(format!(
                    "{path}: common struct {name} is in neither Kafka 4.3.1's nor 3.9.0's file"
                ));
                continue;
            };
            let other = in_current.and(in_old);
            check_one_about(common, reference, other, &path, errors);
            check_items(
                common.get("fields"),
                in_current.and_then(|c| c.get("fields")),
                in_old.and_then(|o| o.get("fields")),
                &format!("{path}.fields"),
                errors,
            );
        }
    }
}
