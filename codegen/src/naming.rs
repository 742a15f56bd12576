//! Every naming rule in one place: module, type, field and variant identifiers.

use heck::ToSnakeCase;
use proc_macro2::{Ident, Span};

/// Acronyms that the definitions spell in mixed case and that snake case would split.
const ACRONYMS: &[(&str, &str)] = &[("KRaft", "Kraft")];

/// Words that cannot be raw identifiers either; these get a trailing underscore.
const NOT_RAW: &[&str] = &["self", "Self", "super", "crate", "extern"];

/// The snake-case form of a definition name, with acronyms kept whole.
pub fn snake(name: &str) -> String {
    let mut text = name.to_string();
    for (acronym, word) in ACRONYMS {
        text = text.replace(acronym, word);
    }
    text.to_snake_case()
}

/// The identifier of a struct field or module, escaped when it is a Rust keyword.
pub fn field_ident(name: &str) -> Ident {
    let snake = snake(name);
    if NOT_RAW.contains(&snake.as_str()) {
        Ident::new(&format!("{snake}_"), Span::call_site())
    } else if syn::parse_str::<Ident>(&snake).is_err() {
        Ident::new_raw(&snake, Span::call_site())
    } else {
        Ident::new(&snake, Span::call_site())
    }
}

/// The identifier of the module generated for a definition.
pub fn module_ident(message_name: &str) -> Ident {
    field_ident(message_name)
}

/// The identifier of a type (struct or enum), as written in the definitions.
pub fn type_ident(name: &str) -> Ident {
    Ident::new(name, Span::call_site())
}

/// An identifier from a fixed string.
pub fn ident(name: &str) -> Ident {
    Ident::new(name, Span::call_site())
}

/// The variant name for a message in an enum, without the given suffix
/// (`MetadataRequest` -> `Metadata`, `TopicRecord` -> `Topic`).
pub fn variant_ident(name: &str, suffix: &str) -> Ident {
    let stem = name
        .strip_suffix(suffix)
        .filter(|s| !s.is_empty())
        .unwrap_or(name);
    type_ident(stem)
}

/// Upper camel case of a directory name (`group-coordinator` -> `GroupCoordinator`).
pub fn camel_from_dir(dir: &str) -> String {
    use heck::ToUpperCamelCase;
    dir.to_upper_camel_case()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_keeps_acronyms() {
        assert_eq!(snake("KRaftVersionRecord"), "kraft_version_record");
        assert_eq!(snake("MetadataResponse"), "metadata_response");
        assert_eq!(snake("ApiVersions"), "api_versions");
        assert_eq!(snake("group"), "group");
    }

    #[test]
    fn keywords_are_escaped() {
        assert_eq!(field_ident("Type").to_string(), "r#type");
        assert_eq!(field_ident("Match").to_string(), "r#match");
        assert_eq!(field_ident("Self").to_string(), "self_");
        assert_eq!(field_ident("TopicName").to_string(), "topic_name");
    }

    #[test]
    fn variants_drop_suffixes() {
        assert_eq!(
            variant_ident("MetadataRequest", "Request").to_string(),
            "Metadata"
        );
        assert_eq!(variant_ident("TopicRecord", "Record").to_string(), "Topic");
        assert_eq!(variant_ident("Record", "Record").to_string(), "Record");
        assert_eq!(camel_from_dir("group-coordinator"), "GroupCoordinator");
    }
}
