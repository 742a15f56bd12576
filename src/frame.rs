//! Framing of requests and responses on a connection: an int32 size, the header (whose
//! version follows from the API key and version), then the body.

use bytes::Bytes;

use crate::ApiKey;
use crate::error::{DecodeError, DecodeErrorKind, EncodeError};
use crate::message::{Decodable, Encodable, Request};
use crate::messages::request_header::RequestHeader;
use crate::messages::response_header::ResponseHeader;
use crate::write_buf::WriteBuf;

/// Appends a whole request frame (size, header, body) for `body` at `version`.
pub fn encode_request<R: Request>(
    buf: &mut impl WriteBuf,
    body: &R,
    version: i16,
    correlation_id: i32,
    client_id: Option<&str>,
) -> Result<(), EncodeError> {
    let header = RequestHeader {
        request_api_key: R::API_KEY.key(),
        request_api_version: version,
        correlation_id,
        client_id: client_id.map(Into::into),
        ..Default::default()
    };
    let header_version = R::API_KEY.request_header_version(version);
    let size = header.encoded_len(header_version) + body.encoded_len(version);
    buf.reserve_hint(4 + size);
    write_size(buf, size)?;
    header.encode_to(buf, header_version)?;
    body.encode_to(buf, version)
}

/// Appends a whole response frame (size, header, body) answering `correlation_id`.
///
/// With a [`crate::ChunkedBuf`], large `records` in the body are not copied.
pub fn encode_response<B: Encodable>(
    buf: &mut impl WriteBuf,
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &B,
) -> Result<(), EncodeError> {
    let header = ResponseHeader {
        correlation_id,
        ..Default::default()
    };
    let header_version = api_key.response_header_version(version);
    let size = header.encoded_len(header_version) + body.encoded_len(version);
    write_size(buf, size)?;
    header.encode_to(buf, header_version)?;
    body.encode_to(buf, version)
}

fn write_size(buf: &mut impl WriteBuf, size: usize) -> Result<(), EncodeError> {
    let size = i32::try_from(size).map_err(|_| EncodeError::TooLong {
        field: "frame",
        length: size,
    })?;
    buf.put_slice(&size.to_be_bytes());
    Ok(())
}

/// The API key and version at the front of a request frame's header (after the size),
/// without consuming anything. Needed to pick the header version.
pub fn peek_request_api(frame: &[u8]) -> Option<(i16, i16)> {
    let key = i16::from_be_bytes(frame.get(0..2)?.try_into().ok()?);
    let version = i16::from_be_bytes(frame.get(2..4)?.try_into().ok()?);
    Some((key, version))
}

/// Decodes the header of a request frame (without its size prefix) whose API key is
/// known, leaving `frame` at the start of the body.
pub fn decode_request_header(frame: &mut Bytes) -> Result<(ApiKey, RequestHeader), DecodeError> {
    let (key, version) = peek_request_api(frame).ok_or_else(|| {
        DecodeError::new(
            DecodeErrorKind::Truncated {
                needed: 4 - frame.len(),
            },
            frame.len(),
        )
    })?;
    let api_key = ApiKey::from_i16(key).ok_or_else(|| {
        DecodeError::new(DecodeErrorKind::UnknownApiKey(key), frame.len()).finish(frame.len())
    })?;
    let header = RequestHeader::decode(frame, api_key.request_header_version(version))?;
    Ok((api_key, header))
}

/// Decodes the header of a response frame (without its size prefix) to a request of
/// `api_key` at `version`, leaving `frame` at the start of the body.
pub fn decode_response_header(
    frame: &mut Bytes,
    api_key: ApiKey,
    version: i16,
) -> Result<ResponseHeader, DecodeError> {
    ResponseHeader::decode(frame, api_key.response_header_version(version))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::api_versions_request::ApiVersionsRequest;
    use crate::messages::api_versions_response::ApiVersionsResponse;
    use crate::messages::metadata_request::MetadataRequest;
    use bytes::BytesMut;

    #[test]
    fn request_frames_carry_size_and_header() {
        let mut buf = BytesMut::new();
        encode_request(&mut buf, &MetadataRequest::default(), 12, 7, Some("me")).unwrap();
        let size = i32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
        assert_eq!(size, buf.len() - 4);
        let mut frame = buf.freeze().slice(4..);
        let (api_key, header) = decode_request_header(&mut frame).unwrap();
        assert_eq!(api_key, ApiKey::Metadata);
        assert_eq!((header.request_api_version, header.correlation_id), (12, 7));
        assert_eq!(header.client_id.as_deref(), Some("me"));
        assert_eq!(
            MetadataRequest::decode(&mut frame, 12).unwrap(),
            MetadataRequest::default()
        );
    }

    #[test]
    fn api_versions_responses_use_header_v0() {
        let mut buf = BytesMut::new();
        encode_response(
            &mut buf,
            ApiKey::ApiVersions,
            3,
            9,
            &ApiVersionsResponse::default(),
        )
        .unwrap();
        // size, correlation id, then the body straight away: no tag buffer in the header.
        assert_eq!(&buf[4..8], &9i32.to_be_bytes());
        let mut body = buf.freeze().slice(8..);
        ApiVersionsResponse::decode(&mut body, 3).unwrap();
        assert!(body.is_empty());
        // The request header of ApiVersions v3 is v2 (flexible).
        assert_eq!(ApiKey::ApiVersions.request_header_version(3), 2);
        assert_eq!(ApiKey::ApiVersions.request_header_version(2), 1);
        let mut buf = BytesMut::new();
        encode_request(&mut buf, &ApiVersionsRequest::default(), 3, 1, None).unwrap();
        assert_eq!(
            &buf[4..],
            &[0, 18, 0, 3, 0, 0, 0, 1, 0xff, 0xff, 0, 1, 1, 0][..]
        );
    }
}
