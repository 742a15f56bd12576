//! `gregor-protocol`: every Kafka message, every version, byte-exact.
//!
//! The message types are generated at build time from Apache Kafka's JSON definitions in
//! `schemas/` (or the directories in `GREGOR_SCHEMAS`) by `gregor-codegen`; this crate adds
//! the runtime they call ([`codec`], [`error`], [`message`]), record batches ([`records`])
//! and the framing of KRaft metadata records ([`metadata_frame`]).
//!
//! ```
//! use bytes::{Bytes, BytesMut};
//! use gregor_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
//! use gregor_protocol::{Decodable, Encodable};
//!
//! let request = MetadataRequest {
//!     topics: Some(vec![MetadataRequestTopic { name: Some("events".into()), ..Default::default() }]),
//!     ..Default::default()
//! };
//! let mut buf = BytesMut::new();
//! request.encode(&mut buf, 12).unwrap();
//! assert_eq!(buf.len(), request.encoded_len(12));
//! let decoded = MetadataRequest::decode(&mut buf.freeze(), 12).unwrap();
//! assert_eq!(decoded, request);
//! ```

pub mod codec;
pub mod error;
pub mod error_code;
pub mod frame;
pub mod kip896;
pub mod message;
pub mod metadata_frame;
pub mod records;
pub mod uuid_text;
pub mod varint;
pub mod write_buf;

#[cfg(feature = "proptest")]
pub mod arbitrary;

pub use bytes;
pub use bytestring::ByteString;
pub use codec::RawTaggedField;
pub use error::{DecodeError, DecodeErrorKind, EncodeError};
pub use error_code::ErrorCode;
pub use message::{Decodable, Encodable, Message, Request, VersionRange};
pub use uuid::Uuid;
pub use write_buf::{ChunkedBuf, WriteBuf};

/// Names the generated code imports in every module.
#[doc(hidden)]
pub mod generated_prelude {
    #[cfg(feature = "proptest")]
    pub use crate::arbitrary::prelude::*;
    pub use crate::codec::{self, RawTaggedField};
    pub use crate::error::{DecodeError, EncodeError};
    pub use crate::message::{Decodable, Encodable, Message, Request, StructCodec, VersionRange};
    pub use crate::write_buf::WriteBuf;
    pub use bytes::{Bytes, BytesMut};
    pub use bytestring::ByteString;
    pub use uuid::Uuid;
}

/// Every generated message module (one per definition file), the `ApiKey` enum, the
/// request/response body enums and the record enums.
// Structs whose fields are the same in every version never look at `version`.
#[allow(unused_variables, clippy::all, clippy::pedantic)]
pub mod messages {
    use crate::generated_prelude::*;
    include!(concat!(env!("OUT_DIR"), "/messages.rs"));
}

pub use messages::{ApiKey, MetadataRecord, RequestBody, ResponseBody};
