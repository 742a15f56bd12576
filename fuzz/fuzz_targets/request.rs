//! `RequestBody::decode` on any bytes: the first 2 bytes pick the API key, the next 2 the
//! version (mapped into the API's valid range), the rest is the body. Must never panic; a
//! body that decodes must be the right variant, re-encode to exactly `encoded_len` bytes
//! (the same into a `ChunkedBuf`), decode back to an equal value, and re-encode to the same
//! bytes.
#![no_main]

use gregor_protocol::RequestBody;
use gregor_protocol_fuzz::{check_body, key_and_version};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut data = data;
    if let Some((key, version)) = key_and_version(&mut data) {
        check_body::<RequestBody>(key, version, data);
    }
});
