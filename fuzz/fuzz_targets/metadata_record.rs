//! `MetadataRecord::decode_framed` on any bytes (a record value of the KRaft
//! `__cluster_metadata` log). Must never panic; a record that decodes must re-frame with
//! `encode_framed` to exactly `framed_len` bytes (the same into a `ChunkedBuf`), decode back
//! to the same version and an equal record, and re-frame to the same bytes.
#![no_main]

use gregor_protocol::MetadataRecord;
use gregor_protocol::bytes::Bytes;
use gregor_protocol::metadata_frame::VersionedRecord;
use gregor_protocol_fuzz::round_trip;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(decoded) = MetadataRecord::decode_framed(&mut Bytes::copy_from_slice(data)) else {
        return;
    };
    round_trip(
        &format!("metadata record type {} v{}", decoded.record.record_type(), decoded.version),
        &decoded,
        |r, out| r.record.encode_framed(out, r.version),
        Some(&|r: &VersionedRecord| r.record.framed_len(r.version)),
        MetadataRecord::decode_framed,
    );
});
