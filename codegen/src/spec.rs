//! The JSON definition format, exactly as written in the files: a strict serde model in
//! which any key the format does not define is an error.
//!
//! Nothing here is checked beyond JSON shape; [`crate::model`] turns a spec into the
//! validated model the emitter works from.

use serde::Deserialize;

/// One definition file: a request, response, header, data, metadata or coordinator record.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MessageSpec {
    /// The API key (requests and responses) or record type (metadata and coordinator records).
    pub api_key: Option<i16>,
    /// What kind of definition this is.
    #[serde(rename = "type")]
    pub kind: SpecKind,
    /// The listeners that serve this API (informational).
    #[serde(default)]
    pub listeners: Vec<String>,
    /// The message name, e.g. `MetadataRequest`.
    pub name: String,
    /// The versions this message has.
    pub valid_versions: String,
    /// The versions that use compact encodings and tagged fields.
    pub flexible_versions: Option<String>,
    /// Versions that are deprecated (informational).
    pub deprecated_versions: Option<String>,
    /// True when the highest valid version is still under development.
    #[serde(default)]
    pub latest_version_unstable: bool,
    /// The top-level fields.
    #[serde(default)]
    pub fields: Vec<FieldSpec>,
    /// Structs that fields anywhere in the file can name as their type.
    #[serde(default)]
    pub common_structs: Vec<StructSpec>,
}

/// The `type` of a definition file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SpecKind {
    /// A request body of an API key.
    Request,
    /// A response body of an API key.
    Response,
    /// A request or response header.
    Header,
    /// A standalone structure (control records, embedded protocols).
    Data,
    /// A KRaft `__cluster_metadata` record.
    Metadata,
    /// The key of a coordinator record.
    CoordinatorKey,
    /// The value of a coordinator record.
    CoordinatorValue,
}

/// An entry of `commonStructs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StructSpec {
    /// The struct name.
    pub name: String,
    /// The versions the struct exists in.
    pub versions: String,
    /// Deprecated versions (informational).
    pub deprecated_versions: Option<String>,
    /// The struct's fields.
    #[serde(default)]
    pub fields: Vec<FieldSpec>,
}

/// One field of a message or struct.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FieldSpec {
    /// The field name, in upper camel case.
    pub name: String,
    /// The type: a primitive, `[]T`, or a struct name.
    #[serde(rename = "type")]
    pub ty: String,
    /// The versions the field is present in.
    pub versions: Option<String>,
    /// What the field means.
    pub about: Option<String>,
    /// The default value: a string, number, boolean or null.
    pub default: Option<serde_json::Value>,
    /// Inline struct fields, for struct and struct-array types.
    pub fields: Option<Vec<FieldSpec>>,
    /// What kind of entity the field names (informational).
    pub entity_type: Option<String>,
    /// Versions in which the field may be null.
    pub nullable_versions: Option<String>,
    /// When true, writing a version without this field silently drops it.
    #[serde(default)]
    pub ignorable: bool,
    /// When true, the field is the key of the array's elements.
    #[serde(default)]
    pub map_key: bool,
    /// Versions in which the field is a tagged field.
    pub tagged_versions: Option<String>,
    /// The tag number of a tagged field.
    pub tag: Option<i64>,
    /// A per-field override of the message's flexible versions (strings and bytes only).
    pub flexible_versions: Option<String>,
    /// Zero-copy hint for bytes fields (every bytes field is zero-copy here).
    #[serde(default)]
    pub zero_copy: bool,
}

/// Removes whole-line `//` comments, which the definition files carry but JSON forbids.
///
/// Removed lines are replaced by empty lines so that JSON error positions still match the
/// file's own line numbers.
pub fn strip_comments(text: &str) -> String {
    text.lines()
        .map(|line| {
            if line.trim_start().starts_with("//") {
                ""
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Parses the text of one definition file.
pub fn parse(text: &str) -> Result<MessageSpec, serde_json::Error> {
    serde_json::from_str(&strip_comments(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_rejected() {
        let text =
            r#"{ "type": "data", "name": "X", "validVersions": "0", "bogus": 1, "fields": [] }"#;
        let err = parse(text).unwrap_err().to_string();
        assert!(err.contains("bogus"), "{err}");
        let text = r#"{ "type": "data", "name": "X", "validVersions": "0",
            "fields": [ { "name": "A", "type": "int8", "versions": "0+", "colour": "red" } ] }"#;
        assert!(parse(text).unwrap_err().to_string().contains("colour"));
    }

    #[test]
    fn comments_are_removed_keeping_line_numbers() {
        let text = "// licence\n{\n  // note\n  \"type\": \"data\", \"name\": \"X\",\n  \"validVersions\": \"0\", \"fields\": [] }";
        let spec = parse(text).unwrap();
        assert_eq!(spec.name, "X");
        assert_eq!(strip_comments(text).lines().count(), text.lines().count());
    }
}
