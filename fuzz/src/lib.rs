//! Helpers shared by the fuzz targets in `fuzz_targets/`: turning fuzz input into an API key
//! and version, and the round-trip checks every successful decode is put through.

use std::fmt::Debug;

use gregor_protocol::bytes::{Bytes, BytesMut};
use gregor_protocol::{ApiKey, DecodeError, EncodeError, RequestBody, ResponseBody};

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

/// Checks what a successfully decoded `value` must satisfy:
///
/// * it encodes again (anything the decoder accepts, the encoder can write);
/// * `len`, when given, equals the number of bytes written;
/// * decoding those bytes consumes all of them and gives an equal value;
/// * encoding that value gives the same bytes (the encoding is a fixed point).
///
/// `what` names the value in assertion messages.
pub fn round_trip<T: PartialEq + Debug>(
    what: &str,
    value: &T,
    encode: impl Fn(&T, &mut BytesMut) -> Result<(), EncodeError>,
    len: Option<&dyn Fn(&T) -> usize>,
    decode: impl Fn(&mut Bytes) -> Result<T, DecodeError>,
) {
    let mut first = BytesMut::new();
    if let Err(e) = encode(value, &mut first) {
        panic!("{what}: a decoded value does not encode again: {e}\nvalue: {value:?}");
    }
    if let Some(len) = len {
        assert_eq!(len(value), first.len(), "{what}: computed size != bytes written\nvalue: {value:?}");
    }
    let first = first.freeze();
    let mut input = first.clone();
    let again = match decode(&mut input) {
        Ok(again) => again,
        Err(e) => panic!("{what}: re-encoded value does not decode: {e}\nvalue: {value:?}\nbytes: {first:02x?}"),
    };
    assert!(input.is_empty(), "{what}: {} re-encoded bytes left unread\nvalue: {value:?}", input.len());
    assert!(same(value, &again), "{what}: round trip changed the value\nbefore: {value:?}\nafter:  {again:?}");
    let mut second = BytesMut::new();
    encode(&again, &mut second).expect("re-decoded value encodes");
    assert_eq!(first[..], second[..], "{what}: encoding is not a fixed point\nvalue: {value:?}");
}

/// A request or response body, so one check covers both.
pub trait Body: Sized + PartialEq + Debug {
    /// "request" or "response".
    const KIND: &'static str;
    /// Decodes the body of `key` at `version`.
    fn decode(key: ApiKey, version: i16, buf: &mut Bytes) -> Result<Self, DecodeError>;
    /// Encodes at `version`.
    fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<(), EncodeError>;
    /// Encoded size at `version`.
    fn encoded_len(&self, version: i16) -> usize;
    /// The API key of the variant.
    fn api_key(&self) -> ApiKey;
}

macro_rules! body {
    ($ty:ty, $kind:literal) => {
        impl Body for $ty {
            const KIND: &'static str = $kind;
            fn decode(key: ApiKey, version: i16, buf: &mut Bytes) -> Result<Self, DecodeError> {
                <$ty>::decode(key, version, buf)
            }
            fn encode(&self, buf: &mut BytesMut, version: i16) -> Result<(), EncodeError> {
                <$ty>::encode(self, buf, version)
            }
            fn encoded_len(&self, version: i16) -> usize {
                <$ty>::encoded_len(self, version)
            }
            fn api_key(&self) -> ApiKey {
                <$ty>::api_key(self)
            }
        }
    };
}
body!(RequestBody, "request");
body!(ResponseBody, "response");

/// Decodes `body` as `B` for `key` at `version` and, if that works, checks the variant and
/// the round trip. Returns whether it decoded.
pub fn check_body<B: Body>(key: ApiKey, version: i16, body: &[u8]) -> bool {
    let mut buf = Bytes::copy_from_slice(body);
    let Ok(value) = B::decode(key, version, &mut buf) else {
        return false;
    };
    assert_eq!(value.api_key(), key, "{} decoded as the wrong variant", B::KIND);
    assert!(buf.len() <= body.len());
    let what = format!("{} {} v{version}", key.name(), B::KIND);
    round_trip(
        &what,
        &value,
        |v, out| v.encode(out, version),
        Some(&|v: &B| v.encoded_len(version)),
        |input| B::decode(key, version, input),
    );
    true
}
