//! The JSON the real clients print (kcat `-J`, the Python drivers), read with serde_json.

/// A parsed JSON value.
pub type Json = serde_json::Value;

/// The few reading helpers the tests use on top of `serde_json::Value`.
pub trait JsonExt: Sized {
    /// Parses one JSON document.
    fn parse(text: &str) -> Result<Self, serde_json::Error>;
    /// Parses one document per non-empty line.
    fn parse_lines(text: &str) -> Result<Vec<Self>, serde_json::Error>;
    /// The member `key` of an object (`null` when absent).
    fn field(&self, key: &str) -> &Self;
}

impl JsonExt for Json {
    fn parse(text: &str) -> Result<Json, serde_json::Error> {
        serde_json::from_str(text)
    }

    fn parse_lines(text: &str) -> Result<Vec<Json>, serde_json::Error> {
        text.lines()
            .filter(|line| !line.trim().is_empty())
            .map(serde_json::from_str)
            .collect()
    }

    fn field(&self, key: &str) -> &Json {
        &self[key]
    }
}
