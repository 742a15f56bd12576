//! A whole request frame (without its size prefix) read the way a broker reads it. Bit 0 of
//! the first byte picks header version 1 or 2 and `RequestHeader` is decoded at it directly;
//! the rest of the input is also read with `frame::decode_request_header` (which picks the
//! header version from the API key and version) and, if the API key is known and the version
//! valid, the body that follows is decoded. Must never panic. Checks: a decoded header and
//! body each round-trip (size = bytes written, same bytes into a `ChunkedBuf`, decode back
//! equal, same bytes again), and both header reads agree when they used the same header
//! version.
#![no_main]

use gregor_protocol::bytes::Bytes;
use gregor_protocol::frame::decode_request_header;
use gregor_protocol::messages::request_header::RequestHeader;
use gregor_protocol::{Decodable, Encodable, RequestBody};
use gregor_protocol_fuzz::{check_body, round_trip};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, frame)) = data.split_first() else {
        return;
    };
    let frame = Bytes::copy_from_slice(frame);

    let header_version = 1 + i16::from(selector & 1);
    let direct = RequestHeader::decode(&mut frame.clone(), header_version);
    if let Ok(header) = &direct {
        round_trip(
            &format!("RequestHeader v{header_version}"),
            header,
            |h, out| h.encode_to(out, header_version),
            Some(&|h: &RequestHeader| h.encoded_len(header_version)),
            |input| RequestHeader::decode(input, header_version),
        );
    }

    let mut rest = frame.clone();
    let Ok((key, header)) = decode_request_header(&mut rest) else {
        return;
    };
    assert_eq!(key.key(), header.request_api_key, "header decoded for the wrong API key");
    let version = header.request_api_version;
    if key.request_header_version(version) == header_version {
        assert_eq!(direct.as_ref().ok(), Some(&header), "the two header reads disagree");
    }
    if key.valid_versions().contains(version) {
        check_body::<RequestBody>(key, version, &rest);
    }
});
