//! Errors of the message codecs. Decode errors say what went wrong, at which byte, and in
//! which field; encode errors say which field cannot be written at which version.

use std::fmt;

/// What went wrong while decoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// The input ended early: `needed` more bytes were required.
    Truncated {
        /// Bytes required by the value being read.
        needed: usize,
    },
    /// A length prefix was negative and not the null marker.
    NegativeLength(i64),
    /// A length prefix points past the end of the input.
    LengthPastEnd {
        /// The declared length (bytes or elements).
        length: usize,
        /// Bytes left in the input.
        remaining: usize,
    },
    /// A string was not valid UTF-8.
    InvalidUtf8,
    /// A null value in a field (or version) that cannot be null.
    UnexpectedNull,
    /// A varint was malformed or too long.
    InvalidVarint,
    /// A known tagged field did not fill exactly the size its header declared.
    TaggedFieldSize {
        /// The tag.
        tag: u32,
        /// The size in the tag header.
        declared: usize,
        /// The bytes the field's value took.
        consumed: usize,
    },
    /// The message has no such version.
    UnsupportedVersion {
        /// The message name.
        message: &'static str,
        /// The requested version.
        version: i16,
    },
    /// A record or frame type that no definition describes.
    UnknownRecordType(i16),
    /// An API key that no definition describes.
    UnknownApiKey(i16),
    /// A record frame version other than the one Kafka writes.
    UnsupportedFrameVersion(u32),
    /// Bytes left over after a value that should fill its input.
    TrailingBytes(usize),
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { needed } => write!(f, "input truncated ({needed} more bytes needed)"),
            Self::NegativeLength(len) => write!(f, "negative length {len}"),
            Self::LengthPastEnd { length, remaining } => {
                write!(f, "length {length} exceeds the {remaining} bytes remaining")
            }
            Self::InvalidUtf8 => f.write_str("string is not valid UTF-8"),
            Self::UnexpectedNull => f.write_str("null in a field that cannot be null"),
            Self::InvalidVarint => f.write_str("malformed varint"),
            Self::TaggedFieldSize {
                tag,
                declared,
                consumed,
            } => {
                write!(
                    f,
                    "tagged field {tag} declared {declared} bytes but its value took {consumed}"
                )
            }
            Self::UnsupportedVersion { message, version } => {
                write!(f, "{message} has no version {version}")
            }
            Self::UnknownRecordType(t) => write!(f, "unknown record type {t}"),
            Self::UnknownApiKey(key) => write!(f, "unknown API key {key}"),
            Self::UnsupportedFrameVersion(v) => write!(f, "unsupported record frame version {v}"),
            Self::TrailingBytes(n) => write!(f, "{n} unexpected bytes after the value"),
        }
    }
}

/// Where in the input the error happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Position {
    /// Bytes that were left in the buffer (before the offset is known).
    Remaining(usize),
    /// Offset from the start of the decoded value.
    Offset(usize),
}

/// A decoding failure: what, at which byte, and in which field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    kind: DecodeErrorKind,
    position: Position,
    /// Field paths, innermost first.
    path: Vec<&'static str>,
}

impl DecodeError {
    /// An error of `kind` with `remaining` bytes left in the input.
    pub fn new(kind: DecodeErrorKind, remaining: usize) -> Self {
        DecodeError {
            kind,
            position: Position::Remaining(remaining),
            path: Vec::new(),
        }
    }

    /// The message has no such version.
    pub fn unsupported_version(message: &'static str, version: i16) -> Self {
        DecodeError::new(DecodeErrorKind::UnsupportedVersion { message, version }, 0).with_offset(0)
    }

    /// A record type no definition describes.
    pub fn unknown_record_type(record_type: i16) -> Self {
        DecodeError::new(DecodeErrorKind::UnknownRecordType(record_type), 0)
    }

