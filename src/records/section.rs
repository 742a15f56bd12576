//! The records section of a batch and the two ways through it: owned [`Record`]s sharing
//! the buffer ([`Records`]) and borrowed [`RecordRef`]s ([`RecordRefs`]).

use bytes::Bytes;

use super::error::{RecordLocation, RecordsError};
use super::record::{Record, RecordContext, decode_record, next_header, parse_record};

/// The records of one batch, decompressed if the batch is compressed.
///
/// Made by [`RecordBatch::section`](super::RecordBatch::section). Cheap to clone (it shares
/// the buffer).
#[derive(Clone, Debug)]
pub struct RecordsSection {
    pub(crate) data: Bytes,
    /// Where the records start in `data`.
    pub(crate) start: usize,
    /// Added to positions in `data` for error reports (the batch position if uncompressed).
    pub(crate) origin: usize,
    pub(crate) count: i32,
    pub(crate) ctx: RecordContext,
    pub(crate) batch_position: usize,
    pub(crate) decompressed: bool,
}

impl RecordsSection {
    /// The record bytes (uncompressed).
    pub fn as_bytes(&self) -> Bytes {
        self.data.slice(self.start..)
    }

    /// Record count from the batch header.
    pub fn record_count(&self) -> i32 {
        self.count
    }

    /// Iterates the records by reference: keys, values and headers borrow the section.
    pub fn iter(&self) -> RecordRefs<'_> {
        RecordRefs {
            section: self,
            state: State::new(self.start),
        }
    }

    /// Iterates the records as owned [`Record`]s sharing the section's buffer.
    pub fn into_records(self) -> Records {
        Records {
            state: State::new(self.start),
            section: Some(self),
            pending: None,
        }
    }
}

impl<'a> IntoIterator for &'a RecordsSection {
    type Item = Result<RecordRef<'a>, RecordsError>;
    type IntoIter = RecordRefs<'a>;

    fn into_iter(self) -> RecordRefs<'a> {
        self.iter()
    }
}

/// Iteration state shared by both iterators: the count checks live here.
#[derive(Clone, Debug)]
struct State {
    pos: usize,
    index: i32,
    done: bool,
}

impl State {
    fn new(start: usize) -> State {
        State {
            pos: start,
            index: 0,
            done: false,
        }
    }

    fn remaining(&self, section: &RecordsSection) -> usize {
        if self.done {
            0
        } else {
            (section.count - self.index) as usize
        }
    }

    /// Checks the count, then decodes the next record with `decode` (given the position and
    /// its location; returning the item and the position after it).
    #[inline]
    fn step<T>(
        &mut self,
        section: &RecordsSection,
        decode: impl FnOnce(usize, RecordLocation) -> Result<(T, usize), RecordsError>,
    ) -> Option<Result<T, RecordsError>> {
        if self.done {
            return None;
        }
        let location = RecordLocation {
            batch_position: section.batch_position,
            record_index: self.index,
            position: section.origin + self.pos,
            decompressed: section.decompressed,
        };
        let available = section.data.len() - self.pos;
        let result = if self.index == section.count {
            self.done = true;
            if available == 0 {
                return None;
            }
            Err(RecordsError::TrailingRecordBytes {
                location,
                declared: section.count,
                extra: available,
            })
        } else if available == 0 {
            Err(RecordsError::RecordCountMismatch {
                location,
                declared: section.count,
                found: self.index,
            })
        } else {
            decode(self.pos, location).map(|(item, next)| {
                self.pos = next;
                self.index += 1;
                item
            })
        };
        if result.is_err() {
            self.done = true;
        }
        Some(result)
    }
}

/// Lazy iterator over a batch's records as owned [`Record`]s.
///
/// Stops after the first error. Reports a count mismatch both when the data ends before the
/// declared count and when bytes remain after it.
#[derive(Clone, Debug)]
pub struct Records {
    section: Option<RecordsSection>,
    state: State,
    pending: Option<RecordsError>,
}

