//! Java properties text to key/value pairs, with the `java-properties` crate.
//!
//! Two things are done before handing the text to the crate:
//!
//! - Comment lines (first non-blank character `#` or `!`, not a continuation line) are blanked:
//!   Java ignores them, the crate unescapes them and so fails on e.g. `# C:\users`.
//! - Non-ASCII characters are written as `\uXXXX` escapes: the crate decodes bytes as
//!   ISO-8859-1/windows-1252, while our input is already a Rust string. The escapes decode
//!   back to the same characters, so keys and values come out unchanged.
//!
//! Line numbers are preserved, so the crate's syntax errors point at the right line.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use java_properties::{LineContent, PropertiesIter};

use super::ConfigError;

/// Parses properties text. A key that appears twice keeps its last value, as in Java.
pub(super) fn parse(text: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let ascii = prepare(text)?;
    let mut map = BTreeMap::new();
    for line in PropertiesIter::new(ascii.as_bytes()) {
        let line = line.map_err(|error| ConfigError::Syntax {
            line: error.line_number(),
            message: describe(&error),
        })?;
        if let LineContent::KVPair(key, value) = line.consume_content() {
            map.insert(key, value);
        }
    }
    Ok(map)
}

/// The crate's message without its ` (line_number = N)` suffix (we print the line ourselves).
fn describe(error: &java_properties::PropertiesError) -> String {
    let text = error.to_string();
    match text.find(" (line_number") {
        Some(end) => text[..end].to_string(),
        None => text,
    }
}

/// Blanks comment lines and escapes non-ASCII characters; see the module documentation.
fn prepare(text: &str) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    // Whether the previous line ended with an odd number of backslashes (a continuation).
    let mut continuing = false;
    for (index, line) in natural_lines(text).enumerate() {
        if index > 0 {
            out.push('\n');
        }
        let comment = !continuing
            && line
                .trim_start_matches([' ', '\t', '\x0c'])
                .starts_with(['#', '!']);
        if comment {
            continue;
        }
        // Whether the characters so far end with an odd number of backslashes.
        let mut escaping = false;
        for c in line.chars() {
            if c.is_ascii() {
                out.push(c);
            } else {
                let mut units = [0u16; 2];
                let units = c.encode_utf16(&mut units);
                if units.len() != 1 {
                    return Err(ConfigError::Syntax {
                        line: Some(index + 1),
                        message: format!(
                            "character {c:?} is outside the Basic Multilingual Plane (not supported)"
                        ),
                    });
                }
                // An escaped non-ASCII character (`\é`) stands for itself: reuse its backslash.
                if !escaping {
                    out.push('\\');
                }
                let _ = write!(out, "u{:04x}", units[0]);
            }
            escaping = c == '\\' && !escaping;
        }
        continuing = escaping;
    }
    Ok(out)
}

/// Lines ended by `\r\n`, `\r` or `\n`, as Java (and the crate) split them. The text after
/// the last terminator is a line too, even when empty.
fn natural_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        match current.find(['\r', '\n']) {
            Some(end) => {
                let skip = if current[end..].starts_with("\r\n") {
                    2
                } else {
                    1
                };
                rest = Some(&current[end + skip..]);
                Some(&current[..end])
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}
