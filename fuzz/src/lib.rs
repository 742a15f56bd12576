//! Helpers shared by the fuzz targets in `fuzz_targets/`: turning fuzz input into an API key
//! and version, and the round-trip checks every successful decode is put through.

use std::fmt::Debug;

use gregor_protocol::bytes::{Bytes, BytesMut};
use gregor_protocol::{
    ApiKey, ChunkedBuf, DecodeError, Encodable, EncodeError, RequestBody, ResponseBody, WriteBuf,
};

/// Reads a big-endian `i16` from the front of `data`, advancing it.
pub fn take_i16(data: &mut &[u8]) -> Option<i16> {
    let (head, rest) = data.split_first_chunk::<2>()?;
    *data = rest;
    Some(i16::from_be_bytes(*head))
}

/// An API key for any `i16`: the key itself if known, otherwise one picked by it.
pub fn api_key(raw: i16) -> ApiKey {
    ApiKey::from_i16(raw).unwrap_or(ApiKey::ALL[raw as u16 as usize % ApiKey::ALL.len()])
}

/// A version of `key` for any `i16`: the version itself if valid, otherwise one in range.
pub fn version(key: ApiKey, raw: i16) -> Option<i16> {
    let range = key.valid_versions();
    if range.is_empty() {
        return None;
    }
    if range.contains(raw) {
        return Some(raw);
    }
    let span = i32::from(range.max) - i32::from(range.min) + 1;
    Some((i32::from(range.min) + i32::from(raw as u16) % span) as i16)
}

/// Splits the front of `data` into an API key and a valid version of it (4 bytes).
pub fn key_and_version(data: &mut &[u8]) -> Option<(ApiKey, i16)> {
    let key = api_key(take_i16(data)?);
    let version = version(key, take_i16(data)?)?;
    Some((key, version))
}

/// Equality that treats values whose debug forms agree as equal (a NaN float field makes
/// `==` false for identical values; the byte comparison in [`round_trip`] still checks
/// the bits).
pub fn same<T: PartialEq + Debug>(a: &T, b: &T) -> bool {
    a == b || format!("{a:?}") == format!("{b:?}")
}

/// Where [`round_trip`] has values encoded: a flat `BytesMut`, or a [`ChunkedBuf`] that
/// shares values of [`MIN_SHARED`] bytes or more as chunks of their own.
pub enum Out {
    /// One contiguous buffer.
    Flat(BytesMut),
    /// A list of chunks.
    Chunked(ChunkedBuf),
}

/// The sharing threshold of the [`ChunkedBuf`] (low, so that sharing happens often).
pub const MIN_SHARED: usize = 2;

impl WriteBuf for Out {
    fn put_slice(&mut self, bytes: &[u8]) {
        match self {
            Out::Flat(buf) => WriteBuf::put_slice(buf, bytes),
            Out::Chunked(buf) => buf.put_slice(bytes),
        }
    }

    fn put_shared(&mut self, bytes: &Bytes) {
        match self {
            Out::Flat(buf) => buf.put_shared(bytes),
            Out::Chunked(buf) => buf.put_shared(bytes),
        }
    }

    fn put_u8(&mut self, value: u8) {
        match self {
            Out::Flat(buf) => WriteBuf::put_u8(buf, value),
            Out::Chunked(buf) => buf.put_u8(value),
        }
    }
}

/// Encodes `value` with `encode` into a flat buffer.
fn flat<T>(value: &T, encode: &impl Fn(&T, &mut Out) -> Result<(), EncodeError>) -> Result<Bytes, EncodeError> {
    let mut out = Out::Flat(BytesMut::new());
    encode(value, &mut out)?;
    match out {
        Out::Flat(buf) => Ok(buf.freeze()),
        Out::Chunked(_) => unreachable!(),
    }
}

