//! Sends an ApiVersions request to any Kafka broker and prints what it supports.
//!
//! ```text
//! cargo run --example api_versions -- localhost:9092
//! ```
//!
//! Asks at the newest version this library knows; a broker that does not support it
//! answers with UNSUPPORTED_VERSION (35) in a v0 body listing its own range (KIP-511),
//! and the example retries at the highest version both sides share.

use std::io::{Read, Write};
use std::net::TcpStream;

use bytes::{Bytes, BytesMut};
use gregor_protocol::frame::{decode_response_header, encode_request};
use gregor_protocol::messages::api_versions_request::ApiVersionsRequest;
use gregor_protocol::messages::api_versions_response::ApiVersionsResponse;
use gregor_protocol::{ApiKey, Decodable, Message};

const UNSUPPORTED_VERSION: i16 = 35;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "localhost:9092".into());
    let mut stream = TcpStream::connect(&address)?;
    let mut version = ApiVersionsRequest::VALID_VERSIONS.max;
    let response = loop {
        let response = call(&mut stream, version)?;
        if response.error_code == UNSUPPORTED_VERSION {
            // The broker's own range for ApiVersions is in the v0-shaped body.
            let theirs = response
                .api_keys
                .iter()
                .find(|k| k.api_key == ApiKey::ApiVersions.key());
            match theirs {
                Some(range) if range.max_version < version => {
                    version = range.max_version;
                    continue;
                }
                _ => return Err("broker refused every ApiVersions version".into()),
            }
        }
        break response;
    };
    println!(
        "{address} answered ApiVersions v{version} (error code {})",
        response.error_code
    );
    println!("{:<32} {:>5} {:>5}  this library", "API", "min", "max");
    for key in &response.api_keys {
        let (name, ours) = match ApiKey::from_i16(key.api_key) {
            Some(api) => {
                let valid = api.valid_versions();
                (
                    api.name().to_string(),
                    format!("{}-{}", valid.min, valid.max),
                )
            }
            None => (format!("unknown ({})", key.api_key), "-".into()),
        };
        println!(
            "{name:<32} {:>5} {:>5}  {ours}",
            key.min_version, key.max_version
        );
    }
    for feature in &response.finalized_features {
        println!("feature {} = {}", feature.name, feature.max_version_level);
    }
    Ok(())
}

/// Sends one ApiVersions request and reads its response.
fn call(
    stream: &mut TcpStream,
    version: i16,
) -> Result<ApiVersionsResponse, Box<dyn std::error::Error>> {
    let request = ApiVersionsRequest {
        client_software_name: "gregor-example".into(),
        client_software_version: env!("CARGO_PKG_VERSION").into(),
        ..Default::default()
    };
    let mut out = BytesMut::new();
    encode_request(&mut out, &request, version, 1, Some("gregor-example"))?;
    stream.write_all(&out)?;

    let mut size = [0u8; 4];
    stream.read_exact(&mut size)?;
    let size = usize::try_from(i32::from_be_bytes(size)).map_err(|_| "negative frame size")?;
    let mut frame = vec![0u8; size];
    stream.read_exact(&mut frame)?;
    let mut frame = Bytes::from(frame);
    let header = decode_response_header(&mut frame, ApiKey::ApiVersions, version)?;
    if header.correlation_id != 1 {
        return Err(format!("unexpected correlation id {}", header.correlation_id).into());
    }
    // An error response to an unsupported version is always a v0 body.
    let peek_error = frame.get(..2).map(|b| i16::from_be_bytes([b[0], b[1]]));
    let body_version = if peek_error == Some(UNSUPPORTED_VERSION) {
        0
    } else {
        version
    };
    Ok(ApiVersionsResponse::decode(&mut frame, body_version)?)
}
