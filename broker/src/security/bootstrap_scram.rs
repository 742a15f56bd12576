//! SCRAM credentials written when the metadata log is formatted, as Kafka's
//! `kafka-storage format --add-scram 'SCRAM-SHA-512=[name=alice,password=alice-secret]'`
//! puts `UserScramCredentialRecord`s into the bootstrap metadata.
//!
//! This broker formats its metadata log itself on first start, so the same entries go in
//! the configuration key `gregor.bootstrap.scram`, several separated by spaces or `;`:
//!
//! ```text
//! gregor.bootstrap.scram=SCRAM-SHA-512=[name=admin,password=admin-secret] SCRAM-SHA-256=[name=alice,password="a,b",iterations=8192]
//! ```
//!
//! As in Kafka's `ScramParser`: `name`, `password` (hashed here with a random salt) and
//! optionally `iterations` (default 4096, within 4096..=16384). Kafka's `salt` and
//! `saltedpassword` fields are not accepted. Values may be quoted with `"` (needed for a
//! `,` or `]`). The key is read only when the log is first
//! formatted; later changes go through AlterUserScramCredentials.

use bytes::Bytes;
use gregor_protocol::messages::user_scram_credential_record::UserScramCredentialRecord;

use super::sasl::ScramMechanism;
use super::sasl::scram::{MAX_ITERATIONS, credential_from_password};

/// One credential to bootstrap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapCredential {
    /// The mechanism.
    pub mechanism: ScramMechanism,
    /// The user.
    pub name: String,
    /// The password.
    pub password: String,
    /// PBKDF2 iterations.
    pub iterations: i32,
}

/// Parses the value of `gregor.bootstrap.scram`.
pub fn parse(text: &str) -> Result<Vec<BootstrapCredential>, String> {
    let mut out = Vec::new();
    let mut rest = text.trim_start_matches(|c: char| c.is_whitespace() || c == ';');
    while !rest.is_empty() {
        let (mechanism, after) = rest
            .split_once("=[")
            .ok_or_else(|| format!("expected MECHANISM=[name=...,password=...] at {rest:?}"))?;
        let mechanism = ScramMechanism::from_name(mechanism.trim()).ok_or_else(|| {
            format!("unknown SCRAM mechanism {mechanism:?} (SCRAM-SHA-256 or SCRAM-SHA-512)")
        })?;
        // The bracket's content, with quoted values kept whole.
        let mut fields: Vec<(String, String)> = Vec::new();
        let mut chars = after.char_indices().peekable();
        let mut key = String::new();
        let mut value = String::new();
        let mut in_value = false;
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '"' if in_value && value.is_empty() => {
                    for (_, q) in chars.by_ref() {
                        if q == '"' {
                            break;
                        }
                        value.push(q);
                    }
                }
                '=' if !in_value => in_value = true,
                ',' | ']' => {
                    if !key.trim().is_empty() || in_value {
                        if !in_value {
                            return Err(format!("expected key=value, found {key:?}"));
                        }
                        fields.push((key.trim().to_ascii_lowercase(), std::mem::take(&mut value)));
                    }
                    key.clear();
                    in_value = false;
                    if c == ']' {
                        end = Some(i + 1);
                        break;
                    }
                }
                c if in_value => value.push(c),
                c => key.push(c),
            }
        }
        let end = end.ok_or_else(|| "missing ] after the credential's fields".to_string())?;
        let field = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        if let Some((unknown, _)) = fields
            .iter()
            .find(|(k, _)| !matches!(k.as_str(), "name" | "password" | "iterations"))
        {
            return Err(format!(
                "unknown field {unknown:?} (expected name, password and optionally iterations)"
            ));
        }
        let name = field("name")
            .filter(|n| !n.is_empty())
            .ok_or_else(|| "a credential needs name=".to_string())?;
        let password = field("password")
            .filter(|p| !p.is_empty())
            .ok_or_else(|| format!("the credential of {name} needs password="))?;
        let iterations = match field("iterations") {
            None => 4096,
            Some(text) => text
                .trim()
                .parse::<i32>()
                .map_err(|_| format!("invalid iterations {text:?}"))?,
        };
        if iterations < mechanism.min_iterations() || iterations > MAX_ITERATIONS {
            return Err(format!(
                "iterations {iterations} for {name} outside {}..={MAX_ITERATIONS}",
                mechanism.min_iterations()
            ));
        }
        out.push(BootstrapCredential {
            mechanism,
            name,
            password,
            iterations,
        });
        rest = after[end..].trim_start_matches(|c: char| c.is_whitespace() || c == ';' || c == ',');
    }
    Ok(out)
}

/// The records of `credentials`, each with a fresh random salt.
pub fn records(credentials: &[BootstrapCredential]) -> Vec<UserScramCredentialRecord> {
    credentials
        .iter()
        .map(|c| {
            let credential = credential_from_password(c.mechanism, &c.password, c.iterations);
            UserScramCredentialRecord {
                name: c.name.as_str().into(),
                mechanism: c.mechanism.type_code(),
                salt: Bytes::from(credential.salt),
                stored_key: Bytes::from(credential.stored_key),
                server_key: Bytes::from(credential.server_key),
                iterations: c.iterations,
                ..Default::default()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_storage_syntax_parses() {
        let parsed = parse(
            "SCRAM-SHA-512=[name=admin,password=admin-secret] ; \
             SCRAM-SHA-256=[name=alice,password=\"a,b]c\",iterations=8192]",
        )
        .unwrap();
        assert_eq!(
            parsed,
            [
                BootstrapCredential {
                    mechanism: ScramMechanism::Sha512,
                    name: "admin".into(),
                    password: "admin-secret".into(),
                    iterations: 4096
                },
                BootstrapCredential {
                    mechanism: ScramMechanism::Sha256,
                    name: "alice".into(),
                    password: "a,b]c".into(),
                    iterations: 8192
                },
            ]
        );
        assert_eq!(records(&parsed).len(), 2);
    }

    #[test]
    fn bad_entries_are_refused() {
        assert!(
            parse("SCRAM-SHA-1=[name=a,password=b]")
                .unwrap_err()
                .contains("unknown SCRAM")
        );
        assert!(
            parse("SCRAM-SHA-512=[name=a]")
                .unwrap_err()
                .contains("password")
        );
        assert!(
            parse("SCRAM-SHA-512=[password=b]")
                .unwrap_err()
                .contains("name")
        );
        assert!(parse("SCRAM-SHA-512=[name=a,password=b,iterations=10]").is_err());
        assert!(
            parse("SCRAM-SHA-512=[name=a,password=b")
                .unwrap_err()
                .contains("missing ]")
        );
        assert!(parse("SCRAM-SHA-512=[name=a,password=b,salt=x]").is_err());
        assert!(parse("alice").is_err());
    }
}
