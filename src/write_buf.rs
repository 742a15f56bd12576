//! Where encoders write: any [`WriteBuf`]. `BytesMut` copies everything; [`ChunkedBuf`]
//! keeps large `bytes`/`records` values as shared chunks instead of copying them, so a
//! Fetch response can go to the socket with the record batches exactly as read from disk.

use bytes::{BufMut, Bytes, BytesMut};

/// A destination for encoded bytes.
pub trait WriteBuf {
    /// Appends `bytes`.
    fn put_slice(&mut self, bytes: &[u8]);

    /// Appends a value that is already in a shared buffer; implementations may keep a
    /// reference instead of copying.
    fn put_shared(&mut self, bytes: &Bytes) {
        self.put_slice(bytes);
    }

    /// Appends one byte.
    #[inline]
    fn put_u8(&mut self, value: u8) {
        self.put_slice(&[value]);
    }

    /// Says that `total` more bytes are about to be written (the size an encoder computed
    /// up front), so the buffer can allocate once instead of growing; a hint only.
    #[inline]
    fn reserve_hint(&mut self, total: usize) {
        let _ = total;
    }
}

impl WriteBuf for BytesMut {
    #[inline]
    fn put_slice(&mut self, bytes: &[u8]) {
        BufMut::put_slice(self, bytes);
    }

    fn reserve_hint(&mut self, total: usize) {
        self.reserve(total);
    }

    #[inline]
    fn put_u8(&mut self, value: u8) {
        BufMut::put_u8(self, value);
    }
}

impl WriteBuf for Vec<u8> {
    #[inline]
    fn put_slice(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// An encoding kept as a list of chunks: small values are copied into the current chunk,
/// shared values of at least `min_shared` bytes become chunks of their own (no copy).
#[derive(Debug, Default)]
pub struct ChunkedBuf {
    chunks: Vec<Bytes>,
    current: BytesMut,
    min_shared: usize,
    len: usize,
    /// The most a [`WriteBuf::reserve_hint`] allocates up front (0: nothing).
    reserve_limit: usize,
}

impl ChunkedBuf {
    /// A buffer that shares values of `min_shared` bytes or more instead of copying them.
    pub fn new(min_shared: usize) -> Self {
        ChunkedBuf {
            min_shared,
            ..Default::default()
        }
    }

    /// Lets [`WriteBuf::reserve_hint`] allocate the buffer for copied bytes once, up to
    /// `limit` bytes: the whole encoding for messages that share no large values, a small
    /// limit for those whose size is mostly shared chunks (a Fetch response's records).
    pub fn with_reserve_limit(mut self, limit: usize) -> Self {
        self.reserve_limit = limit;
        self
    }

    /// Total bytes written.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The chunks, in order; their concatenation is the encoding.
    pub fn into_chunks(mut self) -> Vec<Bytes> {
        self.flush();
        self.chunks
    }

    fn flush(&mut self) {
        if !self.current.is_empty() {
            self.chunks.push(self.current.split().freeze());
        }
    }
}

impl WriteBuf for ChunkedBuf {
    #[inline]
    fn put_slice(&mut self, bytes: &[u8]) {
        self.len += bytes.len();
        self.current.extend_from_slice(bytes);
    }

    fn reserve_hint(&mut self, total: usize) {
        self.current.reserve(total.min(self.reserve_limit));
    }

    fn put_shared(&mut self, bytes: &Bytes) {
        if bytes.len() < self.min_shared {
            self.put_slice(bytes);
            return;
        }
        self.flush();
        self.len += bytes.len();
        self.chunks.push(bytes.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_values_are_shared_not_copied() {
        let big = Bytes::from(vec![7u8; 4096]);
        let mut buf = ChunkedBuf::new(1024);
        buf.put_slice(b"head");
        buf.put_shared(&big);
        buf.put_shared(&Bytes::from_static(b"small"));
        buf.put_u8(b'!');
        assert_eq!(buf.len(), 4 + 4096 + 5 + 1);
        let chunks = buf.into_chunks();
        assert_eq!(chunks.len(), 3);
        assert_eq!(&chunks[0][..], b"head");
        // Same memory as the input: shared, not copied.
        assert_eq!(chunks[1].as_ptr(), big.as_ptr());
        assert_eq!(&chunks[2][..], b"small!");
    }

    #[test]
    fn a_reserve_hint_allocates_once_up_to_the_limit() {
        let mut buf = ChunkedBuf::new(1024).with_reserve_limit(100);
        buf.reserve_hint(60);
        let capacity = buf.current.capacity();
        assert!(capacity >= 60);
        let start = buf.current.as_ptr();
        buf.put_slice(&[1u8; 60]);
        assert_eq!(buf.current.as_ptr(), start, "no reallocation");
        let mut capped = ChunkedBuf::new(1024).with_reserve_limit(100);
        capped.reserve_hint(1 << 30);
        assert!(capped.current.capacity() < 1 << 20);
    }
}