impl Records {
    /// An iterator that yields `error` and ends (decompression failed).
    pub(crate) fn failed(error: RecordsError) -> Records {
        Records {
            section: None,
            state: State::new(0),
            pending: Some(error),
        }
    }

    /// Records not yet yielded, per the header's count.
    pub fn remaining(&self) -> usize {
        self.section
            .as_ref()
            .map_or(0, |section| self.state.remaining(section))
    }
}

impl Iterator for Records {
    type Item = Result<Record, RecordsError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if let Some(error) = self.pending.take() {
            return Some(Err(error));
        }
        let section = self.section.as_ref()?;
        self.state.step(section, |pos, location| {
            decode_record(&section.data, pos, &section.ctx, location)
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let pending = usize::from(self.pending.is_some());
        (pending, Some(self.remaining() + 1))
    }
}

impl std::iter::FusedIterator for Records {}

/// Lazy iterator over a batch's records by reference (see [`RecordsSection::iter`]).
#[derive(Clone, Debug)]
pub struct RecordRefs<'a> {
    section: &'a RecordsSection,
    state: State,
}

impl RecordRefs<'_> {
    /// Records not yet yielded, per the header's count.
    pub fn remaining(&self) -> usize {
        self.state.remaining(self.section)
    }
}

impl<'a> Iterator for RecordRefs<'a> {
    type Item = Result<RecordRef<'a>, RecordsError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let section: &'a RecordsSection = self.section;
        let data: &'a [u8] = &section.data;
        self.state.step(section, |pos, location| {
            let raw = parse_record(data, pos, &section.ctx, location, |_, _, _| {})?;
            let (offset, timestamp) = raw.absolute(&section.ctx);
            let record = RecordRef {
                offset,
                timestamp,
                offset_delta: raw.offset_delta,
                timestamp_delta: raw.timestamp_delta,
                attributes: raw.attributes,
                key: raw.key.map(|(start, end)| &data[start..end]),
                value: raw.value.map(|(start, end)| &data[start..end]),
                headers: &data[raw.headers_start..raw.end],
                header_count: raw.header_count,
            };
            Ok((record, raw.end))
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining() + 1))
    }
}

impl std::iter::FusedIterator for RecordRefs<'_> {}

/// A record borrowed from its [`RecordsSection`]: no reference counting, no allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// Absolute offset (base offset + offset delta).
    pub offset: i64,
    /// Absolute timestamp (base timestamp + delta, or the log append time).
    pub timestamp: i64,
    /// Offset relative to the batch's base offset.
    pub offset_delta: i32,
    /// Timestamp relative to the batch's base timestamp.
    pub timestamp_delta: i64,
    /// Record attributes (unused by Kafka so far).
    pub attributes: i8,
    /// The key, `None` when null.
    pub key: Option<&'a [u8]>,
    /// The value, `None` when null.
    pub value: Option<&'a [u8]>,
    headers: &'a [u8],
    header_count: usize,
}

impl<'a> RecordRef<'a> {
    /// Number of headers.
    pub fn header_count(&self) -> usize {
        self.header_count
    }

    /// The headers as (key, value) pairs, in wire order (already checked when the record
    /// was read).
    pub fn headers(&self) -> HeaderRefs<'a> {
        HeaderRefs {
            section: self.headers,
            pos: 0,
            left: self.header_count,
        }
    }
}

/// Iterator over the headers of a [`RecordRef`]: `(key, value)` with a null value as `None`.
#[derive(Clone, Debug)]
pub struct HeaderRefs<'a> {
    section: &'a [u8],
    pos: usize,
    left: usize,
}

impl<'a> Iterator for HeaderRefs<'a> {
    type Item = (&'a [u8], Option<&'a [u8]>);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let section = self.section;
        let ((ks, ke), value) = next_header(section, &mut self.pos)?;
        Some((&section[ks..ke], value.map(|(vs, ve)| &section[vs..ve])))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for HeaderRefs<'_> {}
