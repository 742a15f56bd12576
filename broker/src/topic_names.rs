//! Kafka's rules for topic names: legal characters, length, and the internal topics.

/// Longest legal topic name (Kafka's limit, leaving room for the partition suffix in the
/// directory name).
pub const MAX_LENGTH: usize = 249;

/// Topics Kafka treats as internal.
pub const INTERNAL_TOPICS: &[&str] = &[
    "__consumer_offsets",
    "__transaction_state",
    "__share_group_state",
];

/// Why a name is not a legal topic name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvalidName {
    /// The name is empty.
    Empty,
    /// `.` and `..` are not allowed.
    Dots,
    /// Longer than [`MAX_LENGTH`].
    TooLong(usize),
    /// A character outside `[a-zA-Z0-9._-]`.
    IllegalCharacter(char),
}

impl std::fmt::Display for InvalidName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => f.write_str("topic name is empty"),
            Self::Dots => f.write_str("topic name cannot be \".\" or \"..\""),
            Self::TooLong(len) => write!(
                f,
                "topic name is {len} characters long; the limit is {MAX_LENGTH}"
            ),
            Self::IllegalCharacter(c) => {
                write!(
                    f,
                    "topic name contains {c:?}; legal characters are ASCII letters, digits, '.', '_' and '-'"
                )
            }
        }
    }
}

/// Checks a topic name against Kafka's rules.
pub fn validate(name: &str) -> Result<(), InvalidName> {
    if name.is_empty() {
        return Err(InvalidName::Empty);
    }
    if name == "." || name == ".." {
        return Err(InvalidName::Dots);
    }
    if name.len() > MAX_LENGTH {
        return Err(InvalidName::TooLong(name.len()));
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        Some(c) => Err(InvalidName::IllegalCharacter(c)),
        None => Ok(()),
    }
}

/// True for Kafka's internal topics.
pub fn is_internal(name: &str) -> bool {
    INTERNAL_TOPICS.contains(&name)
}

/// `.` and `_` collide in metric names, so Kafka refuses a topic whose name differs from an
/// existing one only by them.
pub fn collision_key(name: &str) -> String {
    name.replace('.', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legal_and_illegal_names() {
        assert!(validate("events.v2_x-1").is_ok());
        assert_eq!(validate(""), Err(InvalidName::Empty));
        assert_eq!(validate(".."), Err(InvalidName::Dots));
        assert_eq!(validate(&"a".repeat(250)), Err(InvalidName::TooLong(250)));
        assert!(validate(&"a".repeat(249)).is_ok());
        assert_eq!(validate("a b"), Err(InvalidName::IllegalCharacter(' ')));
        assert_eq!(validate("é"), Err(InvalidName::IllegalCharacter('é')));
    }

    #[test]
    fn internal_and_collisions() {
        assert!(is_internal("__consumer_offsets"));
        assert!(!is_internal("consumer_offsets"));
        assert_eq!(collision_key("a.b"), collision_key("a_b"));
    }
}
