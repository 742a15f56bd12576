//! Kafka's text form of a UUID (`Uuid.toString` / `Uuid.fromString`): URL-safe base64 of
//! the 16 bytes without padding, 22 characters. Topic ids, cluster ids and directory ids
//! are printed and stored (`meta.properties`, `partition.metadata`) this way.

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use uuid::Uuid;

/// Decodes like Java's URL decoder: padding optional, unused trailing bits ignored.
const KAFKA_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// A text that is not Kafka's form of a UUID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UuidTextError {
    /// The text that was parsed (cut to 30 characters).
    pub input: String,
}

impl std::fmt::Display for UuidTextError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?} is not a base64 UUID (22 URL-safe base64 characters)",
            self.input
        )
    }
}

impl std::error::Error for UuidTextError {}

/// Kafka's text form of `id` (22 characters).
pub fn to_text(id: &Uuid) -> String {
    KAFKA_BASE64.encode(id.as_bytes())
}

/// Parses Kafka's text form: 22 characters, or 24 with `==` padding as Java accepts.
pub fn parse(text: &str) -> Result<Uuid, UuidTextError> {
    let fail = || UuidTextError {
        input: text.chars().take(30).collect(),
    };
    if text.len() > 24 {
        return Err(fail());
    }
    let bytes = KAFKA_BASE64.decode(text).map_err(|_| fail())?;
    let bytes: [u8; 16] = bytes.try_into().map_err(|_| fail())?;
    Ok(Uuid::from_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_forms() {
        // Kafka's METADATA_TOPIC_ID (0, 1) prints as AAAAAAAAAAAAAAAAAAAAAQ.
        let id = Uuid::from_u64_pair(0, 1);
        assert_eq!(to_text(&id), "AAAAAAAAAAAAAAAAAAAAAQ");
        assert_eq!(parse("AAAAAAAAAAAAAAAAAAAAAQ"), Ok(id));
        assert_eq!(parse("AAAAAAAAAAAAAAAAAAAAAQ=="), Ok(id));
        // Unused bits of the last character are ignored, as Java's decoder does.
        assert_eq!(parse("AAAAAAAAAAAAAAAAAAAAAR"), Ok(id));
        let random = Uuid::from_bytes([0xfb; 16]);
        assert_eq!(parse(&to_text(&random)), Ok(random));
        for bad in [
            "",
            "AAAA",
            "AAAAAAAAAAAAAAAAAAAAA*",
            "AAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