    fn with_offset(mut self, offset: usize) -> Self {
        self.position = Position::Offset(offset);
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> &DecodeErrorKind {
        &self.kind
    }

    /// The byte offset from the start of the decoded value, once known.
    pub fn offset(&self) -> Option<usize> {
        match self.position {
            Position::Offset(offset) => Some(offset),
            Position::Remaining(_) => None,
        }
    }

    /// The fields being read, outermost first (e.g. `MetadataResponse.topics`).
    pub fn path(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.path.iter().rev().copied()
    }

    /// Adds the field being read (called by generated code on the way out).
    #[doc(hidden)]
    pub fn at(mut self, field: &'static str) -> Self {
        if self.path.last() != Some(&field) {
            self.path.push(field);
        }
        self
    }

    /// Turns "bytes remaining" into an offset from the start, given the input length when
    /// decoding began. Only the outermost call has any effect.
    #[doc(hidden)]
    pub fn finish(self, start_len: usize) -> Self {
        match self.position {
            Position::Remaining(remaining) => {
                let offset = start_len.saturating_sub(remaining);
                self.with_offset(offset)
            }
            Position::Offset(_) => self,
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if let Some(offset) = self.offset() {
            write!(f, " at byte {offset}")?;
        }
        let mut path = self.path().peekable();
        if path.peek().is_some() {
            f.write_str(" in ")?;
            for (i, field) in path.enumerate() {
                if i > 0 {
                    f.write_str(" > ")?;
                }
                f.write_str(field)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for DecodeError {}

/// An encoding failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// The message has no such version.
    UnsupportedVersion {
        /// The message name.
        message: &'static str,
        /// The requested version.
        version: i16,
    },
    /// A field holds a non-default value but the version does not have it (and the field
    /// is not ignorable), so writing would silently lose data.
    NonDefaultField {
        /// `Struct.field`.
        field: &'static str,
        /// The version being written.
        version: i16,
    },
    /// A field is null in a version where it cannot be.
    NullNotAllowed {
        /// `Struct.field`.
        field: &'static str,
        /// The version being written.
        version: i16,
    },
    /// A string, byte array or array is too long for its length prefix.
    TooLong {
        /// `Struct.field`, when known.
        field: &'static str,
        /// The length that did not fit.
        length: usize,
    },
}

impl EncodeError {
    /// The message has no such version.
    pub fn unsupported_version(message: &'static str, version: i16) -> Self {
        EncodeError::UnsupportedVersion { message, version }
    }

    /// A field with a non-default value that the version lacks.
    pub fn non_default_field(field: &'static str, version: i16) -> Self {
        EncodeError::NonDefaultField { field, version }
    }

    /// A null in a non-nullable version.
    pub fn null_not_allowed(field: &'static str, version: i16) -> Self {
        EncodeError::NullNotAllowed { field, version }
    }

    /// Names the field being written, if not yet named (called by generated code).
    #[doc(hidden)]
    pub fn at(self, path: &'static str) -> Self {
        match self {
            EncodeError::TooLong { field: "", length } => EncodeError::TooLong {
                field: path,
                length,
            },
            other => other,
        }
    }
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnsupportedVersion { message, version } => {
                write!(f, "{message} has no version {version}")
            }
            Self::NonDefaultField { field, version } => {
                write!(
                    f,
                    "{field} has a non-default value but version {version} does not have the field"
                )
            }
            Self::NullNotAllowed { field, version } => {
                write!(f, "{field} is null but cannot be null in version {version}")
            }
            Self::TooLong { field, length } => {
                write!(f, "{field}: length {length} does not fit its length prefix")
            }
        }
    }
}

impl std::error::Error for EncodeError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_errors_read_outermost_first() {
        let err = DecodeError::new(DecodeErrorKind::Truncated { needed: 4 }, 3)
            .at("Partition.leader_id")
            .at("Topic.partitions")
            .finish(20);
        assert_eq!(err.offset(), Some(17));
        assert_eq!(
            err.to_string(),
            "input truncated (4 more bytes needed) at byte 17 in Topic.partitions > Partition.leader_id"
        );
        // Only the outermost finish counts.
        assert_eq!(err.clone().finish(100).offset(), Some(17));
    }
}