/// Checks what a successfully decoded `value` must satisfy:
///
/// * it encodes again (anything the decoder accepts, the encoder can write);
/// * `len`, when given, equals the number of bytes written;
/// * encoding into a [`ChunkedBuf`] gives the same bytes, as chunks, and the same length;
/// * decoding those bytes consumes all of them and gives an equal value;
/// * encoding that value gives the same bytes (the encoding is a fixed point).
///
/// `what` names the value in assertion messages.
pub fn round_trip<T: PartialEq + Debug>(
    what: &str,
    value: &T,
    encode: impl Fn(&T, &mut Out) -> Result<(), EncodeError>,
    len: Option<&dyn Fn(&T) -> usize>,
    decode: impl Fn(&mut Bytes) -> Result<T, DecodeError>,
) {
    let first = match flat(value, &encode) {
        Ok(bytes) => bytes,
        Err(e) => panic!("{what}: a decoded value does not encode again: {e}\nvalue: {value:?}"),
    };
    if let Some(len) = len {
        assert_eq!(len(value), first.len(), "{what}: computed size != bytes written\nvalue: {value:?}");
    }

    let mut chunked = Out::Chunked(ChunkedBuf::new(MIN_SHARED));
    encode(value, &mut chunked).expect("encodes into a ChunkedBuf as into a BytesMut");
    let Out::Chunked(chunked) = chunked else { unreachable!() };
    assert_eq!(chunked.len(), first.len(), "{what}: ChunkedBuf::len != bytes written");
    let joined: Vec<u8> = chunked.into_chunks().concat();
    assert!(joined[..] == first[..], "{what}: ChunkedBuf chunks differ from the flat encoding\nvalue: {value:?}");

    let mut input = first.clone();
    let again = match decode(&mut input) {
        Ok(again) => again,
        Err(e) => panic!("{what}: re-encoded value does not decode: {e}\nvalue: {value:?}\nbytes: {first:02x?}"),
    };
    assert!(input.is_empty(), "{what}: {} re-encoded bytes left unread\nvalue: {value:?}", input.len());
    assert!(same(value, &again), "{what}: round trip changed the value\nbefore: {value:?}\nafter:  {again:?}");
    let second = flat(&again, &encode).expect("re-decoded value encodes");
    assert!(first == second, "{what}: encoding is not a fixed point\nvalue: {value:?}");
}

/// A request or response body, so one check covers both.
pub trait Body: Encodable + Sized + PartialEq + Debug {
    /// "request" or "response".
    const KIND: &'static str;
    /// Decodes the body of `key` at `version`.
    fn decode_body(key: ApiKey, version: i16, buf: &mut Bytes) -> Result<Self, DecodeError>;
    /// The API key of the variant.
    fn key(&self) -> ApiKey;
}

impl Body for RequestBody {
    const KIND: &'static str = "request";
    fn decode_body(key: ApiKey, version: i16, buf: &mut Bytes) -> Result<Self, DecodeError> {
        RequestBody::decode(key, version, buf)
    }
    fn key(&self) -> ApiKey {
        self.api_key()
    }
}

impl Body for ResponseBody {
    const KIND: &'static str = "response";
    fn decode_body(key: ApiKey, version: i16, buf: &mut Bytes) -> Result<Self, DecodeError> {
        ResponseBody::decode(key, version, buf)
    }
    fn key(&self) -> ApiKey {
        self.api_key()
    }
}

/// Decodes `body` as `B` for `key` at `version` and, if that works, checks the variant and
/// the round trip. Returns whether it decoded.
pub fn check_body<B: Body>(key: ApiKey, version: i16, body: &[u8]) -> bool {
    let mut buf = Bytes::copy_from_slice(body);
    let Ok(value) = B::decode_body(key, version, &mut buf) else {
        return false;
    };
    assert_eq!(value.key(), key, "{} decoded as the wrong variant", B::KIND);
    let what = format!("{} {} v{version}", key.name(), B::KIND);
    round_trip(
        &what,
        &value,
        |v, out| v.encode_to(out, version),
        Some(&|v: &B| v.encoded_len(version)),
        |input| B::decode_body(key, version, input),
    );
    true
}
