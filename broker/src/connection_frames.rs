//! A connection's incoming frames: small ones are split off one shared read buffer, a
//! large one is read into a buffer of its own, allocated once at the size its prefix gives
//! (issue 14). Before, a partly received large frame grew the shared buffer with
//! `BytesMut::reserve`, which copies what was read so far whenever earlier frames still
//! share the buffer; now only the bytes already read past the prefix are copied, once.
//!
//! A frame larger than `socket.request.max.bytes` (or negative) is refused from its size
//! prefix alone, before anything is allocated for it.

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::connection::CloseReason;

/// Frames at least this large are read into their own buffer.
pub const OWN_BUFFER_MIN: usize = 32 * 1024;

/// The read side of a connection.
#[derive(Debug)]
pub struct FrameReader {
    /// What was read and not yet split into frames.
    buf: BytesMut,
    /// A large frame being read into its own buffer (without its size prefix), with its
    /// size; `buf` is empty meanwhile.
    large: Option<(BytesMut, usize)>,
    /// `socket.request.max.bytes`.
    max: i32,
}

impl FrameReader {
    /// A reader refusing frames over `max` bytes.
    pub fn new(max: i32) -> Self {
        FrameReader {
            buf: BytesMut::with_capacity(16 * 1024),
            large: None,
            max,
        }
    }

    /// Nothing buffered at all.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty() && self.large.is_none()
    }

    /// Bytes buffered and not yet given out as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len() + self.large.as_ref().map_or(0, |(frame, _)| 4 + frame.len())
    }

    /// The size of the next frame, once its prefix is read and acceptable; `None` before
    /// (or for a size [`Self::next_frame`] refuses).
    pub fn next_size(&self) -> Option<u32> {
        if let Some((_, size)) = &self.large {
            return Some(*size as u32);
        }
        let prefix = self.buf.get(..4)?;
        let size = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        u32::try_from(size).ok().filter(|&s| s <= self.max as u32)
    }

    /// Whether a whole frame is buffered (or the next size is refused: [`Self::next_frame`]
    /// then answers the error without reading more).
    pub fn has_frame(&self) -> bool {
        if let Some((frame, size)) = &self.large {
            return frame.len() == *size;
        }
        if self.buf.len() < 4 {
            return false;
        }
        match self.next_size() {
            Some(size) => self.buf.len() >= 4 + size as usize,
            None => true,
        }
    }

    /// The first bytes of the next whole frame (without its size prefix), without taking
    /// it: enough for the request header's API key and version.
    pub fn peek_frame_head(&self) -> Option<Bytes> {
        if !self.has_frame() {
            return None;
        }
        let head = match &self.large {
            Some((frame, _)) => &frame[..frame.len().min(16)],
            None => {
                let end = self.buf.len().min(4 + self.next_size()? as usize).min(20);
                &self.buf[4..end]
            }
        };
        Some(Bytes::copy_from_slice(head))
    }

    /// Takes the next complete frame (without its size prefix). A large frame whose prefix
    /// is all that is known yet moves to a buffer of its own here.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, CloseReason> {
        if let Some((frame, size)) = &self.large {
            if frame.len() < *size {
                return Ok(None);
            }
            let (frame, _) = self.large.take().expect("checked");
            return Ok(Some(frame.freeze()));
        }
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let size = i32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
        if size < 0 || size > self.max {
            return Err(CloseReason::FrameTooLarge(size, self.max));
        }
        let size = size as usize;
        let total = 4 + size;
        if self.buf.len() >= total {
            let mut frame = self.buf.split_to(total);
            frame.advance(4);
            return Ok(Some(frame.freeze()));
        }
        if size >= OWN_BUFFER_MIN {
            let mut frame = BytesMut::with_capacity(size);
            frame.extend_from_slice(&self.buf[4..]);
            self.buf.clear();
            self.large = Some((frame, size));
        } else {
            self.buf.reserve(total - self.buf.len());
        }
        Ok(None)
    }

    /// Reads what the socket has: into the large frame's own buffer (never past its end),
    /// else into the shared buffer. `Ok(0)` is the end of the stream.
    pub async fn read<R: AsyncRead + Unpin>(&mut self, reader: &mut R) -> std::io::Result<usize> {
        match &mut self.large {
            Some((frame, size)) => {
                let missing = (*size - frame.len()) as u64;
                (&mut *reader).take(missing).read_buf(frame).await
            }
            None => reader.read_buf(&mut self.buf).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(bytes: &[u8], max: i32) -> FrameReader {
        let mut reader = FrameReader::new(max);
        reader.buf.extend_from_slice(bytes);
        reader
    }

    #[test]
    fn frames_are_split_only_when_complete() {
        let mut frames = reader(&[0, 0, 0, 3, 1, 2], 100);
        assert!(!frames.has_frame());
        assert!(frames.next_frame().unwrap().is_none());
        frames.buf.extend_from_slice(&[3, 0, 0]);
        assert!(frames.has_frame());
        assert_eq!(&frames.next_frame().unwrap().unwrap()[..], &[1, 2, 3]);
        assert_eq!(frames.buffered(), 2);
    }

    #[test]
    fn oversized_and_negative_sizes_are_refused_before_allocating() {
        let mut frames = reader(&[0x7f, 0xff, 0xff, 0xff], 1024);
        assert!(frames.has_frame());
        assert!(matches!(
            frames.next_frame(),
            Err(CloseReason::FrameTooLarge(_, 1024))
        ));
        assert!(frames.buf.capacity() < 1024 * 1024);
        let mut frames = reader(&[0xff, 0xff, 0xff, 0xff], 1024);
        assert!(matches!(
            frames.next_frame(),
            Err(CloseReason::FrameTooLarge(-1, _))
        ));
    }

    #[tokio::test]
    async fn a_large_frame_is_read_into_its_own_buffer_and_not_past_its_end() {
        let size = OWN_BUFFER_MIN + 10;
        let mut wire = (size as i32).to_be_bytes().to_vec();
        wire.extend((0..size).map(|i| i as u8));
        // The next frame's bytes follow on the wire.
        wire.extend_from_slice(&[0, 0, 0, 1, 42]);
        let mut frames = reader(&wire[..100], i32::MAX);
        assert!(frames.next_frame().unwrap().is_none());
        assert!(frames.large.is_some());
        assert_eq!(frames.next_size(), Some(size as u32));
        let mut rest = &wire[100..];
        while !frames.has_frame() {
            assert!(frames.read(&mut rest).await.unwrap() > 0);
        }
        let frame = frames.next_frame().unwrap().unwrap();
        assert_eq!(frame.len(), size);
        assert_eq!(frame[..], wire[4..4 + size]);
        // The following frame is still on the wire, unread.
        assert_eq!(rest, &[0, 0, 0, 1, 42]);
        assert!(frames.is_empty());
    }
}
