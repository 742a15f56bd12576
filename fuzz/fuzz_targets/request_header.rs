//! A whole request frame (without its size prefix) read the way a broker reads it: the first
//! byte picks header version 1 or 2 (bit 0), then `RequestHeader` is decoded; if its API key
//! is known, its version valid and the header version the one that API version uses, the
//! rest is decoded as that request's body. Must never panic; a decoded header and body must
//! each round-trip (size = bytes written, decode back equal, same bytes again).
#![no_main]

use gregor_protocol::bytes::Bytes;
use gregor_protocol::messages::request_header::RequestHeader;
use gregor_protocol::{ApiKey, Decodable, Encodable, RequestBody};
use gregor_protocol_fuzz::{check_body, round_trip};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, frame)) = data.split_first() else {
        return;
    };
    let header_version = 1 + i16::from(selector & 1);
    let mut buf = Bytes::copy_from_slice(frame);
    let Ok(header) = RequestHeader::decode(&mut buf, header_version) else {
        return;
    };
    round_trip(
        &format!("RequestHeader v{header_version}"),
        &header,
        |h, out| h.encode(out, header_version),
        Some(&|h: &RequestHeader| h.encoded_len(header_version)),
        |input| RequestHeader::decode(input, header_version),
    );
    let Some(key) = ApiKey::from_i16(header.request_api_key) else {
        return;
    };
    let version = header.request_api_version;
    if !key.valid_versions().contains(version) || key.request_header_version(version) != header_version {
        return;
    }
    check_body::<RequestBody>(key, version, &buf);
});
